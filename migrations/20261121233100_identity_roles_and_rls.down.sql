-- Reverts 20261121233100_identity_roles_and_rls.up.sql. The roles stay: they are
-- cluster-wide and other databases may use them.

DROP FUNCTION identity.user_login_succeeded(uuid, inet);
DROP FUNCTION identity.user_login_failed(uuid, integer, interval);
DROP FUNCTION identity.user_login_lookup(text);
DROP FUNCTION identity.invitation_accept(bytea, uuid);
DROP FUNCTION identity.session_rotate(bytea, bytea, timestamptz);
DROP FUNCTION identity.api_key_authenticate(bytea);

DROP POLICY sessions_owner ON identity.sessions;
ALTER TABLE identity.sessions DISABLE ROW LEVEL SECURITY;
DROP POLICY user_profiles_owner ON identity.user_profiles;
ALTER TABLE identity.user_profiles DISABLE ROW LEVEL SECURITY;
DROP POLICY users_fellow_members ON identity.users;
DROP POLICY users_self ON identity.users;
ALTER TABLE identity.users DISABLE ROW LEVEL SECURITY;
DROP POLICY api_keys_tenant ON identity.api_keys;
ALTER TABLE identity.api_keys DISABLE ROW LEVEL SECURITY;
DROP POLICY organization_members_tenant ON identity.organization_members;
ALTER TABLE identity.organization_members DISABLE ROW LEVEL SECURITY;
DROP POLICY organizations_tenant ON identity.organizations;
ALTER TABLE identity.organizations DISABLE ROW LEVEL SECURITY;

ALTER DEFAULT PRIVILEGES IN SCHEMA identity
    REVOKE SELECT ON TABLES FROM groundwork_readonly;
ALTER DEFAULT PRIVILEGES IN SCHEMA identity
    REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM groundwork_app;
REVOKE ALL ON ALL TABLES IN SCHEMA identity FROM groundwork_app, groundwork_readonly;
REVOKE USAGE ON SCHEMA identity FROM groundwork_app, groundwork_readonly;
