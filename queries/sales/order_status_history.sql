-- sales.order_status_history (migrations/20261206600000_sales.up.sql): id,
-- organization_id, order_id, from_status, to_status, changed_by, changed_at. Written by
-- trigger on every status change of an order.

--: OrderStatusChange(from_status?, changed_by?)

--! order_status_history_list : OrderStatusChange
SELECT id, order_id, from_status, to_status, changed_by, changed_at
FROM sales.order_status_history
WHERE organization_id = identity.current_org_id() AND order_id = :order_id
ORDER BY id;
