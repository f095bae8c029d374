-- expect: require-concurrent-reindex
REINDEX INDEX orders_status_idx;
