-- Why: least privilege and tenant isolation in the database itself (seeds 002 and
-- 003, DOMAIN.md roles). groundwork_app reads and writes data but cannot change the
-- schema and is subject to row-level security keyed by app.current_org_id and
-- app.current_user_id; groundwork_readonly only reads. Unset settings match no row.
-- Operations that must find a row before any tenant is known (authenticating an API
-- key, rotating a session by its refresh token, accepting an invitation, logging in)
-- are SECURITY DEFINER functions that look rows up by hash and return only what the
-- caller may know.

-- Roles are cluster-wide and may already exist (another database of the cluster, a
-- previous run): create them only if missing, and never drop them on the way down.
-- Two databases migrating at once can race between the check and the CREATE; the
-- loser sees a unique violation on pg_authid, which means the same thing.
DO $$
BEGIN
    CREATE ROLE groundwork_app NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

DO $$
BEGIN
    CREATE ROLE groundwork_readonly NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

GRANT USAGE ON SCHEMA identity TO groundwork_app, groundwork_readonly;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA identity TO groundwork_app;
GRANT SELECT ON ALL TABLES IN SCHEMA identity TO groundwork_readonly;
-- Tables later migrations add to identity get the same grants.
ALTER DEFAULT PRIVILEGES IN SCHEMA identity
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO groundwork_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA identity
    GRANT SELECT ON TABLES TO groundwork_readonly;

-- Tenant-owned: the current organization only.
ALTER TABLE identity.organizations ENABLE ROW LEVEL SECURITY;
CREATE POLICY organizations_tenant ON identity.organizations
    FOR ALL TO groundwork_app, groundwork_readonly
    USING (id = identity.current_org_id())
    WITH CHECK (id = identity.current_org_id());

ALTER TABLE identity.organization_members ENABLE ROW LEVEL SECURITY;
CREATE POLICY organization_members_tenant ON identity.organization_members
    FOR ALL TO groundwork_app, groundwork_readonly
    USING (organization_id = identity.current_org_id())
    WITH CHECK (organization_id = identity.current_org_id());

ALTER TABLE identity.api_keys ENABLE ROW LEVEL SECURITY;
CREATE POLICY api_keys_tenant ON identity.api_keys
    FOR ALL TO groundwork_app, groundwork_readonly
    USING (organization_id = identity.current_org_id())
    WITH CHECK (organization_id = identity.current_org_id());

-- Users are global: a user sees and changes itself, and sees the members of the
-- current organization.
ALTER TABLE identity.users ENABLE ROW LEVEL SECURITY;
CREATE POLICY users_self ON identity.users
    FOR ALL TO groundwork_app, groundwork_readonly
    USING (id = identity.current_user_id())
    WITH CHECK (id = identity.current_user_id());
CREATE POLICY users_fellow_members ON identity.users
    FOR SELECT TO groundwork_app, groundwork_readonly
    USING (id IN (SELECT m.user_id FROM identity.organization_members m
                  WHERE m.organization_id = identity.current_org_id()));

-- User-owned.
ALTER TABLE identity.user_profiles ENABLE ROW LEVEL SECURITY;
CREATE POLICY user_profiles_owner ON identity.user_profiles
    FOR ALL TO groundwork_app, groundwork_readonly
    USING (user_id = identity.current_user_id())
    WITH CHECK (user_id = identity.current_user_id());

ALTER TABLE identity.sessions ENABLE ROW LEVEL SECURITY;
CREATE POLICY sessions_owner ON identity.sessions
    FOR ALL TO groundwork_app, groundwork_readonly
    USING (user_id = identity.current_user_id())
    WITH CHECK (user_id = identity.current_user_id());

-- Authenticates a presented API key by its SHA-256: live keys only (not revoked, not
-- expired); records the use. Returns no row for an unknown, revoked or expired key.
CREATE FUNCTION identity.api_key_authenticate(p_key_hash bytea)
RETURNS TABLE (api_key_id uuid, organization_id uuid, scopes text[], rate_limit_per_minute integer)
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, identity
AS $$
    UPDATE identity.api_keys k
    SET usage_count = k.usage_count + 1, last_used_at = now()
    WHERE k.key_hash = p_key_hash
      AND k.revoked_at IS NULL
      AND (k.expires_at IS NULL OR k.expires_at > now())
    RETURNING k.id, k.organization_id, k.scopes, k.rate_limit_per_minute
$$;

-- Swaps a live session's refresh-token hash for a new one; the old token stops
-- working. Returns no row when the old token is unknown, revoked or expired.
CREATE FUNCTION identity.session_rotate(p_old_hash bytea, p_new_hash bytea, p_expires_at timestamptz)
RETURNS TABLE (session_id uuid, user_id uuid, expires_at timestamptz)
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, identity
AS $$
    UPDATE identity.sessions s
    SET refresh_token_hash = p_new_hash, expires_at = p_expires_at, last_used_at = now()
    WHERE s.refresh_token_hash = p_old_hash
      AND s.revoked_at IS NULL
      AND s.expires_at > now()
    RETURNING s.id, s.user_id, s.expires_at
$$;

-- Accepts an open, unexpired invitation for p_user_id: the membership becomes active
-- and the token hash is cleared, so the token cannot be used twice.
CREATE FUNCTION identity.invitation_accept(p_token_hash bytea, p_user_id uuid)
RETURNS TABLE (member_id uuid, organization_id uuid, role identity.member_role)
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, identity
AS $$
    UPDATE identity.organization_members m
    SET user_id = p_user_id, status = 'active', joined_at = now(),
        invitation_token_hash = NULL, invitation_expires_at = NULL
    WHERE m.invitation_token_hash = p_token_hash
      AND m.status = 'invited'
      AND m.invitation_expires_at > now()
      AND (m.user_id IS NULL OR m.user_id = p_user_id)
    RETURNING m.id, m.organization_id, m.role
$$;

-- What a login needs before anyone is authenticated.
CREATE FUNCTION identity.user_login_lookup(p_email text)
RETURNS TABLE (user_id uuid, password_hash text, status identity.user_status,
               locked_until timestamptz, failed_login_attempts integer)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, identity
AS $$
    SELECT u.id, u.password_hash, u.status, u.locked_until, u.failed_login_attempts
    FROM identity.users u
    WHERE lower(u.email) = lower(p_email)
$$;

-- Counts a failed login; the p_max_attempts-th failure in a row locks the account
-- for p_lockout. Returns the new count and lock.
CREATE FUNCTION identity.user_login_failed(p_user_id uuid, p_max_attempts integer, p_lockout interval)
RETURNS TABLE (failed_login_attempts integer, locked_until timestamptz)
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, identity
AS $$
    UPDATE identity.users u
    SET failed_login_attempts = u.failed_login_attempts + 1,
        locked_until = CASE WHEN u.failed_login_attempts + 1 >= p_max_attempts
                            THEN now() + p_lockout ELSE u.locked_until END
    WHERE u.id = p_user_id
    RETURNING u.failed_login_attempts, u.locked_until
$$;

-- Records a successful login: resets the failure count and lock. Returns whether
-- the user exists.
CREATE FUNCTION identity.user_login_succeeded(p_user_id uuid, p_ip inet)
RETURNS boolean
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, identity
AS $$
    WITH updated AS (
        UPDATE identity.users
        SET failed_login_attempts = 0, locked_until = NULL, last_login_at = now(),
            last_login_ip = p_ip
        WHERE id = p_user_id
        RETURNING 1
    )
    SELECT EXISTS (SELECT FROM updated)
$$;

REVOKE ALL ON FUNCTION identity.api_key_authenticate(bytea),
    identity.session_rotate(bytea, bytea, timestamptz),
    identity.invitation_accept(bytea, uuid),
    identity.user_login_lookup(text),
    identity.user_login_failed(uuid, integer, interval),
    identity.user_login_succeeded(uuid, inet)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION identity.api_key_authenticate(bytea),
    identity.session_rotate(bytea, bytea, timestamptz),
    identity.invitation_accept(bytea, uuid),
    identity.user_login_lookup(text),
    identity.user_login_failed(uuid, integer, interval),
    identity.user_login_succeeded(uuid, inet)
    TO groundwork_app;
