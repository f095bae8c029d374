-- groundwork:no-transaction
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS events_log_pkey ON events_log (id);
