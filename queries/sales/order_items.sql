-- sales.order_items (migrations/20261206600000_sales.up.sql): id, organization_id,
-- order_id, product_id, sku, name, quantity, unit_price, discount_amount, tax_amount,
-- line_total, reservation_id. Written by checkout; line_total = unit_price * quantity
-- - discount_amount + tax_amount.

--: OrderItem(reservation_id?)

--! order_item_list : OrderItem
SELECT id, order_id, product_id, sku, name, quantity, unit_price, discount_amount, tax_amount,
       line_total, reservation_id
FROM sales.order_items
WHERE organization_id = identity.current_org_id() AND order_id = :order_id
ORDER BY product_id;
