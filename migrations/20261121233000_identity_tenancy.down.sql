-- Reverts 20261121233000_identity_tenancy.up.sql.

DROP FUNCTION identity.current_user_id();
DROP FUNCTION identity.current_org_id();
DROP TABLE identity.api_keys;
DROP TABLE identity.sessions;
DROP TABLE identity.organization_members;
DROP TYPE identity.member_status;
DROP TYPE identity.member_role;
DROP TABLE identity.user_profiles;
DROP INDEX identity.users_locked_until_idx;
DROP INDEX identity.users_metadata_gin_idx;
ALTER TABLE identity.organizations DROP COLUMN updated_by, DROP COLUMN created_by;
ALTER TABLE identity.users
    DROP COLUMN updated_by,
    DROP COLUMN created_by,
    DROP COLUMN password_changed_at,
    DROP COLUMN last_login_ip,
    DROP COLUMN locked_until,
    DROP COLUMN failed_login_attempts,
    DROP COLUMN mfa_method,
    DROP COLUMN mfa_enabled,
    DROP COLUMN tax_number,
    DROP COLUMN timezone,
    DROP COLUMN locale,
    DROP COLUMN phone;
DROP TYPE identity.mfa_method;
