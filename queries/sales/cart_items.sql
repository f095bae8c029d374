-- sales.cart_items (migrations/20261206600000_sales.up.sql): organization_id, cart_id,
-- product_id, quantity (1 to 1,000), added_at, updated_at. One row per product of a
-- cart, written only while the cart is open and is the current user's.

--: CartItem()
--: CartLine()

--- Adds units of a product to the cart (to the quantity already there).
--! cart_item_add : CartItem
INSERT INTO sales.cart_items (cart_id, product_id, quantity)
VALUES (:cart_id, :product_id, :quantity)
ON CONFLICT (organization_id, cart_id, product_id) DO UPDATE SET quantity = sales.cart_items.quantity + EXCLUDED.quantity
RETURNING cart_id, product_id, quantity, added_at, updated_at;

--- Sets a product's quantity in the cart; no row when it is not in the cart.
--! cart_item_set_quantity : CartItem
UPDATE sales.cart_items SET quantity = :quantity
WHERE organization_id = identity.current_org_id() AND cart_id = :cart_id AND product_id = :product_id
RETURNING cart_id, product_id, quantity, added_at, updated_at;

--- Removes a product from the cart; how many rows (0 or 1).
--! cart_item_remove
DELETE FROM sales.cart_items
WHERE organization_id = identity.current_org_id() AND cart_id = :cart_id AND product_id = :product_id;

--- The cart's lines with the catalog's current price, by product.
--! cart_item_list : CartLine
SELECT i.product_id, p.sku, p.name, i.quantity, p.price AS unit_price, p.price * i.quantity AS line_total,
       p.currency, p.active
FROM sales.cart_items i
JOIN catalog.products p ON p.organization_id = i.organization_id AND p.id = i.product_id
WHERE i.organization_id = identity.current_org_id() AND i.cart_id = :cart_id
ORDER BY i.product_id;
