-- inventory.stock_levels (migrations/20261206100100_inventory.up.sql): organization_id,
-- product_id, on_hand, reserved, available (generated), reorder_point,
-- reorder_quantity, supplier_id, unit_cost, created_at, updated_at. Stock moves only
-- through the functions (receive, adjust, reservations), each of which writes the
-- ledger; the application sets the reorder fields.

--: StockLevel(supplier_id?, unit_cost?)
--: StockAnalytics(unit_cost?, stock_value?, turnover_30d?, days_of_cover?, low_stock_since?)

--- Receives units (1 to 1,000,000): creates the stock row when the product has none,
--- writes a receipt movement; returns on_hand after it. WN001 for a product that is not
--- the tenant's.
--! stock_receive
SELECT inventory.receive_stock(:product_id, :quantity) AS on_hand;

--- Corrects on_hand by a signed quantity with a reason, writing an adjustment
--- movement; WN002 when on_hand would fall below what is reserved.
--! stock_adjust
SELECT inventory.adjust_stock(:product_id, :quantity, :reason) AS on_hand;

--! stock_level_get : StockLevel
SELECT organization_id, product_id, on_hand, reserved, available, reorder_point,
       reorder_quantity, supplier_id, unit_cost, created_at, updated_at
FROM inventory.stock_levels
WHERE organization_id = identity.current_org_id() AND product_id = :product_id;

--- In product order, keyset (after_product_id NULL for the first page).
--! stock_level_list (after_product_id?) : StockLevel
SELECT organization_id, product_id, on_hand, reserved, available, reorder_point,
       reorder_quantity, supplier_id, unit_cost, created_at, updated_at
FROM inventory.stock_levels
WHERE organization_id = identity.current_org_id()
  AND (:after_product_id::uuid IS NULL OR product_id > :after_product_id)
ORDER BY product_id
LIMIT :limit;

--- The reorder settings; crossing the reorder point opens or resolves the low-stock
--- alert. Null arguments keep the current value.
--! stock_level_set_reorder (reorder_point?, reorder_quantity?, supplier_id?, unit_cost?) : StockLevel
UPDATE inventory.stock_levels
SET reorder_point = COALESCE(:reorder_point, reorder_point),
    reorder_quantity = COALESCE(:reorder_quantity, reorder_quantity),
    supplier_id = COALESCE(:supplier_id, supplier_id),
    unit_cost = COALESCE(:unit_cost, unit_cost)
WHERE organization_id = identity.current_org_id() AND product_id = :product_id
RETURNING organization_id, product_id, on_hand, reserved, available, reorder_point,
          reorder_quantity, supplier_id, unit_cost, created_at, updated_at;

--- inventory.stock_analytics for one product: value, 30-day sales, turnover and days of
--- cover.
--! stock_analytics_get : StockAnalytics
SELECT product_id, sku, name, on_hand, reserved, available, reorder_point, unit_cost,
       stock_value, units_sold_30d, units_received_30d, turnover_30d, days_of_cover,
       low_stock_since
FROM inventory.stock_analytics
WHERE organization_id = identity.current_org_id() AND product_id = :product_id;
