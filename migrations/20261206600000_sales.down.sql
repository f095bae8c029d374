-- Why: undoes 20261206600000_sales: the sales schema (carts, orders and checkout).

DROP SCHEMA sales CASCADE;
