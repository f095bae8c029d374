-- quiet: changing-column-type table-rewrite
ALTER TABLE orders ALTER COLUMN total TYPE numeric(14, 2);
