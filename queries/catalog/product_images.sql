-- catalog.product_images (migrations/20261206100000_catalog.up.sql): id,
-- organization_id, product_id, url, alt_text, position, is_primary, created_at,
-- updated_at. Exactly one primary image per product with images: the first becomes
-- primary, a new primary demotes the old, deleting the primary promotes the next, and
-- unsetting it directly is refused (SQLSTATE WC002).

--: ProductImage(alt_text?)

--- is_primary true makes it the primary image (the old one is demoted).
--! product_image_add (alt_text?) : ProductImage
INSERT INTO catalog.product_images (product_id, url, alt_text, position, is_primary)
VALUES (:product_id, :url, :alt_text, :position, :is_primary)
RETURNING id, organization_id, product_id, url, alt_text, position, is_primary, created_at,
          updated_at;

--- A product's images in order.
--! product_image_list : ProductImage
SELECT id, organization_id, product_id, url, alt_text, position, is_primary, created_at, updated_at
FROM catalog.product_images
WHERE organization_id = identity.current_org_id() AND product_id = :product_id
ORDER BY position, id;

--- Makes the image its product's primary one; the old primary is demoted.
--! product_image_set_primary : ProductImage
UPDATE catalog.product_images SET is_primary = true
WHERE organization_id = identity.current_org_id() AND id = :id
RETURNING id, organization_id, product_id, url, alt_text, position, is_primary, created_at,
          updated_at;

--! product_image_delete
DELETE FROM catalog.product_images WHERE organization_id = identity.current_org_id() AND id = :id;
