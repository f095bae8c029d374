--: ModelVersion(created_by?)

--- Uploads a version, numbered by the database (1..n without gaps): WD004 for a missing
--- or soft-deleted model, WD003 for content the model already has, WD001 past the plan's
--- versions per model, WD002 without a usable seat.
--! model_version_add : ModelVersion
INSERT INTO cad.model_versions (model_id, storage_key, sha256, size_bytes, file_format)
VALUES (:model_id, :storage_key, :sha256, :size_bytes, :file_format)
RETURNING model_id, version, storage_key, sha256, size_bytes, file_format, metrics, created_by,
          created_at;

--- A version of a live model.
--! model_version_get : ModelVersion
SELECT v.model_id, v.version, v.storage_key, v.sha256, v.size_bytes, v.file_format, v.metrics,
       v.created_by, v.created_at
FROM cad.model_versions v
JOIN cad.models m ON m.organization_id = v.organization_id AND m.id = v.model_id
WHERE v.organization_id = identity.current_org_id() AND v.model_id = :model_id
  AND v.version = :version AND m.deleted_at IS NULL;

--- A live model's versions, oldest first.
--! model_version_list : ModelVersion
SELECT v.model_id, v.version, v.storage_key, v.sha256, v.size_bytes, v.file_format, v.metrics,
       v.created_by, v.created_at
FROM cad.model_versions v
JOIN cad.models m ON m.organization_id = v.organization_id AND m.id = v.model_id
WHERE v.organization_id = identity.current_org_id() AND v.model_id = :model_id
  AND m.deleted_at IS NULL
ORDER BY v.version;

--- Enqueues a processing of the version on the job queue, in the caller's transaction
--- (WD002 without the feature it needs); the job's id, the same when asked again.
--! model_version_request_processing
SELECT cad.request_processing(:model_id, :version, :processing) AS job_id;

--- A processing job's result, into the version's metrics under the processing's name.
--! model_version_record_result
SELECT cad.record_processing_result(:model_id, :version, :processing, :result) AS recorded;
