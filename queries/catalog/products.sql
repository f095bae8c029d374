-- catalog.products (migrations/20261206100000_catalog.up.sql): id, organization_id,
-- category_id, sku, name, description, price, currency, tags, metadata, active,
-- search_vector (generated), created_at, updated_at. Search and details are
-- catalog.search_products and catalog.get_product_details
-- (migrations/20261206100100_inventory.up.sql), which also read stock.

--: Product(category_id?)
--: ProductHit(category_id?)

--! product_create (category_id?) : Product
INSERT INTO catalog.products (category_id, sku, name, description, price, currency, tags, metadata)
VALUES (:category_id, :sku, :name, :description, :price, :currency, :tags, :metadata)
RETURNING id, organization_id, category_id, sku, name, description, price, currency, tags,
          metadata, active, created_at, updated_at;

--! product_get : Product
SELECT id, organization_id, category_id, sku, name, description, price, currency, tags,
       metadata, active, created_at, updated_at
FROM catalog.products
WHERE organization_id = identity.current_org_id() AND id = :id;

--! product_get_by_sku : Product
SELECT id, organization_id, category_id, sku, name, description, price, currency, tags,
       metadata, active, created_at, updated_at
FROM catalog.products
WHERE organization_id = identity.current_org_id() AND sku = :sku;

--- Every product of the tenant in id order, keyset (after_id NULL for the first page).
--! product_list (after_id?) : Product
SELECT id, organization_id, category_id, sku, name, description, price, currency, tags,
       metadata, active, created_at, updated_at
FROM catalog.products
WHERE organization_id = identity.current_org_id()
  AND (:after_id::uuid IS NULL OR id > :after_id)
ORDER BY id
LIMIT :limit;

--- Null arguments keep the current value.
--! product_update (category_id?, name?, description?, price?, currency?, tags?, metadata?, active?) : Product
UPDATE catalog.products
SET category_id = COALESCE(:category_id, category_id),
    name = COALESCE(:name, name),
    description = COALESCE(:description, description),
    price = COALESCE(:price, price),
    currency = COALESCE(:currency, currency),
    tags = COALESCE(:tags, tags),
    metadata = COALESCE(:metadata, metadata),
    active = COALESCE(:active, active)
WHERE organization_id = identity.current_org_id() AND id = :id
RETURNING id, organization_id, category_id, sku, name, description, price, currency, tags,
          metadata, active, created_at, updated_at;

--- Refused (23503) once the product has stock: archive it (active = false) instead.
--! product_delete
DELETE FROM catalog.products WHERE organization_id = identity.current_org_id() AND id = :id;

--- Ranked full-text search of active products with optional filters; best first. The
--- next page passes the last hit's rank and id (both NULL for the first page).
--! product_search (in_category?, min_price?, max_price?, with_tags?, after_rank?, after_id?) : ProductHit
SELECT id, sku, name, price, currency, category_id, tags, rank, available
FROM catalog.search_products(:query, :in_category, :min_price, :max_price, :with_tags::text[],
                             :in_stock, :after_rank, :after_id, :page_size);

--- The product with its category path, images, rating summary and stock, as JSON;
--- NULL when it is not the tenant's.
--! product_details : (details?)
SELECT catalog.get_product_details(:id) AS details;
