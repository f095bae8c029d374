-- Why: undoes 20261206100100_inventory: the inventory schema, and the two catalog
-- functions that read stock.

DROP FUNCTION catalog.get_product_details(uuid);
DROP FUNCTION catalog.search_products(text, uuid, numeric, numeric, text[], boolean, real, uuid, integer);
DROP SCHEMA inventory CASCADE;
