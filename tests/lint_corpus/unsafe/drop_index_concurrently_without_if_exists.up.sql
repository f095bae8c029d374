-- groundwork:no-transaction
-- expect: prefer-robust-stmts
DROP INDEX CONCURRENTLY orders_status_idx;
