-- Why: operating the database (seed 002's monitoring and maintenance; the ops row of
-- the domain map). Health checks with thresholds, statistics for tables, indexes,
-- caches and queries, and retention of what groundwork's own tables accumulate, for a
-- monitoring agent that must never read tenant data.
--
-- * groundwork_monitor (NOLOGIN, a member of pg_monitor) calls the ops functions and
--   reads ops.health_thresholds and ops.retention_policies. It has no privilege on any
--   tenant table and does not bypass row-level security: the backlog checks, which
--   count rows of messaging, eventstore, inventory, sales and payments across tenants, are one SECURITY
--   DEFINER function (ops.backlog_checks) that returns counts and ages only, never a
--   row, an id or a tenant. Everything else reads PostgreSQL's statistics views as the
--   caller, whose pg_monitor membership shows every session and query.
-- * ops.check_database_health() is one row per check: (name, status, value, threshold,
--   hint), status warning or critical when the value is at or past that threshold of
--   ops.health_thresholds, in the direction its row says is worse, else ok.
--   The checks are split by concept: connections, sessions (long queries, idle in
--   transaction, lock waits), cache, indexes (unused, duplicate), tables (sequential
--   scans of large tables, dead tuples as the bloat estimate, transaction-ID age),
--   replication and backlogs.
-- * pg_stat_statements: created here when the server has it and the migrating role
--   may create it (a superuser); otherwise a notice, and ops.get_slow_queries returns
--   no rows with a notice saying why. Its views are taken from PUBLIC and granted to
--   groundwork_monitor: query texts are for the monitor, not for every role.
-- * Retention: ops.retention_policies says how long finished jobs, delivered outbox
--   messages, expired sessions and expired idempotency keys are kept, and how many
--   rows one batch deletes; ops.apply_retention() deletes one batch per policy, with
--   FOR UPDATE SKIP LOCKED, and says how many rows each deleted, so a caller runs it
--   again (a short transaction each time) while a batch comes back full. Finished
--   jobs go through messaging.delete_finished_jobs, the queue's own retention, which
--   workers also run (WorkerConfig::retention). Order status history (sales, a later
--   migration) is kept 2 years.
-- * The backlog checks of orders and payments past their time (sales and payments, a
--   later migration) count nothing while those schemas do not exist; the functions
--   are PL/pgSQL, which resolves tables when a statement first runs.

-- Roles are cluster-wide and may exist already (see the foundation migration); they
-- are never dropped.
DO $$
BEGIN
    CREATE ROLE groundwork_monitor NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

-- pg_monitor: every session and query in pg_stat_activity, and the statistics views.
-- A role without the right to grant it (PostgreSQL 16 asks for ADMIN OPTION) leaves a
-- warning; grant it by hand then.
DO $$
BEGIN
    GRANT pg_monitor TO groundwork_monitor;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'groundwork_monitor is not in pg_monitor (%): grant it as a superuser', SQLERRM;
END
$$;

-- Query statistics, when the server has the module and the migrating role may create
-- the extension (it is not a trusted extension).
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_extension WHERE extname = 'pg_stat_statements') THEN
        RETURN;
    ELSIF NOT EXISTS (SELECT FROM pg_available_extensions WHERE name = 'pg_stat_statements') THEN
        RAISE NOTICE 'pg_stat_statements is not installed on this server: ops.get_slow_queries returns no rows';
        RETURN;
    END IF;
    BEGIN
        CREATE EXTENSION pg_stat_statements SCHEMA public;
        REVOKE SELECT ON public.pg_stat_statements, public.pg_stat_statements_info FROM PUBLIC;
        GRANT SELECT ON public.pg_stat_statements, public.pg_stat_statements_info
            TO groundwork_monitor;
    EXCEPTION WHEN insufficient_privilege THEN
        RAISE NOTICE 'pg_stat_statements was not created (%): ops.get_slow_queries returns no rows',
            SQLERRM;
    END;
END
$$;

CREATE SCHEMA ops;

-- One row of ops.check_database_health().
CREATE TYPE ops.health_check AS (
    name text,
    status text,
    value numeric,
    threshold numeric,
    hint text
);

CREATE TABLE ops.health_thresholds (
    name text NOT NULL
        CONSTRAINT health_thresholds_name_format CHECK (name ~ '^[a-z][a-z0-9_]*$'),
    -- The value at (or past) which the check warns, and is critical.
    warning numeric,
    critical numeric,
    -- Whether a higher or a lower value is worse.
    worse text NOT NULL DEFAULT 'above'
        CONSTRAINT health_thresholds_worse_values CHECK (worse IN ('above', 'below')),
    -- What the check considers at all (its unit in description), when it takes one.
    parameter numeric,
    description text NOT NULL,
    CONSTRAINT health_thresholds_pkey PRIMARY KEY (name),
    CONSTRAINT health_thresholds_order CHECK (
        warning IS NULL OR critical IS NULL
        OR CASE worse WHEN 'above' THEN critical >= warning ELSE critical <= warning END)
);

INSERT INTO ops.health_thresholds (name, warning, critical, worse, parameter, description) VALUES
    ('connections_used', 0.8, 0.95, 'above', NULL,
     'client connections as a fraction of max_connections'),
    ('long_running_query', 300, 1800, 'above', NULL,
     'seconds the oldest active query of the database has run'),
    ('idle_in_transaction', 60, 600, 'above', NULL,
     'seconds the oldest transaction of the database has been idle'),
    ('lock_wait', 10, 60, 'above', NULL,
     'seconds the longest lock wait in the database has lasted'),
    ('cache_hit_ratio', 0.95, 0.90, 'below', 10000,
     'fraction of the database''s block reads served from shared buffers, once it has read parameter blocks'),
    ('unused_indexes', 104857600, 1073741824, 'above', NULL,
     'bytes of indexes never scanned since statistics were reset (unique and primary keys excepted)'),
    ('duplicate_indexes', 1, NULL, 'above', NULL,
     'indexes with the same table, columns, operator classes, expressions and predicate as another'),
    ('seq_scans_on_large_tables', 1, NULL, 'above', 10000,
     'tables of at least parameter rows scanned sequentially more often than by index'),
    ('dead_tuples', 0.2, 0.5, 'above', 1000,
     'dead tuples as a fraction of all tuples of the worst table with at least parameter rows: the bloat estimate'),
    ('transaction_id_age', 1000000000, 1500000000, 'above', NULL,
     'transactions since the database was last frozen (wraparound at 2^31)'),
    ('replication_lag', 30, 300, 'above', NULL,
     'seconds the slowest replica is behind (or this replica, in recovery)'),
    ('job_queue_depth', 10000, 100000, 'above', NULL,
     'jobs due to run (available or retryable) in messaging.jobs'),
    ('job_oldest_available_age', 300, 3600, 'above', NULL,
     'seconds the oldest due job has waited'),
    ('outbox_depth', 10000, 100000, 'above', NULL,
     'pending messages in messaging.outbox_messages'),
    ('outbox_lag', 60, 600, 'above', NULL,
     'seconds the oldest pending message has waited'),
    ('subscription_lag', 60, 600, 'above', NULL,
     'seconds the oldest event a subscription has yet to process has waited'),
    ('expired_reservations', 1, 1000, 'above', 300,
     'active inventory reservations expired more than parameter seconds ago and not released'),
    ('expired_idempotency_keys', 10000, 1000000, 'above', 86400,
     'idempotency keys expired more than parameter seconds ago and not deleted'),
    ('expired_orders', 1, 1000, 'above', 300,
     'pending orders expired more than parameter seconds ago and not cleaned up (their stock still held)'),
    ('expired_payments', 1, 1000, 'above', 300,
     'payment authorizations expired more than parameter seconds ago and not cleaned up');

COMMENT ON TABLE ops.health_thresholds IS
    'Per check of ops.check_database_health(): when it warns and is critical; change the rows to tune them';

CREATE TABLE ops.retention_policies (
    name text NOT NULL
        CONSTRAINT retention_policies_name_format CHECK (name ~ '^[a-z][a-z0-9_]*$'),
    -- What is deleted, and from when.
    description text NOT NULL,
    keep interval NOT NULL
        CONSTRAINT retention_policies_keep_nonnegative CHECK (keep >= interval '0'),
    batch_size integer NOT NULL
        CONSTRAINT retention_policies_batch_size_range CHECK (batch_size BETWEEN 1 AND 1000000),
    enabled boolean NOT NULL DEFAULT true,
    CONSTRAINT retention_policies_pkey PRIMARY KEY (name)
);

INSERT INTO ops.retention_policies (name, description, keep, batch_size) VALUES
    ('finished_jobs',
     'messaging.jobs completed, cancelled or discarded more than keep ago (messaging.delete_finished_jobs)',
     interval '7 days', 10000),
    ('delivered_outbox_messages',
     'messaging.outbox_messages delivered more than keep ago (dead letters stay for redrive)',
     interval '7 days', 10000),
    ('expired_sessions',
     'identity.sessions expired or revoked more than keep ago',
     interval '30 days', 10000),
    ('expired_idempotency_keys',
     'messaging.idempotency_keys expired more than keep ago',
     interval '1 day', 10000),
    ('order_status_history',
     'sales.order_status_history rows recorded more than keep ago (the orders themselves stay)',
     interval '2 years', 10000);

COMMENT ON TABLE ops.retention_policies IS
    'What ops.apply_retention() deletes: how long rows are kept after they finish or expire, and how many one batch deletes';

-- A check's row: its status from the thresholds. A check without a value (nothing to
-- measure) is ok.
CREATE FUNCTION ops.rate(check_name text, check_value numeric, check_hint text)
RETURNS ops.health_check
LANGUAGE sql STABLE
SET search_path = pg_catalog, ops, pg_temp
AS $$
    SELECT ROW(
        check_name,
        CASE
            WHEN check_value IS NULL THEN 'ok'
            WHEN t.critical IS NOT NULL AND CASE t.worse WHEN 'above' THEN check_value >= t.critical
                                                         ELSE check_value <= t.critical END
                THEN 'critical'
            WHEN t.warning IS NOT NULL AND CASE t.worse WHEN 'above' THEN check_value >= t.warning
                                                        ELSE check_value <= t.warning END
                THEN 'warning'
            ELSE 'ok'
        END,
        check_value,
        CASE
            WHEN t.critical IS NOT NULL AND check_value IS NOT NULL
                 AND CASE t.worse WHEN 'above' THEN check_value >= t.critical
                                  ELSE check_value <= t.critical END
                THEN t.critical
            ELSE t.warning
        END,
        check_hint)::ops.health_check
    FROM (SELECT) AS one
    LEFT JOIN ops.health_thresholds t ON t.name = check_name
$$;

-- The parameter of a check (what it considers at all).
CREATE FUNCTION ops.parameter(check_name text, fallback numeric) RETURNS numeric
LANGUAGE sql STABLE
SET search_path = pg_catalog, ops, pg_temp
AS $$
    SELECT coalesce((SELECT parameter FROM ops.health_thresholds WHERE name = check_name), fallback)
$$;

-- Client connections against max_connections, with the count per state in the hint.
CREATE FUNCTION ops.connection_checks() RETURNS SETOF ops.health_check
LANGUAGE sql STABLE
SET search_path = pg_catalog, ops, pg_temp
AS $$
    WITH clients AS (
        SELECT coalesce(state, 'unknown') AS state, count(*) AS n
        FROM pg_stat_activity
        WHERE backend_type = 'client backend'
        GROUP BY 1)
    SELECT ops.rate(
        'connections_used',
        round((SELECT coalesce(sum(n), 0) FROM clients)
              / current_setting('max_connections')::numeric, 4),
        format('%s of %s connections: %s', (SELECT coalesce(sum(n), 0) FROM clients),
               current_setting('max_connections'),
               coalesce((SELECT string_agg(format('%s %s', n, state), ', ' ORDER BY n DESC, state)
                         FROM clients), 'none')))
$$;

-- In this database: the longest active query, the longest idle transaction, and the
-- longest lock wait with the sessions blocking it (process ids, never query texts).
CREATE FUNCTION ops.session_checks() RETURNS SETOF ops.health_check
LANGUAGE sql STABLE
SET search_path = pg_catalog, ops, pg_temp
AS $$
    WITH sessions AS (
        SELECT pid, state, wait_event_type, query_start, state_change, xact_start
        FROM pg_stat_activity
        WHERE backend_type = 'client backend' AND datname = current_database()
          AND pid <> pg_backend_pid()),
    longest AS (
        SELECT pid, extract(epoch FROM now() - query_start) AS seconds FROM sessions
        WHERE state = 'active' ORDER BY query_start LIMIT 1),
    idle AS (
        SELECT pid, extract(epoch FROM now() - state_change) AS seconds FROM sessions
        WHERE state IN ('idle in transaction', 'idle in transaction (aborted)')
        ORDER BY state_change LIMIT 1),
    waiting AS (
        SELECT pid, extract(epoch FROM now() - state_change) AS seconds,
               pg_blocking_pids(pid) AS blockers
        FROM sessions
        WHERE state = 'active' AND wait_event_type = 'Lock'
        ORDER BY state_change LIMIT 1)
    SELECT ops.rate('long_running_query', round((SELECT seconds FROM longest), 1),
                    (SELECT format('process %s has run one query for %s s', pid, round(seconds))
                     FROM longest))
    UNION ALL
    SELECT ops.rate('idle_in_transaction', round((SELECT seconds FROM idle), 1),
                    (SELECT format('process %s has been idle in a transaction for %s s: it holds its locks and its snapshot',
                                   pid, round(seconds))
                     FROM idle))
    UNION ALL
    SELECT ops.rate('lock_wait', round((SELECT seconds FROM waiting), 1),
                    (SELECT format('process %s has waited %s s for a lock held by process(es) %s',
                                   pid, round(seconds), array_to_string(blockers, ', '))
                     FROM waiting))
$$;

-- The database's buffer cache hit ratio since statistics were reset.
CREATE FUNCTION ops.cache_checks() RETURNS SETOF ops.health_check
LANGUAGE sql STABLE
SET search_path = pg_catalog, ops, pg_temp
AS $$
    SELECT ops.rate(
        'cache_hit_ratio',
        CASE WHEN blks_hit + blks_read >= greatest(ops.parameter('cache_hit_ratio', 10000), 1)
             THEN round(blks_hit::numeric / (blks_hit + blks_read), 4) END,
        format('%s blocks from shared buffers, %s read', blks_hit, blks_read))
    FROM pg_stat_database WHERE datname = current_database()
$$;

-- Unused indexes by size, and indexes that duplicate another.
CREATE FUNCTION ops.index_checks() RETURNS SETOF ops.health_check
LANGUAGE sql STABLE
SET search_path = pg_catalog, ops, pg_temp
AS $$
    WITH unused AS (
        SELECT s.indexrelid::regclass::text AS name, pg_relation_size(s.indexrelid) AS bytes
        FROM pg_stat_user_indexes s JOIN pg_index i ON i.indexrelid = s.indexrelid
        WHERE s.idx_scan = 0 AND NOT i.indisunique AND NOT i.indisprimary
          AND NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conindid = s.indexrelid)),
    duplicates AS (
        SELECT i.indexrelid::regclass::text AS name, min(o.indexrelid::regclass::text) AS of
        FROM pg_index i
        JOIN pg_index o ON o.indrelid = i.indrelid AND o.indexrelid < i.indexrelid
                       AND o.indkey = i.indkey AND o.indclass = i.indclass
                       AND o.indcollation = i.indcollation
                       AND coalesce(pg_get_expr(o.indexprs, o.indrelid), '')
                           = coalesce(pg_get_expr(i.indexprs, i.indrelid), '')
                       AND coalesce(pg_get_expr(o.indpred, o.indrelid), '')
                           = coalesce(pg_get_expr(i.indpred, i.indrelid), '')
        JOIN pg_class c ON c.oid = i.indrelid
        WHERE c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace,
                                     'pg_toast'::regnamespace)
        GROUP BY i.indexrelid)
    SELECT ops.rate(
        'unused_indexes', (SELECT coalesce(sum(bytes), 0) FROM unused),
        format('%s unused index(es); largest: %s', (SELECT count(*) FROM unused),
               coalesce((SELECT string_agg(format('%s (%s)', name, pg_size_pretty(bytes)), ', ')
                         FROM (SELECT name, bytes FROM unused ORDER BY bytes DESC, name LIMIT 3) top),
                        'none')))
    UNION ALL
    SELECT ops.rate(
        'duplicate_indexes', (SELECT count(*) FROM duplicates),
        (SELECT string_agg(format('%s duplicates %s', name, of), ', ' ORDER BY name) FROM duplicates))
$$;

-- Large tables read by sequential scans, dead tuples (the bloat estimate), and the
-- database's transaction-ID age.
CREATE FUNCTION ops.table_checks() RETURNS SETOF ops.health_check
LANGUAGE sql STABLE
SET search_path = pg_catalog, ops, pg_temp
AS $$
    WITH scanned AS (
        SELECT relid::regclass::text AS name, seq_scan, coalesce(idx_scan, 0) AS idx_scan
        FROM pg_stat_user_tables
        WHERE n_live_tup >= ops.parameter('seq_scans_on_large_tables', 10000)
          AND seq_scan > coalesce(idx_scan, 0)),
    dead AS (
        SELECT relid::regclass::text AS name, n_dead_tup,
               round(n_dead_tup::numeric / (n_live_tup + n_dead_tup), 4) AS ratio
        FROM pg_stat_user_tables
        WHERE n_live_tup + n_dead_tup >= greatest(ops.parameter('dead_tuples', 1000), 1)
        ORDER BY 3 DESC, 1 LIMIT 1)
    SELECT ops.rate(
        'seq_scans_on_large_tables', (SELECT count(*) FROM scanned),
        (SELECT string_agg(format('%s (%s sequential, %s index scans)', name, seq_scan, idx_scan),
                           ', ' ORDER BY seq_scan DESC, name)
         FROM scanned))
    UNION ALL
    SELECT ops.rate(
        'dead_tuples', (SELECT ratio FROM dead),
        (SELECT format('%s has %s dead tuples: VACUUM it (groundwork db maintain)', name, n_dead_tup)
         FROM dead))
    UNION ALL
    SELECT ops.rate(
        'transaction_id_age', age(datfrozenxid),
        format('VACUUM (FREEZE) before %s more transactions reach wraparound',
               2147483647 - age(datfrozenxid)))
    FROM pg_database WHERE datname = current_database()
$$;

-- Replication: the slowest replica's replay lag on a primary, this server's own on a
-- replica; no value (ok) without replicas.
CREATE FUNCTION ops.replication_checks() RETURNS SETOF ops.health_check
LANGUAGE sql STABLE
SET search_path = pg_catalog, ops, pg_temp
AS $$
    SELECT CASE
        WHEN pg_is_in_recovery() THEN
            ops.rate('replication_lag',
                     round(extract(epoch FROM now() - pg_last_xact_replay_timestamp())::numeric, 1),
                     'this server is a replica; seconds since the last replayed transaction')
        ELSE
            ops.rate('replication_lag',
                     (SELECT round(max(extract(epoch FROM coalesce(replay_lag, write_lag, interval '0')))::numeric, 1)
                      FROM pg_stat_replication),
                     (SELECT CASE count(*) WHEN 0 THEN 'no replicas'
                                 ELSE format('%s replica(s)', count(*)) END
                      FROM pg_stat_replication))
    END
$$;

-- groundwork's own backlogs, across tenants: counts and ages only. The one function of
-- the health checks that reads tenant tables, as their owner.
CREATE FUNCTION ops.backlog_checks() RETURNS SETOF ops.health_check
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = pg_catalog, ops, pg_temp
AS $$
DECLARE
    due bigint;
    oldest_due numeric;
    pending bigint;
    oldest_pending numeric;
    behind bigint;
    oldest_unprocessed numeric;
    reservations bigint;
    keys bigint;
    orders bigint;
    payments bigint;
BEGIN
    SELECT count(*), extract(epoch FROM now() - min(j.run_at))
    INTO due, oldest_due
    FROM messaging.jobs j
    WHERE j.status IN ('available', 'retryable') AND j.run_at <= now();
    RETURN NEXT ops.rate('job_queue_depth', due, 'jobs due to run; are the workers running?');
    RETURN NEXT ops.rate('job_oldest_available_age', round(oldest_due, 1),
                         'seconds the oldest due job has waited for a worker');

    SELECT count(*), extract(epoch FROM now() - min(m.created_at))
    INTO pending, oldest_pending
    FROM messaging.outbox_messages m WHERE m.status = 'pending';
    RETURN NEXT ops.rate('outbox_depth', pending, 'messages waiting for the relay');
    RETURN NEXT ops.rate('outbox_lag', round(oldest_pending, 1),
                         'seconds the oldest pending message has waited; is the relay running?');

    -- One probe of the events' primary key per subscription: its next event, if any.
    SELECT count(next.recorded_at), extract(epoch FROM now() - min(next.recorded_at))
    INTO behind, oldest_unprocessed
    FROM eventstore.subscriptions s
    CROSS JOIN LATERAL (
        SELECT e.recorded_at FROM eventstore.events e
        WHERE e.organization_id = s.organization_id AND e.position > s.position
        ORDER BY e.position LIMIT 1) next;
    RETURN NEXT ops.rate('subscription_lag', round(oldest_unprocessed, 1),
                         format('%s subscription(s) behind the head of their event log', behind));

    SELECT count(*) INTO reservations
    FROM inventory.reservations r
    WHERE r.status = 'active'
      AND r.expires_at < now() - make_interval(secs => ops.parameter('expired_reservations', 300));
    RETURN NEXT ops.rate('expired_reservations', reservations,
                         'run inventory.cleanup_expired_reservations() periodically');

    SELECT count(*) INTO keys
    FROM messaging.idempotency_keys k
    WHERE k.expires_at < now() - make_interval(secs => ops.parameter('expired_idempotency_keys', 86400));
    RETURN NEXT ops.rate('expired_idempotency_keys', keys,
                         'run ops.apply_retention() periodically (groundwork db maintain)');

    -- The commerce schemas come in a later migration: until then there is nothing due.
    IF to_regclass('sales.orders') IS NOT NULL THEN
        SELECT count(*) INTO orders
        FROM sales.orders o
        WHERE o.status = 'pending'
          AND o.expires_at < now() - make_interval(secs => ops.parameter('expired_orders', 300));
        SELECT count(*) INTO payments
        FROM payments.payments p
        WHERE p.status = 'authorized'
          AND p.expires_at < now() - make_interval(secs => ops.parameter('expired_payments', 300));
    END IF;
    RETURN NEXT ops.rate('expired_orders', coalesce(orders, 0),
                         'run sales.cleanup_expired_orders() periodically (groundwork db maintain)');
    RETURN NEXT ops.rate('expired_payments', coalesce(payments, 0),
                         'run payments.cleanup_expired_payments() periodically (groundwork db maintain)');
END
$$;

-- Every check, one row each: name, status (ok, warning, critical), value, the
-- threshold it met (else its warning threshold), and a hint.
CREATE FUNCTION ops.check_database_health() RETURNS SETOF ops.health_check
LANGUAGE sql STABLE
SET search_path = pg_catalog, ops, pg_temp
AS $$
    SELECT * FROM ops.connection_checks()
    UNION ALL SELECT * FROM ops.session_checks()
    UNION ALL SELECT * FROM ops.cache_checks()
    UNION ALL SELECT * FROM ops.index_checks()
    UNION ALL SELECT * FROM ops.table_checks()
    UNION ALL SELECT * FROM ops.replication_checks()
    UNION ALL SELECT * FROM ops.backlog_checks()
$$;

-- Per table: rows, dead rows and their fraction (the bloat estimate), sizes, scans,
-- and when it was last vacuumed and analyzed.
CREATE FUNCTION ops.get_table_statistics()
RETURNS TABLE (
    schema_name text, table_name text, live_rows bigint, dead_rows bigint,
    dead_ratio numeric, modified_since_analyze bigint, table_bytes bigint,
    index_bytes bigint, total_bytes bigint, seq_scans bigint, index_scans bigint,
    last_vacuum timestamptz, last_analyze timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, ops, pg_temp
AS $$
    SELECT s.schemaname::text, s.relname::text, s.n_live_tup, s.n_dead_tup,
           CASE WHEN s.n_live_tup + s.n_dead_tup > 0
                THEN round(s.n_dead_tup::numeric / (s.n_live_tup + s.n_dead_tup), 4) ELSE 0 END,
           s.n_mod_since_analyze,
           pg_table_size(s.relid), pg_indexes_size(s.relid), pg_total_relation_size(s.relid),
           s.seq_scan, coalesce(s.idx_scan, 0),
           greatest(s.last_vacuum, s.last_autovacuum), greatest(s.last_analyze, s.last_autoanalyze)
    FROM pg_stat_user_tables s
    ORDER BY pg_total_relation_size(s.relid) DESC, 1, 2
$$;

-- Per index: scans, size, whether it is unused (never scanned, and neither unique nor
-- a constraint's) and which index it duplicates.
CREATE FUNCTION ops.get_index_usage_statistics()
RETURNS TABLE (
    schema_name text, table_name text, index_name text, index_scans bigint,
    tuples_read bigint, tuples_fetched bigint, index_bytes bigint, is_unique boolean,
    unused boolean, duplicate_of text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, ops, pg_temp
AS $$
    SELECT s.schemaname::text, s.relname::text, s.indexrelname::text, s.idx_scan,
           s.idx_tup_read, s.idx_tup_fetch, pg_relation_size(s.indexrelid), i.indisunique,
           s.idx_scan = 0 AND NOT i.indisunique AND NOT i.indisprimary
               AND NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conindid = s.indexrelid),
           (SELECT min(o.indexrelid::regclass::text) FROM pg_index o
            WHERE o.indrelid = i.indrelid AND o.indexrelid <> i.indexrelid
              AND o.indkey = i.indkey AND o.indclass = i.indclass
              AND o.indcollation = i.indcollation
              AND coalesce(pg_get_expr(o.indexprs, o.indrelid), '')
                  = coalesce(pg_get_expr(i.indexprs, i.indrelid), '')
              AND coalesce(pg_get_expr(o.indpred, o.indrelid), '')
                  = coalesce(pg_get_expr(i.indpred, i.indrelid), ''))
    FROM pg_stat_user_indexes s JOIN pg_index i ON i.indexrelid = s.indexrelid
    ORDER BY 1, 2, 3
$$;

-- Buffer cache hit ratios: the database, its tables and its indexes.
CREATE FUNCTION ops.get_cache_hit_ratios()
RETURNS TABLE (scope text, hits bigint, reads bigint, ratio numeric)
LANGUAGE sql STABLE
SET search_path = pg_catalog, ops, pg_temp
AS $$
    WITH counts (scope, hits, reads) AS (
        SELECT 'database', blks_hit, blks_read
        FROM pg_stat_database WHERE datname = current_database()
        UNION ALL
        SELECT 'tables', coalesce(sum(heap_blks_hit), 0)::bigint, coalesce(sum(heap_blks_read), 0)::bigint
        FROM pg_statio_user_tables
        UNION ALL
        SELECT 'indexes', coalesce(sum(idx_blks_hit), 0)::bigint, coalesce(sum(idx_blks_read), 0)::bigint
        FROM pg_statio_user_indexes)
    SELECT scope, hits, reads,
           CASE WHEN hits + reads > 0 THEN round(hits::numeric / (hits + reads), 4) END
    FROM counts
$$;

-- The statements of this database with the most total execution time, from
-- pg_stat_statements; no rows, with a notice, when it is not installed or not loaded.
CREATE FUNCTION ops.get_slow_queries("limit" integer DEFAULT 20)
RETURNS TABLE (
    query text, calls bigint, total_ms numeric, mean_ms numeric, max_ms numeric,
    rows bigint, cache_hit_ratio numeric)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, ops, pg_temp
AS $$
DECLARE
    home name;
BEGIN
    IF "limit" IS NULL OR "limit" NOT BETWEEN 1 AND 1000 THEN
        RAISE EXCEPTION 'limit is 1 to 1000, not %', "limit" USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT n.nspname INTO home
    FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace
    WHERE x.extname = 'pg_stat_statements';
    IF home IS NULL THEN
        RAISE NOTICE 'pg_stat_statements is not installed in this database: no slow queries to show';
        RETURN;
    END IF;
    BEGIN
        RETURN QUERY EXECUTE format(
            'SELECT s.query, s.calls, round(s.total_exec_time::numeric, 3),
                    round(s.mean_exec_time::numeric, 3), round(s.max_exec_time::numeric, 3),
                    s.rows,
                    CASE WHEN s.shared_blks_hit + s.shared_blks_read > 0
                         THEN round(s.shared_blks_hit::numeric / (s.shared_blks_hit + s.shared_blks_read), 4) END
             FROM %I.pg_stat_statements s
             WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
             ORDER BY s.total_exec_time DESC
             LIMIT $1', home)
        USING "limit";
    EXCEPTION WHEN object_not_in_prerequisite_state THEN
        RAISE NOTICE 'pg_stat_statements is not loaded (shared_preload_libraries): no slow queries to show';
    END;
END
$$;

-- Retention: one batch per enabled policy (at most batch_limit rows each when given),
-- returning the rows each deleted. Run it again while a policy deleted a full batch.
CREATE FUNCTION ops.apply_retention(batch_limit integer DEFAULT NULL)
RETURNS TABLE (policy text, deleted bigint, batch integer)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, ops, pg_temp
AS $$
DECLARE
    p ops.retention_policies;
BEGIN
    IF batch_limit IS NOT NULL AND batch_limit NOT BETWEEN 1 AND 1000000 THEN
        RAISE EXCEPTION 'batch_limit is 1 to 1000000, not %', batch_limit
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR p IN SELECT * FROM ops.retention_policies WHERE enabled ORDER BY name LOOP
        policy := p.name;
        batch := least(p.batch_size, coalesce(batch_limit, p.batch_size));
        deleted := ops.retention_batch(p.name, p.keep, batch);
        RETURN NEXT;
    END LOOP;
END
$$;

-- One batch of one policy: rows locked by others are skipped, not waited for.
CREATE FUNCTION ops.retention_batch(policy text, keep interval, batch integer) RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, ops, pg_temp
AS $$
DECLARE
    n bigint;
BEGIN
    CASE policy
    WHEN 'finished_jobs' THEN
        n := messaging.delete_finished_jobs(keep, batch);
    WHEN 'delivered_outbox_messages' THEN
        WITH gone AS (
            DELETE FROM messaging.outbox_messages m
            USING (SELECT o.organization_id, o.id FROM messaging.outbox_messages o
                   WHERE o.status = 'delivered' AND o.delivered_at < now() - keep
                   LIMIT batch FOR UPDATE SKIP LOCKED) old
            WHERE m.organization_id = old.organization_id AND m.id = old.id
            RETURNING 1)
        SELECT count(*) INTO n FROM gone;
    WHEN 'expired_sessions' THEN
        WITH gone AS (
            DELETE FROM identity.sessions s
            USING (SELECT o.id FROM identity.sessions o
                   WHERE o.expires_at < now() - keep OR o.revoked_at < now() - keep
                   LIMIT batch FOR UPDATE SKIP LOCKED) old
            WHERE s.id = old.id
            RETURNING 1)
        SELECT count(*) INTO n FROM gone;
    WHEN 'expired_idempotency_keys' THEN
        WITH gone AS (
            DELETE FROM messaging.idempotency_keys k
            USING (SELECT o.organization_id, o.key FROM messaging.idempotency_keys o
                   WHERE o.expires_at < now() - keep
                   LIMIT batch FOR UPDATE SKIP LOCKED) old
            WHERE k.organization_id = old.organization_id AND k.key = old.key
            RETURNING 1)
        SELECT count(*) INTO n FROM gone;
    WHEN 'order_status_history' THEN
        WITH gone AS (
            DELETE FROM sales.order_status_history h
            USING (SELECT o.organization_id, o.id FROM sales.order_status_history o
                   WHERE o.changed_at < now() - keep
                   LIMIT batch FOR UPDATE SKIP LOCKED) old
            WHERE h.organization_id = old.organization_id AND h.id = old.id
            RETURNING 1)
        SELECT count(*) INTO n FROM gone;
    ELSE
        RAISE EXCEPTION 'no retention rule for policy %', policy
            USING ERRCODE = 'invalid_parameter_value';
    END CASE;
    RETURN n;
END
$$;

SELECT public.groundwork_set_owner('ops', 'groundwork_owner');

-- Privileges: the monitor reads the ops tables and calls the ops functions; nothing
-- in ops is for PUBLIC. Only the owner changes thresholds and policies, and applies
-- retention (the CLI's db maintain, as the server's own user; or a worker).
GRANT USAGE ON SCHEMA ops TO groundwork_monitor, groundwork_worker;
GRANT SELECT ON ops.health_thresholds, ops.retention_policies TO groundwork_monitor;
REVOKE ALL ON FUNCTION
    ops.rate(text, numeric, text),
    ops.parameter(text, numeric),
    ops.connection_checks(),
    ops.session_checks(),
    ops.cache_checks(),
    ops.index_checks(),
    ops.table_checks(),
    ops.replication_checks(),
    ops.backlog_checks(),
    ops.check_database_health(),
    ops.get_table_statistics(),
    ops.get_index_usage_statistics(),
    ops.get_cache_hit_ratios(),
    ops.get_slow_queries(integer),
    ops.apply_retention(integer),
    ops.retention_batch(text, interval, integer)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    ops.rate(text, numeric, text),
    ops.parameter(text, numeric),
    ops.connection_checks(),
    ops.session_checks(),
    ops.cache_checks(),
    ops.index_checks(),
    ops.table_checks(),
    ops.replication_checks(),
    ops.backlog_checks(),
    ops.check_database_health(),
    ops.get_table_statistics(),
    ops.get_index_usage_statistics(),
    ops.get_cache_hit_ratios(),
    ops.get_slow_queries(integer)
    TO groundwork_monitor;
GRANT EXECUTE ON FUNCTION ops.apply_retention(integer) TO groundwork_worker;
