-- expect: ban-concurrent-index-creation-in-transaction statement-failed
DROP INDEX CONCURRENTLY orders_status_idx;
