-- expect: table-rewrite
ALTER TABLE orders ADD COLUMN fee positive_amount NOT NULL DEFAULT 0;
