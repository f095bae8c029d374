-- groundwork:no-transaction
-- quiet: require-concurrent-index-deletion prefer-robust-stmts
DROP INDEX CONCURRENTLY IF EXISTS orders_status_idx;
