--: Project(description?, archived_at?)

--- The current user becomes the owner (app.current_user_id must be an active member of
--- the organization).
--! project_create (description?) : Project
INSERT INTO projects.projects (name, description, owner_id, visibility, settings)
VALUES (:name, :description, identity.current_user_id(), :visibility, :settings)
RETURNING id, organization_id, name, description, owner_id, status, visibility, settings,
          created_at, updated_at, archived_at;

--! project_get : Project
SELECT id, organization_id, name, description, owner_id, status, visibility, settings,
       created_at, updated_at, archived_at
FROM projects.projects
WHERE organization_id = identity.current_org_id() AND id = :id;

--- The projects the current user owns or is a member of. Keyset pagination in
--- (created_at, id) order: pass the last row's values, or nulls for the first page.
--! project_list (after_created_at?, after_id?) : Project
SELECT id, organization_id, name, description, owner_id, status, visibility, settings,
       created_at, updated_at, archived_at
FROM projects.projects
WHERE organization_id = identity.current_org_id()
  AND (:after_created_at::timestamptz IS NULL
       OR (created_at, id) > (:after_created_at, :after_id::uuid))
ORDER BY created_at, id
LIMIT :limit;

--- Owners and admins. Null arguments keep the current value.
--! project_update (name?, description?, visibility?, settings?) : Project
UPDATE projects.projects
SET name = COALESCE(:name, name),
    description = COALESCE(:description, description),
    visibility = COALESCE(:visibility, visibility),
    settings = COALESCE(:settings, settings)
WHERE organization_id = identity.current_org_id() AND id = :id
RETURNING id, organization_id, name, description, owner_id, status, visibility, settings,
          created_at, updated_at, archived_at;

--- Owners and admins: archiving makes the project read-only (archived_at is stamped);
--- any other status restores it.
--! project_set_status : Project
UPDATE projects.projects SET status = :status
WHERE organization_id = identity.current_org_id() AND id = :id
RETURNING id, organization_id, name, description, owner_id, status, visibility, settings,
          created_at, updated_at, archived_at;

--- The owner only: hands the project to another member of the organization.
--! project_transfer : Project
UPDATE projects.projects SET owner_id = :owner_id
WHERE organization_id = identity.current_org_id() AND id = :id
RETURNING id, organization_id, name, description, owner_id, status, visibility, settings,
          created_at, updated_at, archived_at;

--- The owner only; everything in the project goes with it.
--! project_delete
DELETE FROM projects.projects WHERE organization_id = identity.current_org_id() AND id = :id;

--- Counts this project's tasks only, through the (project_id, status) index.
--! project_progress
SELECT count(*) AS tasks,
       count(*) FILTER (WHERE status = 'done') AS done,
       count(*) FILTER (WHERE status = 'cancelled') AS cancelled
FROM projects.tasks
WHERE organization_id = identity.current_org_id() AND project_id = :project_id;

--- The current user's role in the project: owner, admin, member, viewer, or null.
--! project_role : (role?)
SELECT projects.member_role(:project_id) AS role;
