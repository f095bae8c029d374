-- sales.carts (migrations/20261206600000_sales.up.sql): id, organization_id, user_id,
-- status, currency, order_id, expires_at, created_at, updated_at. One open cart per
-- user and tenant; row-level security shows the current user's carts only. A cart
-- lives 30 days after its last change; checkout closes it.

--: Cart(order_id?)

--- Opens a cart for the current user (23505 carts_open_key when one is open already).
--! cart_open : Cart
INSERT INTO sales.carts (currency) VALUES (:currency)
RETURNING id, organization_id, user_id, status, currency, order_id, expires_at, created_at, updated_at;

--- The current user's open cart, if any.
--! cart_get_open : Cart
SELECT id, organization_id, user_id, status, currency, order_id, expires_at, created_at, updated_at
FROM sales.carts
WHERE organization_id = identity.current_org_id() AND user_id = identity.current_user_id()
  AND status = 'open';

--! cart_get : Cart
SELECT id, organization_id, user_id, status, currency, order_id, expires_at, created_at, updated_at
FROM sales.carts
WHERE organization_id = identity.current_org_id() AND id = :id;

--- Marks the tenant's open carts past their time expired (at most 10,000); returns how
--- many.
--! cart_cleanup_expired
SELECT sales.cleanup_expired_carts() AS expired;
