-- groundwork:no-transaction
-- quiet: require-concurrent-reindex
REINDEX INDEX CONCURRENTLY orders_status_idx;
