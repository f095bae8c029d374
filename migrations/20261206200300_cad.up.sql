-- Why: CAD models of the CNC/CAM platform (seed 001), per tenant: models with their
-- owner, type, parameters and metrics, soft-deleted; their file versions (storage key,
-- SHA-256, size, format); quotas from the owner's licence; processing jobs (thumbnail,
-- mesh analysis, CAM toolpath) on the job queue.
--
-- Rules the database keeps:
-- * a model is created by the current user, who must hold a usable seat
--   (licensing.user_limits; WD002 otherwise) and stay within the plan's max_models
--   (WD001). cad.model_counts counts each user's live models; a creation takes its
--   place with one INSERT ... ON CONFLICT DO UPDATE ... WHERE models < limit, whose row
--   lock makes racing creations take turns and see each other (exactly the quota
--   succeeds). Soft deletion (deleted_at) gives the place back; restoring takes it again.
-- * versions are numbered 1..n per model without gaps, also under concurrent uploads:
--   an upload locks the model row, so uploads to one model take turns, and takes the
--   number after the model's versions (refused past the owner's plan's
--   max_versions_per_model: WD001); a failed or skipped insert leaves no number used. The same content (SHA-256) twice in one model
--   is WD003 (detail: the version that has it); a version of a missing or soft-deleted
--   model is WD004. The uploader needs a usable seat (WD002).
-- * the counters (model_counts, current_version) move in AFTER triggers, once a row is
--   written: a row an INSERT ... ON CONFLICT skips moves nothing.
-- * a licence seat counts only for an active account, not locked out, of an active
--   organization (licensing.user_limits).
-- * object-storage keys (storage_key, thumbnail_key) start with the tenant's
--   '<organization_id>/', so no tenant can name another's objects.
-- * processing (cad.request_processing) is enqueued on the job queue (queue 'cad', kind
--   'cad.<processing>', idempotency key per model, version and processing) in the
--   caller's transaction, only with the feature it needs (thumbnail, mesh_analysis,
--   cam for cam_toolpath; WD002 otherwise); the job's args carry the plan's maximum job
--   runtime. cad.record_processing_result writes a job's result into the version's
--   metrics under the processing's name.
-- * soft-deleted models are left out of every read of the query files unless asked for.

CREATE SCHEMA cad;

CREATE TYPE cad.model_type AS ENUM ('part', 'assembly', 'sketch', 'mesh', 'drawing');
CREATE TYPE cad.file_format AS ENUM ('fcstd', 'step', 'iges', 'stl', 'obj', 'dxf', 'brep');
CREATE TYPE cad.processing AS ENUM ('thumbnail', 'mesh_analysis', 'cam_toolpath');

CREATE TABLE cad.models (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL DEFAULT identity.current_org_id()
        CONSTRAINT models_organization_id_fkey
            REFERENCES identity.organizations (id) ON DELETE RESTRICT,
    owner_id uuid NOT NULL DEFAULT identity.current_user_id()
        CONSTRAINT models_owner_id_fkey REFERENCES identity.users (id) ON DELETE RESTRICT,
    type cad.model_type NOT NULL,
    name text NOT NULL
        CONSTRAINT models_name_length CHECK (char_length(btrim(name)) BETWEEN 1 AND 255),
    description text
        CONSTRAINT models_description_length CHECK (char_length(description) <= 10000),
    -- The latest version's number and format (0 and NULL before the first upload).
    current_version integer NOT NULL DEFAULT 0
        CONSTRAINT models_current_version_nonnegative CHECK (current_version >= 0),
    file_format cad.file_format,
    params jsonb
        CONSTRAINT models_params_object
            CHECK (jsonb_typeof(params) = 'object'
                   AND CASE WHEN pg_column_compression(params) IS NULL THEN pg_column_size(params)
                            ELSE octet_length(params::text) END <= 262144),
    metrics jsonb
        CONSTRAINT models_metrics_object
            CHECK (jsonb_typeof(metrics) = 'object'
                   AND CASE WHEN pg_column_compression(metrics) IS NULL THEN pg_column_size(metrics)
                            ELSE octet_length(metrics::text) END <= 262144),
    -- Object-storage keys live under the tenant's prefix, '<organization_id>/'.
    thumbnail_key text
        CONSTRAINT models_thumbnail_key_length CHECK (char_length(thumbnail_key) BETWEEN 1 AND 1024),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz,
    CONSTRAINT models_pkey PRIMARY KEY (organization_id, id),
    CONSTRAINT models_current_version_format CHECK ((current_version = 0) = (file_format IS NULL)),
    CONSTRAINT models_thumbnail_key_tenant
        CHECK (starts_with(thumbnail_key, organization_id::text || '/'))
);

CREATE INDEX models_owner_id_idx ON cad.models (owner_id);
CREATE INDEX models_type_idx ON cad.models (type);
CREATE INDEX models_organization_id_created_at_id_idx ON cad.models (organization_id, created_at, id)
    WHERE deleted_at IS NULL;
CREATE INDEX models_params_gin_idx ON cad.models USING gin (params) WHERE params IS NOT NULL;
CREATE INDEX models_metrics_gin_idx ON cad.models USING gin (metrics) WHERE metrics IS NOT NULL;

CREATE TRIGGER models_set_updated_at
    BEFORE UPDATE ON cad.models
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();

-- groundwork:lint allow prefer-bigint-over-int because versions are numbered per model and capped by the plan (1000 at most)
CREATE TABLE cad.model_versions (
    organization_id uuid NOT NULL DEFAULT identity.current_org_id(),
    model_id uuid NOT NULL,
    -- Assigned by cad.number_version.
    version integer NOT NULL
        CONSTRAINT model_versions_version_positive CHECK (version > 0),
    storage_key text NOT NULL
        CONSTRAINT model_versions_storage_key_length CHECK (char_length(storage_key) BETWEEN 1 AND 1024),
    sha256 bytea NOT NULL
        CONSTRAINT model_versions_sha256_length CHECK (octet_length(sha256) = 32),
    size_bytes bigint NOT NULL
        CONSTRAINT model_versions_size_bytes_range CHECK (size_bytes BETWEEN 1 AND 10737418240),
    file_format cad.file_format NOT NULL,
    -- Processing results by processing name (cad.record_processing_result).
    metrics jsonb NOT NULL DEFAULT '{}'::jsonb
        CONSTRAINT model_versions_metrics_object
            CHECK (jsonb_typeof(metrics) = 'object'
                   AND CASE WHEN pg_column_compression(metrics) IS NULL THEN pg_column_size(metrics)
                            ELSE octet_length(metrics::text) END <= 262144),
    created_by uuid DEFAULT identity.current_user_id()
        CONSTRAINT model_versions_created_by_fkey REFERENCES identity.users (id) ON DELETE RESTRICT,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT model_versions_pkey PRIMARY KEY (organization_id, model_id, version),
    -- Object-storage keys live under the tenant's prefix, '<organization_id>/'.
    CONSTRAINT model_versions_storage_key_tenant
        CHECK (starts_with(storage_key, organization_id::text || '/')),
    CONSTRAINT model_versions_model_id_sha256_key UNIQUE (organization_id, model_id, sha256),
    CONSTRAINT model_versions_storage_key_key UNIQUE (organization_id, storage_key),
    CONSTRAINT model_versions_model_id_fkey FOREIGN KEY (organization_id, model_id)
        REFERENCES cad.models (organization_id, id) ON DELETE RESTRICT
);

CREATE INDEX model_versions_created_by_idx ON cad.model_versions (created_by);

-- Each user's live models per tenant, for the quota (see the header).
CREATE TABLE cad.model_counts (
    organization_id uuid NOT NULL
        CONSTRAINT model_counts_organization_id_fkey
            REFERENCES identity.organizations (id) ON DELETE CASCADE,
    user_id uuid NOT NULL
        CONSTRAINT model_counts_user_id_fkey REFERENCES identity.users (id) ON DELETE CASCADE,
    models integer NOT NULL
        CONSTRAINT model_counts_models_nonnegative CHECK (models >= 0),
    CONSTRAINT model_counts_pkey PRIMARY KEY (organization_id, user_id)
);

CREATE INDEX model_counts_user_id_idx ON cad.model_counts (user_id);

-- Takes a place in the owner's quota, or refuses (WD002 without a usable seat, WD001
-- at the limit).
CREATE FUNCTION cad.take_model_place(p_organization_id uuid, p_user_id uuid) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, cad, pg_temp
AS $$
DECLARE
    max_models integer;
BEGIN
    SELECT l.max_models INTO max_models FROM licensing.user_limits(p_organization_id, p_user_id) l;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'user % holds no usable licence seat', p_user_id
            USING ERRCODE = 'WD002', DETAIL = jsonb_build_object('feature', 'models')::text;
    END IF;
    IF max_models > 0 THEN
        INSERT INTO cad.model_counts AS c (organization_id, user_id, models)
        VALUES (p_organization_id, p_user_id, 1)
        ON CONFLICT (organization_id, user_id) DO UPDATE SET models = c.models + 1
            WHERE c.models < max_models;
        IF FOUND THEN
            RETURN;
        END IF;
    END IF;
    RAISE EXCEPTION 'the plan allows % models', max_models
        USING ERRCODE = 'WD001', DETAIL = jsonb_build_object('limit', max_models)::text;
END
$$;

-- Counts a model in its owner's quota once it is written (a row an INSERT skips, ON
-- CONFLICT, counts nothing): a created or restored model takes a place, a soft-deleted
-- one gives it back.
CREATE FUNCTION cad.count_model() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, cad, pg_temp
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.owner_id IS NULL OR NEW.owner_id IS DISTINCT FROM identity.current_user_id() THEN
            RAISE EXCEPTION 'a model is created by its owner, the current user'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        IF NEW.deleted_at IS NULL THEN
            PERFORM cad.take_model_place(NEW.organization_id, NEW.owner_id);
        END IF;
    ELSIF OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL THEN
        UPDATE cad.model_counts c SET models = c.models - 1
        WHERE c.organization_id = OLD.organization_id AND c.user_id = OLD.owner_id;
    ELSIF OLD.deleted_at IS NOT NULL AND NEW.deleted_at IS NULL THEN
        PERFORM cad.take_model_place(NEW.organization_id, NEW.owner_id);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER models_count
    AFTER INSERT OR UPDATE OF deleted_at ON cad.models
    FOR EACH ROW EXECUTE FUNCTION cad.count_model();

-- Numbers a new version (see the header): locks the model row, so that uploads to one
-- model take turns, and takes the next number after the versions there are (including
-- those of earlier rows of the same statement). The uploader needs a usable seat; the
-- limit of versions is the model owner's plan's, as the model counts in the owner's
-- quota. Writes nothing: cad.record_version moves the model's current version once the
-- row is in, so a row an INSERT skips (ON CONFLICT) leaves no gap.
CREATE FUNCTION cad.number_version() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, cad, pg_temp
AS $$
DECLARE
    owner uuid;
    max_versions integer;
    existing integer;
BEGIN
    SELECT m.owner_id INTO owner FROM cad.models m
    WHERE m.organization_id = NEW.organization_id AND m.id = NEW.model_id
      AND m.deleted_at IS NULL
    FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'model % not found', NEW.model_id USING ERRCODE = 'WD004';
    END IF;
    IF NOT EXISTS (SELECT FROM licensing.user_limits(NEW.organization_id,
                                                     identity.current_user_id())) THEN
        RAISE EXCEPTION 'the current user holds no usable licence seat'
            USING ERRCODE = 'WD002', DETAIL = jsonb_build_object('feature', 'models')::text;
    END IF;
    SELECT l.max_versions_per_model INTO max_versions
    FROM licensing.user_limits(NEW.organization_id, owner) l;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the model''s owner holds no usable licence seat'
            USING ERRCODE = 'WD002', DETAIL = jsonb_build_object('feature', 'models')::text;
    END IF;
    SELECT coalesce(max(v.version), 0) + 1 INTO NEW.version FROM cad.model_versions v
    WHERE v.organization_id = NEW.organization_id AND v.model_id = NEW.model_id;
    IF NEW.version > max_versions THEN
        RAISE EXCEPTION 'the plan allows % versions of a model', max_versions
            USING ERRCODE = 'WD001', DETAIL = jsonb_build_object('limit', max_versions)::text;
    END IF;
    SELECT v.version INTO existing FROM cad.model_versions v
    WHERE v.organization_id = NEW.organization_id AND v.model_id = NEW.model_id
      AND v.sha256 = NEW.sha256;
    IF FOUND THEN
        RAISE EXCEPTION 'version % of model % has the same content', existing, NEW.model_id
            USING ERRCODE = 'WD003', DETAIL = jsonb_build_object('version', existing)::text;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER model_versions_number
    BEFORE INSERT ON cad.model_versions
    FOR EACH ROW EXECUTE FUNCTION cad.number_version();

-- The model's current version and format follow its newest version.
CREATE FUNCTION cad.record_version() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, cad, pg_temp
AS $$
BEGIN
    UPDATE cad.models m
    SET current_version = NEW.version, file_format = NEW.file_format
    WHERE m.organization_id = NEW.organization_id AND m.id = NEW.model_id
      AND m.current_version < NEW.version;
    RETURN NULL;
END
$$;

CREATE TRIGGER model_versions_record
    AFTER INSERT ON cad.model_versions
    FOR EACH ROW EXECUTE FUNCTION cad.record_version();

-- The licence feature a processing needs.
CREATE FUNCTION cad.processing_feature(processing cad.processing) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE processing WHEN 'cam_toolpath' THEN 'cam' ELSE processing::text END
$$;

-- Enqueues a processing of a model version for the current user (see the header);
-- returns the job's id (the same job when asked again).
CREATE FUNCTION cad.request_processing(model_id uuid, version integer, processing cad.processing)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, cad, pg_temp
AS $$
DECLARE
    feature text := cad.processing_feature(request_processing.processing);
    runtime interval;
BEGIN
    IF NOT EXISTS (SELECT FROM cad.model_versions v
                   JOIN cad.models m ON m.organization_id = v.organization_id AND m.id = v.model_id
                   WHERE v.organization_id = identity.current_org_id()
                     AND v.model_id = request_processing.model_id
                     AND v.version = request_processing.version
                     AND m.deleted_at IS NULL) THEN
        RAISE EXCEPTION 'version % of model % not found', request_processing.version,
            request_processing.model_id USING ERRCODE = 'WD004';
    END IF;
    IF NOT licensing.has_entitlement(identity.current_user_id(), feature) THEN
        RAISE EXCEPTION 'the current user''s licence does not include %', feature
            USING ERRCODE = 'WD002', DETAIL = jsonb_build_object('feature', feature)::text;
    END IF;
    SELECT l.max_job_runtime INTO runtime
    FROM licensing.user_limits(identity.current_org_id(), identity.current_user_id()) l;
    RETURN messaging.enqueue_job(
        'cad.' || request_processing.processing,
        jsonb_build_object('model_id', request_processing.model_id,
                           'version', request_processing.version,
                           'processing', request_processing.processing,
                           'max_runtime_seconds', extract(epoch FROM runtime)::bigint),
        'cad', 0::smallint, now(),
        format('cad:%s:%s:%s', request_processing.model_id, request_processing.version,
               request_processing.processing),
        5);
END
$$;

-- Writes a processing's result into the version's metrics; false when the version is
-- not the tenant's.
CREATE FUNCTION cad.record_processing_result(model_id uuid, version integer,
                                             processing cad.processing, result jsonb)
RETURNS boolean
LANGUAGE sql
SET search_path = pg_catalog, cad, pg_temp
AS $$
    WITH updated AS (
        UPDATE cad.model_versions v
        SET metrics = v.metrics || jsonb_build_object($3::text, $4)
        WHERE v.organization_id = identity.current_org_id() AND v.model_id = $1
          AND v.version = $2
        RETURNING 1)
    SELECT EXISTS (SELECT FROM updated)
$$;

ALTER TABLE cad.models ENABLE ROW LEVEL SECURITY;
CREATE POLICY models_tenant ON cad.models
    FOR ALL TO groundwork_app, groundwork_readonly
    USING (organization_id = identity.current_org_id())
    WITH CHECK (organization_id = identity.current_org_id());

ALTER TABLE cad.model_versions ENABLE ROW LEVEL SECURITY;
CREATE POLICY model_versions_tenant ON cad.model_versions
    FOR ALL TO groundwork_app, groundwork_readonly
    USING (organization_id = identity.current_org_id())
    WITH CHECK (organization_id = identity.current_org_id());

ALTER TABLE cad.model_counts ENABLE ROW LEVEL SECURITY;
CREATE POLICY model_counts_tenant ON cad.model_counts
    FOR ALL TO groundwork_app, groundwork_readonly
    USING (organization_id = identity.current_org_id())
    WITH CHECK (organization_id = identity.current_org_id());

SELECT public.groundwork_set_owner('cad', 'groundwork_owner');

-- Privileges: models are created by their owner and soft-deleted (no DELETE); versions
-- are added, never changed but for their processing results.
GRANT USAGE ON SCHEMA cad TO groundwork_app, groundwork_readonly;
GRANT SELECT ON cad.models, cad.model_versions, cad.model_counts
    TO groundwork_app, groundwork_readonly;
GRANT INSERT (id, type, name, description, params, metrics, thumbnail_key),
      UPDATE (type, name, description, params, metrics, thumbnail_key, deleted_at)
    ON cad.models TO groundwork_app;
GRANT INSERT (model_id, storage_key, sha256, size_bytes, file_format, metrics),
      UPDATE (metrics)
    ON cad.model_versions TO groundwork_app;

REVOKE ALL ON FUNCTION cad.take_model_place(uuid, uuid), cad.count_model(),
    cad.number_version(), cad.record_version(), cad.processing_feature(cad.processing),
    cad.request_processing(uuid, integer, cad.processing),
    cad.record_processing_result(uuid, integer, cad.processing, jsonb)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION cad.processing_feature(cad.processing),
    cad.request_processing(uuid, integer, cad.processing),
    cad.record_processing_result(uuid, integer, cad.processing, jsonb)
    TO groundwork_app;
GRANT EXECUTE ON FUNCTION cad.processing_feature(cad.processing) TO groundwork_readonly;
GRANT EXECUTE ON FUNCTION licensing.user_limits(uuid, uuid) TO groundwork_app, groundwork_readonly;
