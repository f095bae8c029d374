-- sales.order_fulfillments (migrations/20261206600000_sales.up.sql): id,
-- organization_id, order_id, carrier, tracking_number, shipped_at, delivered_at,
-- created_at, updated_at. Delivered never before shipped.

--: Fulfillment(tracking_number?, shipped_at?, delivered_at?)

--! fulfillment_add (tracking_number?, shipped_at?) : Fulfillment
INSERT INTO sales.order_fulfillments (order_id, carrier, tracking_number, shipped_at)
VALUES (:order_id, :carrier, :tracking_number, :shipped_at)
RETURNING id, order_id, carrier, tracking_number, shipped_at, delivered_at, created_at, updated_at;

--- Records the delivery; no row when the fulfilment is not the tenant's.
--! fulfillment_delivered : Fulfillment
UPDATE sales.order_fulfillments SET delivered_at = :delivered_at
WHERE organization_id = identity.current_org_id() AND id = :id
RETURNING id, order_id, carrier, tracking_number, shipped_at, delivered_at, created_at, updated_at;

--! fulfillment_list : Fulfillment
SELECT id, order_id, carrier, tracking_number, shipped_at, delivered_at, created_at, updated_at
FROM sales.order_fulfillments
WHERE organization_id = identity.current_org_id() AND order_id = :order_id
ORDER BY created_at, id;
