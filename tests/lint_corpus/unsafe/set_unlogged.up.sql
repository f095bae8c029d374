-- expect: ban-table-rewrite table-rewrite
ALTER TABLE orders SET UNLOGGED;
