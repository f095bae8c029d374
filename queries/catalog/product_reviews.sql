-- catalog.product_reviews (migrations/20261206100000_catalog.up.sql): id,
-- organization_id, product_id, user_id (the current user), rating, title, body, status,
-- verified_purchase (set by the database), created_at, updated_at. One review per user
-- and product (23505).

--: ProductReview(title?, body?)

--! product_review_create (title?, body?) : ProductReview
INSERT INTO catalog.product_reviews (product_id, rating, title, body)
VALUES (:product_id, :rating, :title, :body)
RETURNING id, organization_id, product_id, user_id, rating, title, body, status,
          verified_purchase, created_at, updated_at;

--! product_review_get : ProductReview
SELECT id, organization_id, product_id, user_id, rating, title, body, status, verified_purchase,
       created_at, updated_at
FROM catalog.product_reviews
WHERE organization_id = identity.current_org_id() AND id = :id;

--- A product's reviews in one state, newest first, keyset in (created_at, id).
--! product_review_list (before_created_at?, before_id?) : ProductReview
SELECT id, organization_id, product_id, user_id, rating, title, body, status, verified_purchase,
       created_at, updated_at
FROM catalog.product_reviews
WHERE organization_id = identity.current_org_id() AND product_id = :product_id
  AND status = :status
  AND (:before_created_at::timestamptz IS NULL
       OR (created_at, id) < (:before_created_at, :before_id::uuid))
ORDER BY created_at DESC, id DESC
LIMIT :limit;

--- Moderation: approve or reject.
--! product_review_set_status : ProductReview
UPDATE catalog.product_reviews SET status = :status
WHERE organization_id = identity.current_org_id() AND id = :id
RETURNING id, organization_id, product_id, user_id, rating, title, body, status,
          verified_purchase, created_at, updated_at;

--! product_review_delete
DELETE FROM catalog.product_reviews WHERE organization_id = identity.current_org_id() AND id = :id;
