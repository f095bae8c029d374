--: DirectoryMember(joined_at?, first_name?, last_name?, avatar_url?)

--- The current organization's active members as fellow members see them (names and
--- emails only). Keyset pagination by member id.
--! member_directory_list (after_member_id?) : DirectoryMember
SELECT organization_id, member_id, role, joined_at, user_id, email, username, first_name,
       last_name, avatar_url
FROM identity.member_directory
WHERE :after_member_id::uuid IS NULL OR member_id > :after_member_id
ORDER BY member_id
LIMIT :limit;

--! member_directory_get_by_user : DirectoryMember
SELECT organization_id, member_id, role, joined_at, user_id, email, username, first_name,
       last_name, avatar_url
FROM identity.member_directory
WHERE user_id = :user_id;
