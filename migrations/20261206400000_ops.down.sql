-- Why: undoes 20261206400000_ops. The role groundwork_monitor is cluster-wide and stays
-- (other databases may use it), with its membership in pg_monitor, without its
-- privileges here. pg_stat_statements goes with the migration that created it.

REVOKE USAGE ON SCHEMA ops FROM groundwork_monitor, groundwork_worker;

DROP FUNCTION ops.retention_batch(text, interval, integer);
DROP FUNCTION ops.apply_retention(integer);
DROP FUNCTION ops.get_slow_queries(integer);
DROP FUNCTION ops.get_cache_hit_ratios();
DROP FUNCTION ops.get_index_usage_statistics();
DROP FUNCTION ops.get_table_statistics();
DROP FUNCTION ops.check_database_health();
DROP FUNCTION ops.backlog_checks();
DROP FUNCTION ops.replication_checks();
DROP FUNCTION ops.table_checks();
DROP FUNCTION ops.index_checks();
DROP FUNCTION ops.cache_checks();
DROP FUNCTION ops.session_checks();
DROP FUNCTION ops.connection_checks();
DROP FUNCTION ops.parameter(text, numeric);
DROP FUNCTION ops.rate(text, numeric, text);
DROP TABLE ops.retention_policies;
DROP TABLE ops.health_thresholds;
DROP TYPE ops.health_check;
DROP SCHEMA ops;

DROP EXTENSION IF EXISTS pg_stat_statements;
