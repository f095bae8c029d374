-- quiet: changing-column-type table-rewrite
ALTER TABLE orders ALTER COLUMN note TYPE text;
