--: ProjectMember()

--- Owners and admins; the user must be an active member of the organization.
--! project_member_add : ProjectMember
INSERT INTO projects.project_members (project_id, user_id, role, permissions)
VALUES (:project_id, :user_id, :role, :permissions)
RETURNING id, organization_id, project_id, user_id, role, permissions, joined_at, created_at,
          updated_at;

--- Keyset pagination by id.
--! project_member_list (after_id?) : ProjectMember
SELECT id, organization_id, project_id, user_id, role, permissions, joined_at, created_at,
       updated_at
FROM projects.project_members
WHERE organization_id = identity.current_org_id() AND project_id = :project_id
  AND (:after_id::uuid IS NULL OR id > :after_id)
ORDER BY id
LIMIT :limit;

--- Owners and admins.
--! project_member_set_role : ProjectMember
UPDATE projects.project_members SET role = :role
WHERE organization_id = identity.current_org_id() AND project_id = :project_id AND user_id = :user_id
RETURNING id, organization_id, project_id, user_id, role, permissions, joined_at, created_at,
          updated_at;

--- Owners and admins, or the member leaving.
--! project_member_remove
DELETE FROM projects.project_members
WHERE organization_id = identity.current_org_id() AND project_id = :project_id AND user_id = :user_id;
