-- Why: undoes 20261206000000_jobs. The role groundwork_worker is cluster-wide and stays
-- (other databases may use it), without its privileges here.

REVOKE USAGE ON SCHEMA messaging FROM groundwork_worker;

DROP FUNCTION messaging.delete_finished_jobs(interval, integer);
DROP FUNCTION messaging.cleanup_tenant(text);
DROP FUNCTION messaging.release_jobs(bigint[], text);
DROP FUNCTION messaging.heartbeat_jobs(bigint[], text);
DROP FUNCTION messaging.heartbeat_job(bigint, text, smallint);
DROP FUNCTION messaging.fail_job(bigint, text, text);
DROP FUNCTION messaging.complete_jobs(bigint[], text);
DROP FUNCTION messaging.complete_job(bigint, text, jsonb);
DROP FUNCTION messaging.check_job_id(bigint);
DROP FUNCTION messaging.fetch_jobs(text, text, integer, interval);
DROP FUNCTION messaging.set_job_rate_limit(text, float8, float8);
DROP FUNCTION messaging.rescue_expired_jobs(text, integer);
DROP FUNCTION messaging.check_worker_id(text);
DROP FUNCTION messaging.retry_job(bigint);
DROP FUNCTION messaging.cancel_job(bigint);
DROP FUNCTION messaging.enqueue_job(text, jsonb, text, smallint, timestamptz, text, integer);
DROP FUNCTION messaging.enqueue_jobs(text[], jsonb[], text[], smallint[], timestamptz[], text[], integer[]);
DROP FUNCTION messaging.job_input_problem(text, jsonb, text, smallint, timestamptz, text, integer);
DROP TABLE messaging.job_rate_buckets;
DROP TABLE messaging.job_rate_limits;
DROP TABLE messaging.jobs;
DROP TYPE messaging.job_status;
