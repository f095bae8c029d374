-- Why: the job queue (docs/REQUIREMENTS.md, "jobs"; seed 001's jobs table). A service
-- enqueues in the same transaction as its business writes, so work is never lost or
-- done for a change that rolled back; workers of any language run it through the SQL
-- API below, as the role groundwork_worker, across tenants.
--
-- * messaging.jobs is tenant-owned: the application and read-only roles see their
--   tenant's jobs under row-level security. Nobody but the owner writes the table:
--   the application enqueues, cancels and retries through definer functions that take
--   the tenant from the context, and workers fetch, heartbeat, complete and fail
--   through definer functions that name a job by its id and their worker_id. The
--   worker role reads no tenant table.
-- * A job's life: available (or scheduled, when run_at is in the future) -> running
--   (fetched: attempt + 1, leased to one worker until lease_expires_at) -> completed,
--   or retryable (failed; run_at moved by exponential backoff with jitter) and fetched
--   again, or discarded after its max_attempts-th attempt; cancelled at any point
--   before it finishes. A lease that expires is taken back by the next fetch of the
--   queue, the attempt counted, and the job runs again (or is discarded if that was its
--   last attempt); the worker that lost it can no longer complete, fail or heartbeat it.
-- * Fairness: a fetch takes jobs round-robin across the tenants with due jobs in the
--   queue (oldest waiting tenant first when there are more tenants than jobs asked
--   for), and by priority (lower first), run_at and id within a tenant, so one tenant's
--   million jobs never starve another's ten.
-- * Limits (refused with PostgreSQL's SQLSTATEs, nothing written; docs/SECURITY.md):
--   kind a letter then letters, digits, "_.:-", at most 200 bytes; queue a lower-case
--   letter then lower-case letters, digits, "_.-", at most 63 bytes; args at most 256
--   KiB; priority -100 to 100; max_attempts 1 to 100; idempotency key 1 to 255
--   characters; 10,000 jobs per batch; fetch 1 to 1,000 jobs with a lease of 1 second
--   to 1 day; worker_id 1 to 200 characters; metrics an object of at most 64 KiB;
--   progress 0 to 100. Errors are kept truncated to 4,096 characters, the last 20.
-- * Enqueueing a due job notifies channel messaging_jobs with the queue's name as the
--   payload, and nothing about the tenant.
-- * Rate limits (jobs started per second in a queue, and for each tenant in it) are
--   token buckets in job_rate_limits and job_rate_buckets, so every worker shares them.
-- * A worker shutting down gives back jobs it fetched and never started
--   (release_jobs); delete_finished_jobs is the retention clean-up.

-- Roles are cluster-wide and may exist already (see the foundation migration); they
-- are never dropped.
DO $$
BEGIN
    CREATE ROLE groundwork_worker NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

CREATE TYPE messaging.job_status AS ENUM (
    'available', 'scheduled', 'running', 'retryable', 'completed', 'cancelled', 'discarded');

CREATE TABLE messaging.jobs (
    id bigint GENERATED ALWAYS AS IDENTITY,
    organization_id uuid NOT NULL DEFAULT identity.current_org_id()
        CONSTRAINT jobs_organization_id_fkey
            REFERENCES identity.organizations (id) ON DELETE RESTRICT,
    kind text NOT NULL
        CONSTRAINT jobs_kind_format
            CHECK (kind ~ '^[A-Za-z][A-Za-z0-9_.:-]*$' AND octet_length(kind) <= 200),
    queue text NOT NULL DEFAULT 'default'
        CONSTRAINT jobs_queue_format
            CHECK (queue ~ '^[a-z][a-z0-9_.-]*$' AND octet_length(queue) <= 63),
    args jsonb NOT NULL
        CONSTRAINT jobs_args_size CHECK (pg_column_size(args) <= 262144),
    status messaging.job_status NOT NULL DEFAULT 'available',
    -- Lower runs first, within a tenant.
    priority smallint NOT NULL DEFAULT 0
        CONSTRAINT jobs_priority_range CHECK (priority BETWEEN -100 AND 100),
    run_at timestamptz NOT NULL DEFAULT now()
        CONSTRAINT jobs_run_at_finite CHECK (isfinite(run_at)),
    -- Fetches so far; the job is discarded when a failure ends attempt max_attempts.
    attempt integer NOT NULL DEFAULT 0
        CONSTRAINT jobs_attempt_nonnegative CHECK (attempt >= 0),
    max_attempts integer NOT NULL DEFAULT 25
        CONSTRAINT jobs_max_attempts_range CHECK (max_attempts BETWEEN 1 AND 100),
    -- [{"attempt", "at", "error", "worker_id"}], the last 20 failures.
    errors jsonb NOT NULL DEFAULT '[]'::jsonb
        CONSTRAINT jobs_errors_array CHECK (jsonb_typeof(errors) = 'array'),
    lease_owner text,
    lease_expires_at timestamptz,
    -- The lease a heartbeat renews.
    lease_duration interval,
    progress smallint NOT NULL DEFAULT 0
        CONSTRAINT jobs_progress_range CHECK (progress BETWEEN 0 AND 100),
    metrics jsonb
        CONSTRAINT jobs_metrics_object
            CHECK (jsonb_typeof(metrics) = 'object' AND pg_column_size(metrics) <= 65536),
    idempotency_key text
        CONSTRAINT jobs_idempotency_key_length
            CHECK (char_length(idempotency_key) BETWEEN 1 AND 255),
    created_at timestamptz NOT NULL DEFAULT now(),
    attempted_at timestamptz,
    finished_at timestamptz,
    CONSTRAINT jobs_pkey PRIMARY KEY (organization_id, id),
    -- Global by nature: the worker API (any language) names a job by its id alone.
    CONSTRAINT jobs_id_key UNIQUE (id),
    CONSTRAINT jobs_lease_state CHECK (
        (status = 'running') = (lease_owner IS NOT NULL)
        AND (lease_owner IS NULL) = (lease_expires_at IS NULL)),
    CONSTRAINT jobs_finished_state CHECK (
        (status IN ('completed', 'cancelled', 'discarded')) = (finished_at IS NOT NULL))
);

-- The fetch path: tenants with waiting jobs of a queue (a skip scan), then each
-- tenant's jobs in priority order.
CREATE INDEX jobs_fetch_idx ON messaging.jobs (queue, organization_id, priority, run_at, id)
    WHERE status IN ('available', 'scheduled', 'retryable');
-- Expired leases of a queue, taken back by the next fetch.
CREATE INDEX jobs_running_idx ON messaging.jobs (queue, lease_expires_at)
    WHERE status = 'running';
-- The same key returns the existing job: one job per key and tenant.
CREATE UNIQUE INDEX jobs_idempotency_key_key ON messaging.jobs (organization_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

ALTER TABLE messaging.jobs ENABLE ROW LEVEL SECURITY;
CREATE POLICY jobs_tenant ON messaging.jobs
    FOR ALL TO groundwork_app, groundwork_readonly
    USING (organization_id = identity.current_org_id())
    WITH CHECK (organization_id = identity.current_org_id());

-- Rate limits, held across workers: jobs started per second in a queue as a whole and
-- for each tenant in it, as token buckets (a burst of the rate rounded up, at least 1).
-- Workers set them (set_job_rate_limit); fetch_jobs spends them. A queue with a limit
-- is fetched by one worker at a time (its row is locked for the fetch).
CREATE TABLE messaging.job_rate_limits (
    queue text NOT NULL
        CONSTRAINT job_rate_limits_queue_format
            CHECK (queue ~ '^[a-z][a-z0-9_.-]*$' AND octet_length(queue) <= 63),
    jobs_per_second float8
        CONSTRAINT job_rate_limits_rate_range CHECK (jobs_per_second > 0 AND jobs_per_second <= 1000000),
    burst integer NOT NULL DEFAULT 1 CONSTRAINT job_rate_limits_burst_positive CHECK (burst >= 1),
    tenant_jobs_per_second float8
        CONSTRAINT job_rate_limits_tenant_rate_range
            CHECK (tenant_jobs_per_second > 0 AND tenant_jobs_per_second <= 1000000),
    tenant_burst integer NOT NULL DEFAULT 1
        CONSTRAINT job_rate_limits_tenant_burst_positive CHECK (tenant_burst >= 1),
    -- The queue's bucket.
    tokens float8 NOT NULL DEFAULT 0,
    refilled_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT job_rate_limits_pkey PRIMARY KEY (queue)
);

-- Each tenant's bucket in a queue with a tenant limit; a missing row is a full bucket.
CREATE TABLE messaging.job_rate_buckets (
    organization_id uuid NOT NULL
        CONSTRAINT job_rate_buckets_organization_id_fkey
            REFERENCES identity.organizations (id) ON DELETE CASCADE,
    queue text NOT NULL,
    tokens float8 NOT NULL,
    refilled_at timestamptz NOT NULL,
    CONSTRAINT job_rate_buckets_pkey PRIMARY KEY (organization_id, queue)
);

-- Only the owner's functions read or write it; the policy keeps the convention.
ALTER TABLE messaging.job_rate_buckets ENABLE ROW LEVEL SECURITY;
CREATE POLICY job_rate_buckets_tenant ON messaging.job_rate_buckets
    FOR ALL TO groundwork_app, groundwork_readonly
    USING (organization_id = identity.current_org_id())
    WITH CHECK (organization_id = identity.current_org_id());

-- What is wrong with one job to enqueue, as ARRAY[sqlstate, message], or NULL. The
-- queue, priority and max_attempts arrive with their defaults applied.
CREATE FUNCTION messaging.job_input_problem(
    kind text, args jsonb, queue text, priority smallint, run_at timestamptz,
    idempotency_key text, max_attempts integer)
RETURNS text[]
LANGUAGE sql STABLE
AS $$
SELECT CASE
    WHEN kind IS NULL THEN ARRAY['22004', 'a job kind must not be null']
    WHEN args IS NULL THEN ARRAY['22004', 'job args must not be null (''{}'' for none)']
    WHEN octet_length(kind) > 200 THEN
        ARRAY['54000', format('a job kind is at most 200 bytes, not %s', octet_length(kind))]
    WHEN kind !~ '^[A-Za-z][A-Za-z0-9_.:-]*$' THEN
        ARRAY['22023', format('job kind %L: a letter, then letters, digits, "_", ".", ":" or "-"',
                              left(kind, 60))]
    WHEN pg_column_size(args) > 262144 THEN
        ARRAY['54000', format('job args are at most 262144 bytes (256 KiB), not %s',
                              pg_column_size(args))]
    WHEN octet_length(queue) > 63 THEN
        ARRAY['54000', format('a queue name is at most 63 bytes, not %s', octet_length(queue))]
    WHEN queue !~ '^[a-z][a-z0-9_.-]*$' THEN
        ARRAY['22023', format('queue %L: a lower-case letter, then lower-case letters, digits, "_", "." or "-"',
                              left(queue, 60))]
    WHEN priority NOT BETWEEN -100 AND 100 THEN
        ARRAY['22023', format('job priority %s is outside -100 to 100', priority)]
    WHEN NOT isfinite(run_at) THEN ARRAY['22023', 'run_at must be a finite time']
    WHEN idempotency_key = '' THEN ARRAY['22023', 'an idempotency key must not be empty']
    WHEN char_length(idempotency_key) > 255 THEN
        ARRAY['54000', format('an idempotency key is at most 255 characters, not %s',
                              char_length(idempotency_key))]
    WHEN max_attempts NOT BETWEEN 1 AND 100 THEN
        ARRAY['22023', format('max_attempts %s is outside 1 to 100', max_attempts)]
END
$$;

-- Enqueues jobs for the current tenant in one statement: element i of each array is
-- job i; queues, priorities, run_ats, idempotency_keys and max_attempts may be NULL
-- (all defaults) and their NULL elements take the defaults ('default', 0, now(), none,
-- 25). Returns each job's id in input order; a key the tenant already has (also one
-- committed concurrently, or earlier in the same batch) returns that job's id and
-- enqueues nothing. All or nothing: one bad job refuses the batch.
CREATE FUNCTION messaging.enqueue_jobs(
    kinds text[], args jsonb[], queues text[] DEFAULT NULL, priorities smallint[] DEFAULT NULL,
    run_ats timestamptz[] DEFAULT NULL, idempotency_keys text[] DEFAULT NULL,
    max_attempts integer[] DEFAULT NULL)
RETURNS SETOF bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, messaging, pg_temp
AS $$
DECLARE
    org uuid := identity.current_org_id();
    n integer := coalesce(cardinality(kinds), 0);
    bad record;
    ids bigint[];
    inserted bigint[];
    woken text[];
BEGIN
    IF org IS NULL THEN
        RAISE EXCEPTION 'enqueueing a job needs a tenant: app.current_org_id is not set'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF kinds IS NULL OR enqueue_jobs.args IS NULL THEN
        RAISE EXCEPTION 'kinds and args must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF n > 10000 THEN
        RAISE EXCEPTION 'a batch is at most 10000 jobs, not %', n
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
    IF cardinality(enqueue_jobs.args) <> n
       OR coalesce(cardinality(queues), n) <> n OR coalesce(cardinality(priorities), n) <> n
       OR coalesce(cardinality(run_ats), n) <> n OR coalesce(cardinality(idempotency_keys), n) <> n
       OR coalesce(cardinality(enqueue_jobs.max_attempts), n) <> n THEN
        RAISE EXCEPTION 'the arrays of a batch must have one element per job (% kinds)', n
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT t.ord, p.problem INTO bad
    FROM unnest(kinds, enqueue_jobs.args, queues, priorities, run_ats, idempotency_keys,
                enqueue_jobs.max_attempts) WITH ORDINALITY AS t(k, a, q, p, r, key, m, ord),
         LATERAL (SELECT messaging.job_input_problem(
                      t.k, t.a, coalesce(t.q, 'default'), coalesce(t.p, 0::smallint),
                      coalesce(t.r, now()), t.key, coalesce(t.m, 25)) AS problem) p
    WHERE p.problem IS NOT NULL
    ORDER BY t.ord
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION USING ERRCODE = bad.problem[1],
            MESSAGE = CASE WHEN n = 1 THEN bad.problem[2]
                           ELSE format('job %s of %s: %s', bad.ord, n, bad.problem[2]) END;
    END IF;

    -- Ids first, so that what was inserted is known by id and the rest by key.
    ids := ARRAY(SELECT nextval('messaging.jobs_id_seq') FROM generate_series(1, n));
    WITH ins AS (
        INSERT INTO messaging.jobs AS j
            (id, organization_id, kind, args, queue, priority, run_at, status,
             idempotency_key, max_attempts)
        OVERRIDING SYSTEM VALUE
        SELECT ids[t.ord], org, t.k, t.a, coalesce(t.q, 'default'), coalesce(t.p, 0::smallint),
               coalesce(t.r, now()),
               CASE WHEN t.r > now() THEN 'scheduled'::messaging.job_status ELSE 'available' END,
               t.key, coalesce(t.m, 25)
        FROM unnest(kinds, enqueue_jobs.args, queues, priorities, run_ats, idempotency_keys,
                    enqueue_jobs.max_attempts) WITH ORDINALITY AS t(k, a, q, p, r, key, m, ord)
        ORDER BY t.ord
        ON CONFLICT (organization_id, idempotency_key) WHERE idempotency_key IS NOT NULL
            DO NOTHING
        RETURNING j.id, j.queue, j.status
    )
    SELECT array_agg(ins.id),
           array_agg(DISTINCT ins.queue) FILTER (WHERE ins.status = 'available')
    INTO inserted, woken
    FROM ins;

    -- The queue's name only: listeners learn nothing about the tenant.
    PERFORM pg_notify('messaging_jobs', q) FROM unnest(woken) AS q;

    -- A later statement sees the jobs of a conflicting key committed meanwhile.
    RETURN QUERY
    SELECT coalesce(ins.id, existing.id)
    FROM unnest(ids, idempotency_keys) WITH ORDINALITY AS t(id, key, ord)
    LEFT JOIN unnest(inserted) AS ins(id) ON ins.id = t.id
    LEFT JOIN LATERAL (
        SELECT j.id FROM messaging.jobs j
        WHERE ins.id IS NULL AND j.organization_id = org AND j.idempotency_key = t.key
    ) existing ON true
    ORDER BY t.ord;
END
$$;

-- The API of graphile-worker's add_job, for any language: one job for the current
-- tenant; NULL optional arguments take their defaults.
CREATE FUNCTION messaging.enqueue_job(
    kind text, args jsonb, queue text DEFAULT 'default', priority smallint DEFAULT 0,
    run_at timestamptz DEFAULT now(), idempotency_key text DEFAULT NULL,
    max_attempts integer DEFAULT 25)
RETURNS bigint
LANGUAGE sql
AS $$
SELECT messaging.enqueue_jobs(ARRAY[kind], ARRAY[args], ARRAY[queue], ARRAY[priority],
                              ARRAY[run_at], ARRAY[idempotency_key], ARRAY[max_attempts])
$$;

-- Cancels one of the current tenant's jobs that has not finished; a running job's
-- worker loses its lease (its complete, fail and heartbeat return false). False when
-- there is no such job, it finished already or it is another tenant's.
CREATE FUNCTION messaging.cancel_job(id bigint) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, messaging, pg_temp
AS $$
DECLARE
    org uuid := identity.current_org_id();
BEGIN
    IF org IS NULL THEN
        RAISE EXCEPTION 'cancelling a job needs a tenant: app.current_org_id is not set'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    UPDATE messaging.jobs j
    SET status = 'cancelled', finished_at = now(), lease_owner = NULL,
        lease_expires_at = NULL, lease_duration = NULL
    WHERE j.organization_id = org AND j.id = cancel_job.id
      AND j.status NOT IN ('completed', 'cancelled', 'discarded');
    RETURN FOUND;
END
$$;

-- Runs one of the current tenant's jobs again as soon as possible: a discarded,
-- cancelled or completed job, or one waiting for its time or its retry. Its attempts
-- go on counting; a job past its max_attempts gets one more attempt. False for a
-- running job, no job or another tenant's.
CREATE FUNCTION messaging.retry_job(id bigint) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, messaging, pg_temp
AS $$
DECLARE
    org uuid := identity.current_org_id();
BEGIN
    IF org IS NULL THEN
        RAISE EXCEPTION 'retrying a job needs a tenant: app.current_org_id is not set'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    UPDATE messaging.jobs j
    SET status = 'available', run_at = now(), finished_at = NULL
    WHERE j.organization_id = org AND j.id = retry_job.id AND j.status <> 'running';
    RETURN FOUND;
END
$$;

-- Refuses a worker's input: worker_id 1 to 200 characters.
CREATE FUNCTION messaging.check_worker_id(worker_id text) RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF worker_id IS NULL THEN
        RAISE EXCEPTION 'worker_id must not be null' USING ERRCODE = 'null_value_not_allowed';
    ELSIF worker_id = '' THEN
        RAISE EXCEPTION 'worker_id must not be empty' USING ERRCODE = 'invalid_parameter_value';
    ELSIF char_length(worker_id) > 200 THEN
        RAISE EXCEPTION 'a worker_id is at most 200 characters, not %', char_length(worker_id)
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
END
$$;

-- Takes back the queue's expired leases (at most max_jobs): the attempt they used is
-- counted and noted in errors; a job that used its last attempt is discarded, the others
-- wait at their old run_at, first in line. PL/pgSQL so that its plan is kept for the
-- session: every fetch calls it, and a SQL function's UPDATE is planned on each call.
CREATE FUNCTION messaging.rescue_expired_jobs(queue text, max_jobs integer) RETURNS void
LANGUAGE plpgsql
AS $$
BEGIN
    UPDATE messaging.jobs j
    SET status = CASE WHEN j.attempt >= j.max_attempts THEN 'discarded'::messaging.job_status
                      ELSE 'retryable' END,
        finished_at = CASE WHEN j.attempt >= j.max_attempts THEN now() END,
        errors = CASE WHEN jsonb_array_length(j.errors) >= 20 THEN j.errors - 0 ELSE j.errors END
                 || jsonb_build_array(jsonb_build_object(
                        'attempt', j.attempt, 'at', now(), 'error', 'lease expired',
                        'worker_id', j.lease_owner)),
        lease_owner = NULL, lease_expires_at = NULL, lease_duration = NULL
    FROM (
        SELECT e.organization_id, e.id
        FROM messaging.jobs e
        WHERE e.queue = rescue_expired_jobs.queue AND e.status = 'running'
          AND e.lease_expires_at < now()
        ORDER BY e.lease_expires_at
        LIMIT rescue_expired_jobs.max_jobs
        FOR UPDATE SKIP LOCKED
    ) expired
    WHERE j.organization_id = expired.organization_id AND j.id = expired.id;
END
$$;

-- Sets the rate limits of queue: jobs started per second in the queue as a whole and
-- for each tenant (NULL: none); both NULL removes them. Setting the same limits again
-- (every worker at its start) keeps the buckets as they are.
CREATE FUNCTION messaging.set_job_rate_limit(
    queue text, jobs_per_second float8, tenant_jobs_per_second float8 DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, messaging, pg_temp
AS $$
BEGIN
    IF set_job_rate_limit.queue IS NULL THEN
        RAISE EXCEPTION 'queue must not be null' USING ERRCODE = 'null_value_not_allowed';
    ELSIF set_job_rate_limit.queue !~ '^[a-z][a-z0-9_.-]*$' OR octet_length(set_job_rate_limit.queue) > 63 THEN
        RAISE EXCEPTION 'queue %: a lower-case letter, then lower-case letters, digits, "_", "." or "-", at most 63 bytes',
            quote_literal(left(set_job_rate_limit.queue, 60))
            USING ERRCODE = 'invalid_parameter_value';
    ELSIF NOT (set_job_rate_limit.jobs_per_second > 0 AND set_job_rate_limit.jobs_per_second <= 1000000)
          OR NOT (set_job_rate_limit.tenant_jobs_per_second > 0
                  AND set_job_rate_limit.tenant_jobs_per_second <= 1000000) THEN
        RAISE EXCEPTION 'a rate limit is more than 0 and at most 1000000 jobs per second'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF set_job_rate_limit.jobs_per_second IS NULL AND set_job_rate_limit.tenant_jobs_per_second IS NULL THEN
        DELETE FROM messaging.job_rate_limits l WHERE l.queue = set_job_rate_limit.queue;
        RETURN;
    END IF;
    INSERT INTO messaging.job_rate_limits AS l
        (queue, jobs_per_second, burst, tenant_jobs_per_second, tenant_burst, tokens)
    VALUES (set_job_rate_limit.queue, set_job_rate_limit.jobs_per_second,
            greatest(1, ceil(coalesce(set_job_rate_limit.jobs_per_second, 1)))::integer,
            set_job_rate_limit.tenant_jobs_per_second,
            greatest(1, ceil(coalesce(set_job_rate_limit.tenant_jobs_per_second, 1)))::integer,
            greatest(1, ceil(coalesce(set_job_rate_limit.jobs_per_second, 1))))
    ON CONFLICT ON CONSTRAINT job_rate_limits_pkey DO UPDATE
    SET jobs_per_second = excluded.jobs_per_second, burst = excluded.burst,
        tenant_jobs_per_second = excluded.tenant_jobs_per_second,
        tenant_burst = excluded.tenant_burst, tokens = least(l.tokens, excluded.burst)
    WHERE (l.jobs_per_second, l.tenant_jobs_per_second)
          IS DISTINCT FROM (excluded.jobs_per_second, excluded.tenant_jobs_per_second);
END
$$;

-- The tenant a clean-up function (inventory, sales, payments) acts for: the current
-- tenant, or NULL (every tenant) for a login in groundwork_worker with no tenant set
-- (a periodic job); 42501 for anyone else without a tenant. Called from definer
-- functions, where current_user is the owner: the caller's login is session_user.
CREATE FUNCTION messaging.cleanup_tenant(action text) RETURNS uuid
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, messaging, pg_temp
AS $$
DECLARE
    org uuid := identity.current_org_id();
BEGIN
    IF org IS NULL AND NOT pg_has_role(session_user, 'groundwork_worker', 'MEMBER') THEN
        RAISE EXCEPTION '% needs a tenant: app.current_org_id is not set', action
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN org;
END
$$;

-- Leases up to max_jobs due jobs of queue to worker_id for lease: each one's attempt
-- goes up by one. Round-robin across tenants (each of the oldest-waiting tenants, at
-- most max_jobs of them, gets an equal share of the batch), by priority, run_at and id
-- within a tenant, in that order; rows other fetches hold are skipped (SKIP LOCKED).
-- Expired leases of the queue are taken back first. The queue's rate limits, if it
-- has any, cap the batch and each tenant's share (job_rate_limits). Without JIT: the
-- planner's row estimates for the per-tenant steps are far above what a fetch reads,
-- and compiling the plan cost 20 ms where the fetch itself takes 1 to 3.
CREATE FUNCTION messaging.fetch_jobs(
    queue text, worker_id text, max_jobs integer, lease interval DEFAULT '30 seconds')
RETURNS SETOF messaging.jobs
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, messaging, pg_temp
SET jit = off
AS $$
DECLARE
    wanted integer := max_jobs;
    limits messaging.job_rate_limits;
    queue_tokens float8;
    tenant_rate float8;
    tenant_burst integer;
    taken bigint := 0;
BEGIN
    IF fetch_jobs.queue IS NULL OR max_jobs IS NULL OR fetch_jobs.lease IS NULL THEN
        RAISE EXCEPTION 'queue, max_jobs and lease must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    ELSIF octet_length(fetch_jobs.queue) > 63 THEN
        RAISE EXCEPTION 'a queue name is at most 63 bytes, not %', octet_length(fetch_jobs.queue)
            USING ERRCODE = 'program_limit_exceeded';
    ELSIF fetch_jobs.queue !~ '^[a-z][a-z0-9_.-]*$' THEN
        RAISE EXCEPTION 'queue %: a lower-case letter, then lower-case letters, digits, "_", "." or "-"',
            quote_literal(left(fetch_jobs.queue, 60))
            USING ERRCODE = 'invalid_parameter_value';
    ELSIF max_jobs < 1 THEN
        RAISE EXCEPTION 'max_jobs must be at least 1, not %', max_jobs
            USING ERRCODE = 'invalid_parameter_value';
    ELSIF max_jobs > 1000 THEN
        RAISE EXCEPTION 'a fetch takes at most 1000 jobs, not %', max_jobs
            USING ERRCODE = 'program_limit_exceeded';
    ELSIF fetch_jobs.lease < interval '1 second' OR fetch_jobs.lease > interval '1 day' THEN
        RAISE EXCEPTION 'a lease is 1 second to 1 day, not %', fetch_jobs.lease
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM messaging.check_worker_id(fetch_jobs.worker_id);

    PERFORM messaging.rescue_expired_jobs(fetch_jobs.queue, max_jobs);

    SELECT * INTO limits FROM messaging.job_rate_limits l
    WHERE l.queue = fetch_jobs.queue FOR UPDATE;
    IF FOUND THEN
        IF limits.jobs_per_second IS NOT NULL THEN
            queue_tokens := least(limits.burst, limits.tokens
                + extract(epoch FROM now() - limits.refilled_at)::float8 * limits.jobs_per_second);
            wanted := least(wanted, floor(queue_tokens)::integer);
        END IF;
        tenant_rate := limits.tenant_jobs_per_second;
        tenant_burst := limits.tenant_burst;
    END IF;

    IF wanted >= 1 THEN
    RETURN QUERY
    WITH RECURSIVE waiting(organization_id) AS (
        -- A skip scan of jobs_fetch_idx: each tenant with waiting jobs once. Ordered
        -- by the index's leading columns: by organization_id alone it was planned on
        -- the primary key, past every job of the tenant that was not waiting.
        (SELECT w.organization_id FROM messaging.jobs w
         WHERE w.queue = fetch_jobs.queue AND w.status IN ('available', 'scheduled', 'retryable')
         ORDER BY w.queue, w.organization_id LIMIT 1)
        UNION ALL
        SELECT (SELECT w.organization_id FROM messaging.jobs w
                WHERE w.queue = fetch_jobs.queue
                  AND w.status IN ('available', 'scheduled', 'retryable')
                  AND w.organization_id > waiting.organization_id
                ORDER BY w.queue, w.organization_id LIMIT 1)
        FROM waiting WHERE waiting.organization_id IS NOT NULL
    ),
    heads AS (
        -- Each tenant's next due job; the tenants waiting longest go first. With a
        -- tenant limit, a tenant's tokens (NULL: no limit) cap its share.
        SELECT waiting.organization_id, bucket.tokens,
               coalesce(floor(bucket.tokens)::integer, wanted) AS allowance
        FROM waiting
        CROSS JOIN LATERAL (
            SELECT h.run_at FROM messaging.jobs h
            WHERE h.queue = fetch_jobs.queue AND h.organization_id = waiting.organization_id
              AND h.status IN ('available', 'scheduled', 'retryable') AND h.run_at <= now()
            ORDER BY h.priority, h.run_at, h.id
            LIMIT 1) head
        CROSS JOIN LATERAL (
            SELECT CASE WHEN tenant_rate IS NOT NULL THEN
                       least(tenant_burst::float8, coalesce(
                           (SELECT b.tokens + extract(epoch FROM now() - b.refilled_at)::float8 * tenant_rate
                            FROM messaging.job_rate_buckets b
                            WHERE b.organization_id = waiting.organization_id
                              AND b.queue = fetch_jobs.queue),
                           tenant_burst::float8))
                   END AS tokens) bucket
        WHERE waiting.organization_id IS NOT NULL
          AND coalesce(bucket.tokens, 1) >= 1
        ORDER BY head.run_at, waiting.organization_id
        LIMIT wanted
    ),
    share AS (
        SELECT (wanted + count(*) - 1) / greatest(count(*), 1) AS per_tenant FROM heads
    ),
    locked AS (
        SELECT c.organization_id, c.id, c.run_at,
               row_number() OVER (PARTITION BY c.organization_id
                                  ORDER BY c.priority, c.run_at, c.id) AS turn
        FROM heads
        CROSS JOIN share
        CROSS JOIN LATERAL (
            SELECT j.organization_id, j.id, j.priority, j.run_at FROM messaging.jobs j
            WHERE j.queue = fetch_jobs.queue AND j.organization_id = heads.organization_id
              AND j.status IN ('available', 'scheduled', 'retryable') AND j.run_at <= now()
            ORDER BY j.priority, j.run_at, j.id
            LIMIT least(share.per_tenant, heads.allowance)
            FOR UPDATE SKIP LOCKED) c
    ),
    picked AS (
        SELECT locked.organization_id, locked.id,
               row_number() OVER (ORDER BY locked.turn, locked.run_at, locked.id) AS seq
        FROM locked
        ORDER BY locked.turn, locked.run_at, locked.id
        LIMIT wanted
    ),
    leased AS (
        -- By id, through jobs_id_key: joined with picked, a batch of a few hundred
        -- was planned as a hash join over a scan of the whole table.
        UPDATE messaging.jobs j
        SET status = 'running', attempt = j.attempt + 1, lease_owner = fetch_jobs.worker_id,
            lease_expires_at = now() + fetch_jobs.lease, lease_duration = fetch_jobs.lease,
            attempted_at = now()
        WHERE j.id = ANY (ARRAY(SELECT picked.id FROM picked))
        RETURNING j.*
    ),
    spent AS (
        INSERT INTO messaging.job_rate_buckets AS b (organization_id, queue, tokens, refilled_at)
        SELECT heads.organization_id, fetch_jobs.queue, heads.tokens - count(*), now()
        FROM leased JOIN heads ON heads.organization_id = leased.organization_id
        WHERE heads.tokens IS NOT NULL
        GROUP BY heads.organization_id, heads.tokens
        ON CONFLICT ON CONSTRAINT job_rate_buckets_pkey DO UPDATE
        SET tokens = excluded.tokens, refilled_at = excluded.refilled_at
    )
    SELECT leased.id, leased.organization_id, leased.kind, leased.queue, leased.args,
           leased.status, leased.priority, leased.run_at, leased.attempt, leased.max_attempts,
           leased.errors, leased.lease_owner, leased.lease_expires_at, leased.lease_duration,
           leased.progress, leased.metrics, leased.idempotency_key, leased.created_at,
           leased.attempted_at, leased.finished_at
    FROM leased JOIN picked ON picked.id = leased.id
    ORDER BY picked.seq;
    GET DIAGNOSTICS taken = ROW_COUNT;
    END IF;

    IF queue_tokens IS NOT NULL THEN
        UPDATE messaging.job_rate_limits l
        SET tokens = queue_tokens - taken, refilled_at = now()
        WHERE l.queue = fetch_jobs.queue;
    END IF;
END
$$;

-- Refuses a job id that is NULL.
CREATE FUNCTION messaging.check_job_id(id bigint) RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF id IS NULL THEN
        RAISE EXCEPTION 'a job id must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
END
$$;

-- Completes a job whose lease worker_id holds; metrics, if given, are kept (an object of
-- at most 64 KiB). False when the lease is no longer worker_id's (expired, taken back,
-- cancelled, or never its).
CREATE FUNCTION messaging.complete_job(id bigint, worker_id text, metrics jsonb DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, messaging, pg_temp
AS $$
BEGIN
    PERFORM messaging.check_job_id(complete_job.id);
    PERFORM messaging.check_worker_id(complete_job.worker_id);
    IF jsonb_typeof(complete_job.metrics) <> 'object' THEN
        RAISE EXCEPTION 'job metrics must be a JSON object' USING ERRCODE = 'invalid_parameter_value';
    ELSIF pg_column_size(complete_job.metrics) > 65536 THEN
        RAISE EXCEPTION 'job metrics are at most 65536 bytes (64 KiB), not %',
            pg_column_size(complete_job.metrics) USING ERRCODE = 'program_limit_exceeded';
    END IF;
    UPDATE messaging.jobs j
    SET status = 'completed', finished_at = now(), progress = 100,
        metrics = coalesce(complete_job.metrics, j.metrics),
        lease_owner = NULL, lease_expires_at = NULL, lease_duration = NULL
    WHERE j.id = complete_job.id AND j.status = 'running'
      AND j.lease_owner = complete_job.worker_id AND j.lease_expires_at > now();
    RETURN FOUND;
END
$$;

-- complete_job for many jobs in one statement, without metrics: returns the ids that
-- were worker_id's to complete.
CREATE FUNCTION messaging.complete_jobs(ids bigint[], worker_id text) RETURNS SETOF bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, messaging, pg_temp
AS $$
BEGIN
    PERFORM messaging.check_worker_id(complete_jobs.worker_id);
    IF cardinality(ids) > 10000 THEN
        RAISE EXCEPTION 'at most 10000 jobs at once, not %', cardinality(ids)
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
    RETURN QUERY
    UPDATE messaging.jobs j
    SET status = 'completed', finished_at = now(), progress = 100,
        lease_owner = NULL, lease_expires_at = NULL, lease_duration = NULL
    WHERE j.id = ANY (ids) AND j.status = 'running'
      AND j.lease_owner = complete_jobs.worker_id AND j.lease_expires_at > now()
    RETURNING j.id;
END
$$;

-- Records a failed attempt of a job whose lease worker_id holds: the error (truncated to
-- 4,096 characters) joins the job's last 20; the job is retried after
-- 2^(attempt - 1) seconds (at most an hour), give or take 20% at random, or discarded
-- when that was attempt max_attempts. False when the lease is no longer worker_id's.
CREATE FUNCTION messaging.fail_job(id bigint, worker_id text, error text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, messaging, pg_temp
AS $$
BEGIN
    PERFORM messaging.check_job_id(fail_job.id);
    PERFORM messaging.check_worker_id(fail_job.worker_id);
    IF fail_job.error IS NULL THEN
        RAISE EXCEPTION 'a job error must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    UPDATE messaging.jobs j
    SET status = CASE WHEN j.attempt >= j.max_attempts THEN 'discarded'::messaging.job_status
                      ELSE 'retryable' END,
        finished_at = CASE WHEN j.attempt >= j.max_attempts THEN now() END,
        run_at = CASE WHEN j.attempt >= j.max_attempts THEN j.run_at
                      ELSE now() + make_interval(secs =>
                               least(3600, power(2, least(j.attempt, 13) - 1))
                               * (0.8 + 0.4 * random())) END,
        errors = CASE WHEN jsonb_array_length(j.errors) >= 20 THEN j.errors - 0 ELSE j.errors END
                 || jsonb_build_array(jsonb_build_object(
                        'attempt', j.attempt, 'at', now(), 'error', left(fail_job.error, 4096),
                        'worker_id', j.lease_owner)),
        lease_owner = NULL, lease_expires_at = NULL, lease_duration = NULL
    WHERE j.id = fail_job.id AND j.status = 'running'
      AND j.lease_owner = fail_job.worker_id AND j.lease_expires_at > now();
    RETURN FOUND;
END
$$;

-- Renews the lease worker_id holds for another lease of the length it fetched with,
-- and records progress (0 to 100) if given. False when the lease is no longer
-- worker_id's: the job was cancelled or taken back, and the worker should stop.
CREATE FUNCTION messaging.heartbeat_job(id bigint, worker_id text, progress smallint DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, messaging, pg_temp
AS $$
BEGIN
    PERFORM messaging.check_job_id(heartbeat_job.id);
    PERFORM messaging.check_worker_id(heartbeat_job.worker_id);
    IF heartbeat_job.progress NOT BETWEEN 0 AND 100 THEN
        RAISE EXCEPTION 'job progress is 0 to 100, not %', heartbeat_job.progress
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE messaging.jobs j
    SET lease_expires_at = now() + j.lease_duration,
        progress = coalesce(heartbeat_job.progress, j.progress)
    WHERE j.id = heartbeat_job.id AND j.status = 'running'
      AND j.lease_owner = heartbeat_job.worker_id AND j.lease_expires_at > now();
    RETURN FOUND;
END
$$;

-- heartbeat_job for many jobs in one statement, without progress: returns the ids whose
-- leases were worker_id's and are renewed.
CREATE FUNCTION messaging.heartbeat_jobs(ids bigint[], worker_id text) RETURNS SETOF bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, messaging, pg_temp
AS $$
BEGIN
    PERFORM messaging.check_worker_id(heartbeat_jobs.worker_id);
    IF cardinality(ids) > 10000 THEN
        RAISE EXCEPTION 'at most 10000 jobs at once, not %', cardinality(ids)
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
    RETURN QUERY
    UPDATE messaging.jobs j
    SET lease_expires_at = now() + j.lease_duration
    WHERE j.id = ANY (ids) AND j.status = 'running'
      AND j.lease_owner = heartbeat_jobs.worker_id AND j.lease_expires_at > now()
    RETURNING j.id;
END
$$;

-- Gives back jobs worker_id holds but has not started (a worker shutting down): they
-- are available again at once, their attempt given back. Returns the ids released.
CREATE FUNCTION messaging.release_jobs(ids bigint[], worker_id text) RETURNS SETOF bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, messaging, pg_temp
AS $$
BEGIN
    PERFORM messaging.check_worker_id(release_jobs.worker_id);
    IF cardinality(ids) > 10000 THEN
        RAISE EXCEPTION 'at most 10000 jobs at once, not %', cardinality(ids)
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
    RETURN QUERY
    UPDATE messaging.jobs j
    SET status = 'available', attempt = greatest(j.attempt - 1, 0),
        lease_owner = NULL, lease_expires_at = NULL, lease_duration = NULL
    WHERE j.id = ANY (ids) AND j.status = 'running'
      AND j.lease_owner = release_jobs.worker_id AND j.lease_expires_at > now()
    RETURNING j.id;
END
$$;

-- Retention: deletes up to max_rows jobs of every tenant that finished (completed,
-- cancelled, discarded) more than older_than ago; returns how many. Run it
-- periodically (a worker may, as a periodic job); freed idempotency keys can be used
-- again.
CREATE FUNCTION messaging.delete_finished_jobs(
    older_than interval DEFAULT '7 days', max_rows integer DEFAULT 10000)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, messaging, pg_temp
AS $$
DECLARE
    deleted bigint;
BEGIN
    IF older_than IS NULL OR max_rows IS NULL THEN
        RAISE EXCEPTION 'older_than and max_rows must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    ELSIF older_than < interval '0' OR max_rows NOT BETWEEN 1 AND 1000000 THEN
        RAISE EXCEPTION 'older_than must not be negative and max_rows is 1 to 1000000'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    WITH gone AS (
        DELETE FROM messaging.jobs j
        USING (SELECT f.organization_id, f.id FROM messaging.jobs f
               WHERE f.status IN ('completed', 'cancelled', 'discarded')
                 AND f.finished_at < now() - older_than
               LIMIT max_rows
               FOR UPDATE SKIP LOCKED) old
        WHERE j.organization_id = old.organization_id AND j.id = old.id
        RETURNING 1)
    SELECT count(*) INTO deleted FROM gone;
    RETURN deleted;
END
$$;

SELECT public.groundwork_set_owner('messaging', 'groundwork_owner');

-- Privileges: tenants read their jobs and change them through the functions; the worker
-- role has the worker functions and nothing else.
GRANT USAGE ON SCHEMA messaging TO groundwork_worker;
GRANT SELECT ON messaging.jobs TO groundwork_app, groundwork_readonly;
REVOKE ALL ON FUNCTION messaging.job_input_problem(text, jsonb, text, smallint, timestamptz, text, integer),
    messaging.enqueue_jobs(text[], jsonb[], text[], smallint[], timestamptz[], text[], integer[]),
    messaging.enqueue_job(text, jsonb, text, smallint, timestamptz, text, integer),
    messaging.cancel_job(bigint),
    messaging.retry_job(bigint),
    messaging.check_worker_id(text),
    messaging.check_job_id(bigint),
    messaging.rescue_expired_jobs(text, integer),
    messaging.set_job_rate_limit(text, float8, float8),
    messaging.fetch_jobs(text, text, integer, interval),
    messaging.complete_job(bigint, text, jsonb),
    messaging.complete_jobs(bigint[], text),
    messaging.fail_job(bigint, text, text),
    messaging.heartbeat_job(bigint, text, smallint),
    messaging.heartbeat_jobs(bigint[], text),
    messaging.release_jobs(bigint[], text),
    messaging.delete_finished_jobs(interval, integer),
    messaging.cleanup_tenant(text)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    messaging.enqueue_jobs(text[], jsonb[], text[], smallint[], timestamptz[], text[], integer[]),
    messaging.enqueue_job(text, jsonb, text, smallint, timestamptz, text, integer),
    messaging.cancel_job(bigint),
    messaging.retry_job(bigint)
    TO groundwork_app;
GRANT EXECUTE ON FUNCTION
    messaging.set_job_rate_limit(text, float8, float8),
    messaging.fetch_jobs(text, text, integer, interval),
    messaging.complete_job(bigint, text, jsonb),
    messaging.complete_jobs(bigint[], text),
    messaging.fail_job(bigint, text, text),
    messaging.heartbeat_job(bigint, text, smallint),
    messaging.heartbeat_jobs(bigint[], text),
    messaging.release_jobs(bigint[], text),
    messaging.delete_finished_jobs(interval, integer)
    TO groundwork_worker;
