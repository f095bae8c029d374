--: Model(description?, file_format?, params?, metrics?, thumbnail_key?, deleted_at?)

--- Creates a model owned by the current user: WD002 without a usable licence seat,
--- WD001 past the plan's max_models.
--! model_create (description?, params?) : Model
INSERT INTO cad.models (type, name, description, params)
VALUES (:type, :name, :description, :params)
RETURNING id, owner_id, type, name, description, current_version, file_format, params, metrics,
          thumbnail_key, created_at, updated_at, deleted_at;

--- Soft-deleted models only when include_deleted.
--! model_get : Model
SELECT id, owner_id, type, name, description, current_version, file_format, params, metrics,
       thumbnail_key, created_at, updated_at, deleted_at
FROM cad.models
WHERE organization_id = identity.current_org_id() AND id = :id
  AND (deleted_at IS NULL OR :include_deleted);

--- Keyset pagination in (created_at, id) order: pass the last row's values, or nulls for
--- the first page. Live models only.
--! model_list (after_created_at?, after_id?) : Model
SELECT id, owner_id, type, name, description, current_version, file_format, params, metrics,
       thumbnail_key, created_at, updated_at, deleted_at
FROM cad.models
WHERE organization_id = identity.current_org_id() AND deleted_at IS NULL
  AND (:after_created_at::timestamptz IS NULL
       OR (created_at, id) > (:after_created_at, :after_id::uuid))
ORDER BY created_at, id
LIMIT :limit;

--- Live models whose parameters contain the given object (the params GIN index).
--! model_list_by_params : Model
SELECT id, owner_id, type, name, description, current_version, file_format, params, metrics,
       thumbnail_key, created_at, updated_at, deleted_at
FROM cad.models
WHERE organization_id = identity.current_org_id() AND deleted_at IS NULL
  AND params @> :params
ORDER BY created_at, id
LIMIT :limit;

--- Null arguments keep the current value; a soft-deleted model does not change.
--! model_update (name?, description?, params?, metrics?, thumbnail_key?) : Model
UPDATE cad.models
SET name = COALESCE(:name, name),
    description = COALESCE(:description, description),
    params = COALESCE(:params, params),
    metrics = COALESCE(:metrics, metrics),
    thumbnail_key = COALESCE(:thumbnail_key, thumbnail_key)
WHERE organization_id = identity.current_org_id() AND id = :id AND deleted_at IS NULL
RETURNING id, owner_id, type, name, description, current_version, file_format, params, metrics,
          thumbnail_key, created_at, updated_at, deleted_at;

--- Soft deletion: the model leaves every read and gives its place in the quota back.
--! model_delete
UPDATE cad.models SET deleted_at = now()
WHERE organization_id = identity.current_org_id() AND id = :id AND deleted_at IS NULL;

--- Brings a soft-deleted model back, taking a place in the quota again (WD001 when full).
--! model_restore
UPDATE cad.models SET deleted_at = NULL
WHERE organization_id = identity.current_org_id() AND id = :id AND deleted_at IS NOT NULL;

--- The current user's live models and the plan's limit.
--! model_quota : ModelQuota(max_models?)
SELECT COALESCE((SELECT c.models FROM cad.model_counts c
                 WHERE c.organization_id = identity.current_org_id()
                   AND c.user_id = identity.current_user_id()), 0) AS models,
       (SELECT l.max_models
        FROM licensing.user_limits(identity.current_org_id(), identity.current_user_id()) l)
           AS max_models;
