--! plan_list
SELECT code, name, features, max_models, max_versions_per_model,
       extract(epoch FROM max_job_runtime)::bigint AS max_job_runtime_seconds,
       renewal_period::text AS renewal_period
FROM licensing.plans
ORDER BY max_models, code;
