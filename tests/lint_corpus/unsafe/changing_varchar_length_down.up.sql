-- expect: changing-column-type table-rewrite
ALTER TABLE orders ALTER COLUMN note TYPE varchar(20);
