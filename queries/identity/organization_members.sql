--: OrganizationMember(user_id?, invitation_email?, invitation_expires_at?, invited_by?, joined_at?)

--- The application role adds only the current user (creating or joining an
--- organization); others join by accepting an invitation.
--! organization_member_add : OrganizationMember
INSERT INTO identity.organization_members (user_id, role, permissions, status, joined_at)
VALUES (:user_id, :role, :permissions, 'active', now())
RETURNING id, organization_id, user_id, role, permissions, status, invitation_email,
          invitation_expires_at, invited_by, joined_at, created_at, updated_at;

--- Stores only the SHA-256 of the invitation token.
--! organization_member_invite (user_id?, invitation_email?, invited_by?) : OrganizationMember
INSERT INTO identity.organization_members (user_id, role, permissions, status, invitation_email,
                                           invitation_token_hash, invitation_expires_at, invited_by)
VALUES (:user_id, :role, :permissions, 'invited', :invitation_email,
        :invitation_token_hash, now() + make_interval(secs => :valid_seconds), :invited_by)
RETURNING id, organization_id, user_id, role, permissions, status, invitation_email,
          invitation_expires_at, invited_by, joined_at, created_at, updated_at;

--- By token hash, for the current user (app.current_user_id), before that user
--- belongs to the organization; single use. No row: unknown, used or expired token,
--- inactive user or organization.
--! organization_member_accept_invitation
SELECT member_id, organization_id, role
FROM identity.invitation_accept(:invitation_token_hash);

--! organization_member_get : OrganizationMember
SELECT id, organization_id, user_id, role, permissions, status, invitation_email,
       invitation_expires_at, invited_by, joined_at, created_at, updated_at
FROM identity.organization_members
WHERE organization_id = identity.current_org_id() AND id = :id;

--- Keyset pagination by id within the current organization.
--! organization_member_list (after_id?) : OrganizationMember
SELECT id, organization_id, user_id, role, permissions, status, invitation_email,
       invitation_expires_at, invited_by, joined_at, created_at, updated_at
FROM identity.organization_members
WHERE organization_id = identity.current_org_id()
  AND (:after_id::uuid IS NULL OR id > :after_id)
ORDER BY id
LIMIT :limit;

--- Null arguments keep the current value.
--! organization_member_update (role?, permissions?, status?) : OrganizationMember
UPDATE identity.organization_members
SET role = COALESCE(:role, role),
    permissions = COALESCE(:permissions, permissions),
    status = COALESCE(:status, status)
WHERE organization_id = identity.current_org_id() AND id = :id
RETURNING id, organization_id, user_id, role, permissions, status, invitation_email,
          invitation_expires_at, invited_by, joined_at, created_at, updated_at;

--- Members with their user's name and email; keyset pagination by member id.
--! organization_member_list_with_user (after_id?) : (joined_at?, first_name?, last_name?)
SELECT m.id, m.user_id, m.joined_at, m.created_at, u.email, u.username, u.first_name, u.last_name
FROM identity.organization_members m
JOIN identity.users u ON u.id = m.user_id
WHERE m.organization_id = identity.current_org_id()
  AND (:after_id::uuid IS NULL OR m.id > :after_id)
ORDER BY m.id
LIMIT :limit;

--! organization_member_remove
DELETE FROM identity.organization_members WHERE organization_id = identity.current_org_id() AND id = :id;
