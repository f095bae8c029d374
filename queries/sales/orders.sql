-- sales.orders (migrations/20261206600000_sales.up.sql): id, organization_id,
-- order_number, user_id, cart_id, idempotency_key, status, currency, subtotal_amount,
-- discount_amount, tax_amount, total_amount, item_count, expires_at, paid_at,
-- cancelled_at, created_at, updated_at. Written only by the functions: checkout,
-- cancel, expiry, and the payments' capture and refunds.

--: Order(expires_at?, paid_at?, cancelled_at?)
--: OrderAnalytics(average_order_value?)

--- Places the order for the current user's open cart in this transaction (rules, a
--- reservation per item, order, items, an outbox message, the cart closed); the same
--- key for the same cart returns the same order. WS001-WS009, WN002 out of stock.
--! order_checkout
SELECT sales.checkout(:cart_id, :idempotency_key) AS id;

--- Cancels a pending order and gives its stock back: true now, false when it was
--- cancelled or expired already; WS007 for a paid one.
--! order_cancel
SELECT sales.cancel_order(:id) AS cancelled;

--- Expires the tenant's pending orders past their time (at most 10,000), giving their
--- stock back; returns how many.
--! order_cleanup_expired
SELECT sales.cleanup_expired_orders() AS expired;

--! order_get : Order
SELECT id, organization_id, order_number, user_id, cart_id, idempotency_key, status, currency,
       subtotal_amount, discount_amount, tax_amount, total_amount, item_count, expires_at, paid_at,
       cancelled_at, created_at, updated_at
FROM sales.orders
WHERE organization_id = identity.current_org_id() AND id = :id;

--- The current user's orders, newest first, keyset by (created_at, id).
--! order_list_mine (after_created_at?, after_id?) : Order
SELECT id, organization_id, order_number, user_id, cart_id, idempotency_key, status, currency,
       subtotal_amount, discount_amount, tax_amount, total_amount, item_count, expires_at, paid_at,
       cancelled_at, created_at, updated_at
FROM sales.orders
WHERE organization_id = identity.current_org_id() AND user_id = identity.current_user_id()
  AND (:after_created_at::timestamptz IS NULL
       OR (created_at, id) < (:after_created_at, :after_id::uuid))
ORDER BY created_at DESC, id DESC
LIMIT :limit;

--- Checks a stored order against the rules (total, units, pending orders); raises
--- WS004-WS006.
--! order_validate
SELECT true AS valid
FROM sales.orders o, sales.validate_order_business_rules(o)
WHERE o.organization_id = identity.current_org_id() AND o.id = :id;

--- sales.order_analytics: per day and currency, newest first.
--! order_analytics_list : OrderAnalytics
SELECT day, currency, orders, paid_orders, cancelled_orders, expired_orders, revenue,
       average_order_value
FROM sales.order_analytics
WHERE organization_id = identity.current_org_id()
ORDER BY day DESC, currency
LIMIT :limit;
