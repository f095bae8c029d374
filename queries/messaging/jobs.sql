-- messaging.jobs (migrations/20261206000000_jobs.up.sql): id, organization_id, kind,
-- queue, args, status, priority, run_at, attempt, max_attempts, errors, lease_owner,
-- lease_expires_at, lease_duration, progress, metrics, idempotency_key, created_at,
-- attempted_at, finished_at. The application enqueues, cancels and retries through the
-- definer functions; workers (groundwork_worker) fetch, heartbeat, complete and fail
-- through theirs and never read the table.

--: Job(lease_owner?, lease_expires_at?, metrics?, idempotency_key?, attempted_at?, finished_at?)

--- In the caller's transaction, for its tenant; a key the tenant already has returns
--- that job's id and enqueues nothing (idempotent).
--! job_enqueue (run_at?, idempotency_key?)
SELECT messaging.enqueue_job(:kind, :args, :queue, :priority, :run_at, :idempotency_key,
                             :max_attempts) AS id;

--- Many jobs in one statement, ids in input order; idempotent per key like job_enqueue.
--! job_enqueue_many (run_ats[?], idempotency_keys[?])
SELECT id
FROM messaging.enqueue_jobs(:kinds::text[], :args::jsonb[], :queues::text[],
                            :priorities::smallint[], :run_ats::timestamptz[],
                            :idempotency_keys::text[], :max_attempts::integer[]) AS id;

--- False when the job has finished, or is not the tenant's.
--! job_cancel
SELECT messaging.cancel_job(:id) AS cancelled;

--- False when the job is running, or is not the tenant's.
--! job_retry
SELECT messaging.retry_job(:id) AS retried;

--! job_get : Job
SELECT id, organization_id, kind, queue, args, status, priority, run_at, attempt, max_attempts,
       errors, lease_owner, lease_expires_at, progress, metrics, idempotency_key, created_at,
       attempted_at, finished_at
FROM messaging.jobs
WHERE organization_id = identity.current_org_id() AND id = :id;

--- Newest first, keyset by id (before_id NULL for the first page); status NULL for all.
--! job_list (status?, before_id?) : Job
SELECT id, organization_id, kind, queue, args, status, priority, run_at, attempt, max_attempts,
       errors, lease_owner, lease_expires_at, progress, metrics, idempotency_key, created_at,
       attempted_at, finished_at
FROM messaging.jobs
WHERE organization_id = identity.current_org_id()
  AND (:status::messaging.job_status IS NULL OR status = :status)
  AND (:before_id::bigint IS NULL OR id < :before_id)
ORDER BY id DESC
LIMIT :limit;

--! job_count_by_status
SELECT queue, status, count(*) AS jobs
FROM messaging.jobs
WHERE organization_id = identity.current_org_id()
GROUP BY queue, status
ORDER BY queue, status;

--- The worker (groundwork_worker, every tenant). Leases up to max_jobs due jobs of the
--- queue with FOR UPDATE SKIP LOCKED, round-robin across tenants, by priority within a
--- tenant; expired leases are taken back first.
--! job_fetch : FetchedJob()
SELECT id, organization_id, kind, args, attempt, max_attempts, lease_expires_at
FROM messaging.fetch_jobs(:queue, :worker_id, :max_jobs::integer,
                          make_interval(secs => :lease_seconds::float8));

--- The worker: the ids it still held and completed (idempotent).
--! job_complete_many
SELECT id FROM messaging.complete_jobs(:ids::bigint[], :worker_id) AS id;

--- The worker: false when the lease is no longer worker_id's.
--! job_complete (metrics?)
SELECT messaging.complete_job(:id, :worker_id, :metrics) AS completed;

--- The worker: retried with backoff or discarded; false when the lease is no longer
--- worker_id's.
--! job_fail
SELECT messaging.fail_job(:id, :worker_id, :error) AS failed;

--- The worker: the ids whose leases it still held and renewed.
--! job_heartbeat_many
SELECT id FROM messaging.heartbeat_jobs(:ids::bigint[], :worker_id) AS id;

--- The worker: renews one lease and records progress; false when it is no longer
--- worker_id's (cancelled or taken back: stop).
--! job_heartbeat (progress?)
SELECT messaging.heartbeat_job(:id, :worker_id, :progress) AS alive;

--- The worker: sets the queue's rate limits, held in the database across workers (jobs
--- started per second in the queue as a whole and for each tenant; NULL for none).
--! job_rate_limit_set (jobs_per_second?, tenant_jobs_per_second?)
SELECT true AS set
FROM messaging.set_job_rate_limit(:queue, :jobs_per_second::float8,
                                  :tenant_jobs_per_second::float8);

--- The worker, shutting down: the ids of unstarted jobs it gave back.
--! job_release_many
SELECT id FROM messaging.release_jobs(:ids::bigint[], :worker_id) AS id;

--- Retention across tenants (the worker or the owner): deletes jobs finished more than
--- older_than_seconds ago, at most max_rows.
--! job_delete_finished
SELECT messaging.delete_finished_jobs(make_interval(secs => :older_than_seconds::float8),
                                      :max_rows::integer) AS deleted;
