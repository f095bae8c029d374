-- inventory.alerts (migrations/20261206100100_inventory.up.sql): id, organization_id,
-- product_id, kind, available, reorder_point, reorder_quantity, created_at,
-- resolved_at. Opened and resolved by the database when stock crosses the reorder
-- point; one open alert per product.

--: Alert(resolved_at?)

--- The tenant's open alerts, by the partial unique index of open alerts.
--! alert_list_open : Alert
SELECT id, organization_id, product_id, kind, available, reorder_point, reorder_quantity,
       created_at, resolved_at
FROM inventory.alerts
WHERE organization_id = identity.current_org_id() AND resolved_at IS NULL
ORDER BY product_id
LIMIT :limit;

--- A product's alerts, newest first.
--! alert_list_by_product : Alert
SELECT id, organization_id, product_id, kind, available, reorder_point, reorder_quantity,
       created_at, resolved_at
FROM inventory.alerts
WHERE organization_id = identity.current_org_id() AND product_id = :product_id
ORDER BY created_at DESC, id DESC
LIMIT :limit;
