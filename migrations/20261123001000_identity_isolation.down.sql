-- Why: undoes 20261123001000_identity_isolation, restoring the earlier privileges,
-- policies and function definitions.

REVOKE USAGE ON SCHEMA identity FROM groundwork_auth;

DROP FUNCTION identity.user_login_failed(uuid);
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

CREATE OR REPLACE FUNCTION identity.user_login_succeeded(p_user_id uuid, p_ip inet)
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

CREATE OR REPLACE FUNCTION identity.user_login_lookup(p_email text)
RETURNS TABLE (user_id uuid, password_hash text, status identity.user_status,
               locked_until timestamptz, failed_login_attempts integer)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, identity
AS $$
    SELECT u.id, u.password_hash, u.status, u.locked_until, u.failed_login_attempts
    FROM identity.users u
    WHERE lower(u.email) = lower(p_email)
$$;

DROP FUNCTION identity.invitation_accept(bytea);
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

CREATE OR REPLACE FUNCTION identity.session_rotate(p_old_hash bytea, p_new_hash bytea, p_expires_at timestamptz)
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

CREATE OR REPLACE FUNCTION identity.api_key_authenticate(p_key_hash bytea)
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

REVOKE ALL ON FUNCTION identity.invitation_accept(bytea, uuid),
    identity.user_login_failed(uuid, integer, interval)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION identity.api_key_authenticate(bytea),
    identity.session_rotate(bytea, bytea, timestamptz),
    identity.invitation_accept(bytea, uuid),
    identity.user_login_lookup(text),
    identity.user_login_failed(uuid, integer, interval),
    identity.user_login_succeeded(uuid, inet)
    TO groundwork_app;
REVOKE ALL ON FUNCTION identity.user_login_lookup(text),
    identity.user_login_succeeded(uuid, inet)
    FROM groundwork_auth;

DROP TRIGGER organization_members_guard_invitation ON identity.organization_members;
DROP FUNCTION identity.organization_members_guard_invitation();
REVOKE INSERT, UPDATE ON identity.organization_members FROM groundwork_app;
GRANT INSERT, UPDATE ON identity.organization_members TO groundwork_app;
DROP POLICY organization_members_attach ON identity.organization_members;

DROP VIEW identity.member_directory;

REVOKE SELECT, INSERT, UPDATE ON identity.users FROM groundwork_app, groundwork_readonly;
GRANT SELECT, INSERT, UPDATE ON identity.users TO groundwork_app;
GRANT SELECT ON identity.users TO groundwork_readonly;
CREATE POLICY users_fellow_members ON identity.users
    FOR SELECT TO groundwork_app, groundwork_readonly
    USING (id IN (SELECT m.user_id FROM identity.organization_members m
                  WHERE m.organization_id = identity.current_org_id()));

DROP TRIGGER organization_members_clamp_invitation ON identity.organization_members;
DROP FUNCTION identity.organization_members_clamp_invitation();
DROP TRIGGER sessions_clamp_expiry ON identity.sessions;
DROP FUNCTION identity.sessions_clamp_expiry();
DROP TABLE identity.auth_policy;

SELECT public.groundwork_set_owner('identity', 'groundwork_owner');
