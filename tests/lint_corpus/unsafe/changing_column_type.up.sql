-- expect: changing-column-type table-rewrite
ALTER TABLE accounts ALTER COLUMN balance TYPE numeric;
