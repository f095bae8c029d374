-- inventory.suppliers (migrations/20261206100100_inventory.up.sql): id, organization_id,
-- name, email, phone, lead_time_days, active, metadata, created_at, updated_at. Names
-- are unique per tenant.

--: Supplier(email?, phone?)

--! supplier_create (email?, phone?) : Supplier
INSERT INTO inventory.suppliers (name, email, phone, lead_time_days, metadata)
VALUES (:name, :email, :phone, :lead_time_days, :metadata)
RETURNING id, organization_id, name, email, phone, lead_time_days, active, metadata, created_at,
          updated_at;

--! supplier_get : Supplier
SELECT id, organization_id, name, email, phone, lead_time_days, active, metadata, created_at,
       updated_at
FROM inventory.suppliers
WHERE organization_id = identity.current_org_id() AND id = :id;

--- In id order, keyset (after_id NULL for the first page).
--! supplier_list (after_id?) : Supplier
SELECT id, organization_id, name, email, phone, lead_time_days, active, metadata, created_at,
       updated_at
FROM inventory.suppliers
WHERE organization_id = identity.current_org_id()
  AND (:after_id::uuid IS NULL OR id > :after_id)
ORDER BY id
LIMIT :limit;

--- Null arguments keep the current value.
--! supplier_update (name?, email?, phone?, lead_time_days?, active?, metadata?) : Supplier
UPDATE inventory.suppliers
SET name = COALESCE(:name, name),
    email = COALESCE(:email, email),
    phone = COALESCE(:phone, phone),
    lead_time_days = COALESCE(:lead_time_days, lead_time_days),
    active = COALESCE(:active, active),
    metadata = COALESCE(:metadata, metadata)
WHERE organization_id = identity.current_org_id() AND id = :id
RETURNING id, organization_id, name, email, phone, lead_time_days, active, metadata, created_at,
          updated_at;

--- Its products keep their stock and lose their supplier.
--! supplier_delete
DELETE FROM inventory.suppliers WHERE organization_id = identity.current_org_id() AND id = :id;
