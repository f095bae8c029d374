-- Why: closes the identity holes found by attacking the schema as the application
-- role (see docs/SECURITY.md):
--
-- * users' secrets and personal columns were readable through fellow-member
--   visibility, and a tenant could attach any user to its organization to see them.
--   Now the users table shows a user only itself (and never its password hash);
--   fellow members are seen through identity.member_directory, which shows active
--   members' names and emails only. A membership row can be inserted for the
--   current user or as an invitation, and an invitation becomes a membership only
--   through invitation_accept() by the invitee.
-- * the login functions let any application connection read any user's password
--   hash and choose (or clear) the lock-out. They are now granted to
--   groundwork_auth only, return a hash only for an active, unlocked account, and
--   apply the lock-out policy stored in identity.auth_policy.
-- * session_rotate() worked for suspended and locked users and accepted any expiry;
--   API keys of archived organizations authenticated; their invitations could be
--   accepted. The definer functions now check user and organization state, and
--   session and invitation expiries are clamped to the policy's lifetimes.
-- * definer functions pin search_path with pg_temp last.

-- The lock-out and lifetime rules, one row, changed only by the owner.
CREATE TABLE identity.auth_policy (
    singleton boolean PRIMARY KEY DEFAULT true
        CONSTRAINT auth_policy_singleton CHECK (singleton),
    max_failed_logins integer NOT NULL DEFAULT 5
        CONSTRAINT auth_policy_max_failed_logins_range CHECK (max_failed_logins BETWEEN 1 AND 100),
    lockout interval NOT NULL DEFAULT '15 minutes'
        CONSTRAINT auth_policy_lockout_range CHECK (lockout BETWEEN interval '1 minute' AND interval '1 day'),
    session_lifetime interval NOT NULL DEFAULT '30 days'
        CONSTRAINT auth_policy_session_lifetime_range
            CHECK (session_lifetime BETWEEN interval '5 minutes' AND interval '365 days'),
    invitation_lifetime interval NOT NULL DEFAULT '14 days'
        CONSTRAINT auth_policy_invitation_lifetime_range
            CHECK (invitation_lifetime BETWEEN interval '5 minutes' AND interval '90 days'),
    updated_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE identity.auth_policy IS
    'Login lock-out and session and invitation lifetimes, applied by the identity functions';

INSERT INTO identity.auth_policy DEFAULT VALUES;

CREATE TRIGGER auth_policy_set_updated_at
    BEFORE UPDATE ON identity.auth_policy
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();

-- The schema's default privileges granted the application roles this table.
REVOKE ALL ON identity.auth_policy FROM groundwork_app, groundwork_readonly;

-- Expiries never exceed the policy's lifetimes, whoever writes them.
CREATE FUNCTION identity.sessions_clamp_expiry() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, identity, pg_temp
AS $$
BEGIN
    NEW.expires_at := least(NEW.expires_at, now() + (SELECT p.session_lifetime FROM identity.auth_policy p));
    RETURN NEW;
END
$$;

CREATE TRIGGER sessions_clamp_expiry
    BEFORE INSERT OR UPDATE OF expires_at ON identity.sessions
    FOR EACH ROW EXECUTE FUNCTION identity.sessions_clamp_expiry();

CREATE FUNCTION identity.organization_members_clamp_invitation() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, identity, pg_temp
AS $$
BEGIN
    NEW.invitation_expires_at := least(NEW.invitation_expires_at,
                                       now() + (SELECT p.invitation_lifetime FROM identity.auth_policy p));
    RETURN NEW;
END
$$;

CREATE TRIGGER organization_members_clamp_invitation
    BEFORE INSERT OR UPDATE OF invitation_expires_at ON identity.organization_members
    FOR EACH ROW EXECUTE FUNCTION identity.organization_members_clamp_invitation();

-- Users: a user sees and changes itself only; security state (status, lock-out,
-- login tracking, verification) is written by the owner and the definer functions.
DROP POLICY users_fellow_members ON identity.users;

REVOKE SELECT, INSERT, UPDATE ON identity.users FROM groundwork_app, groundwork_readonly;
GRANT SELECT (id, email, username, first_name, last_name, avatar_url, email_verified, status,
              metadata, last_login_at, created_at, updated_at, phone, locale, timezone,
              tax_number, mfa_enabled, mfa_method, failed_login_attempts, locked_until,
              last_login_ip, password_changed_at, created_by, updated_by)
    ON identity.users TO groundwork_app, groundwork_readonly;
GRANT INSERT (id, email, username, password_hash, first_name, last_name, avatar_url, metadata,
              phone, locale, timezone, tax_number, mfa_enabled, mfa_method,
              password_changed_at, created_by, updated_by)
    ON identity.users TO groundwork_app;
GRANT UPDATE (password_hash, password_changed_at, first_name, last_name, avatar_url, metadata,
              phone, locale, timezone, tax_number, mfa_enabled, mfa_method, updated_by)
    ON identity.users TO groundwork_app;

-- Fellow members, as the current organization's members may see them.
CREATE VIEW identity.member_directory WITH (security_barrier) AS
SELECT m.organization_id, m.id AS member_id, m.role, m.joined_at,
       u.id AS user_id, u.email, u.username, u.first_name, u.last_name, u.avatar_url
FROM identity.organization_members m
JOIN identity.users u ON u.id = m.user_id
WHERE m.organization_id = identity.current_org_id()
  AND m.status = 'active'
  AND u.status <> 'deleted';

COMMENT ON VIEW identity.member_directory IS
    'The active members of the current organization: names and emails, no secrets or personal data';

REVOKE ALL ON identity.member_directory FROM groundwork_app, groundwork_readonly;
GRANT SELECT ON identity.member_directory TO groundwork_app, groundwork_readonly;

-- Memberships: the application inserts a membership for the current user (joining
-- or creating an organization) or an invitation; it cannot re-point a row at another
-- user, and an invitation turns into a membership only in invitation_accept().
CREATE POLICY organization_members_attach ON identity.organization_members
    AS RESTRICTIVE FOR INSERT TO groundwork_app
    WITH CHECK (status = 'invited' OR user_id = identity.current_user_id());

REVOKE INSERT, UPDATE ON identity.organization_members FROM groundwork_app;
GRANT INSERT (organization_id, user_id, role, permissions, status, invitation_email,
              invitation_token_hash, invitation_expires_at, invited_by, joined_at)
    ON identity.organization_members TO groundwork_app;
GRANT UPDATE (role, permissions, status) ON identity.organization_members TO groundwork_app;

CREATE FUNCTION identity.organization_members_guard_invitation() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, identity, pg_temp
AS $$
BEGIN
    IF OLD.status = 'invited' AND NEW.status <> 'invited'
       AND NOT pg_has_role(current_user, 'groundwork_owner', 'USAGE') THEN
        RAISE EXCEPTION 'invitation % becomes a membership only when its invitee accepts it', OLD.id
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER organization_members_guard_invitation
    BEFORE UPDATE OF status ON identity.organization_members
    FOR EACH ROW EXECUTE FUNCTION identity.organization_members_guard_invitation();

-- Authenticates a presented API key by its SHA-256: live keys (not revoked, not
-- expired) of active organizations only; records the use.
CREATE OR REPLACE FUNCTION identity.api_key_authenticate(p_key_hash bytea)
RETURNS TABLE (api_key_id uuid, organization_id uuid, scopes text[], rate_limit_per_minute integer)
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, identity, pg_temp
AS $$
    UPDATE identity.api_keys k
    SET usage_count = k.usage_count + 1, last_used_at = now()
    FROM identity.organizations o
    WHERE k.key_hash = p_key_hash
      AND k.revoked_at IS NULL
      AND (k.expires_at IS NULL OR k.expires_at > now())
      AND o.id = k.organization_id
      AND o.status = 'active'
    RETURNING k.id, k.organization_id, k.scopes, k.rate_limit_per_minute
$$;

-- Swaps a live session's refresh-token hash for a new one; the old token stops
-- working. No row when the token is unknown, revoked or expired, the new expiry is
-- not in the future, or the user is not active or is locked out. The expiry is
-- clamped to the policy's session lifetime.
CREATE OR REPLACE FUNCTION identity.session_rotate(p_old_hash bytea, p_new_hash bytea, p_expires_at timestamptz)
RETURNS TABLE (session_id uuid, user_id uuid, expires_at timestamptz)
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, identity, pg_temp
AS $$
    UPDATE identity.sessions s
    SET refresh_token_hash = p_new_hash, expires_at = p_expires_at, last_used_at = now()
    FROM identity.users u
    WHERE s.refresh_token_hash = p_old_hash
      AND s.revoked_at IS NULL
      AND s.expires_at > now()
      AND p_expires_at > now()
      AND u.id = s.user_id
      AND u.status = 'active'
      AND (u.locked_until IS NULL OR u.locked_until <= now())
    RETURNING s.id, s.user_id, s.expires_at
$$;

-- Accepts an open, unexpired invitation of an active organization for the current
-- user (app.current_user_id), who must be active: the membership becomes active and
-- the token hash is cleared, so the token cannot be used twice.
DROP FUNCTION identity.invitation_accept(bytea, uuid);
CREATE FUNCTION identity.invitation_accept(p_token_hash bytea)
RETURNS TABLE (member_id uuid, organization_id uuid, role identity.member_role)
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, identity, pg_temp
AS $$
    UPDATE identity.organization_members m
    SET user_id = u.id, status = 'active', joined_at = now(),
        invitation_token_hash = NULL, invitation_expires_at = NULL
    FROM identity.users u, identity.organizations o
    WHERE m.invitation_token_hash = p_token_hash
      AND m.status = 'invited'
      AND m.invitation_expires_at > now()
      AND u.id = identity.current_user_id()
      AND u.status = 'active'
      AND (m.user_id IS NULL OR m.user_id = u.id)
      AND o.id = m.organization_id
      AND o.status = 'active'
    RETURNING m.id, m.organization_id, m.role
$$;

-- What a login needs before anyone is authenticated. The password hash is returned
-- only for an active account that is not locked out: the caller cannot check a
-- password it should refuse.
CREATE OR REPLACE FUNCTION identity.user_login_lookup(p_email text)
RETURNS TABLE (user_id uuid, password_hash text, status identity.user_status,
               locked_until timestamptz, failed_login_attempts integer)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, identity, pg_temp
AS $$
    SELECT u.id,
           CASE WHEN u.status = 'active' AND (u.locked_until IS NULL OR u.locked_until <= now())
                THEN u.password_hash END,
           u.status, u.locked_until, u.failed_login_attempts
    FROM identity.users u
    WHERE lower(u.email) = lower(p_email)
$$;

-- Counts a failed login under identity.auth_policy: the max_failed_logins-th
-- failure in a row locks the account for the policy's lockout. A failure while
-- locked changes nothing; the first failure after a lock has ended starts a new
-- count. Returns the count and lock.
DROP FUNCTION identity.user_login_failed(uuid, integer, interval);
CREATE FUNCTION identity.user_login_failed(p_user_id uuid)
RETURNS TABLE (failed_login_attempts integer, locked_until timestamptz)
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, identity, pg_temp
AS $$
    WITH counted AS (
        -- An ended lock (locked_until in the past) starts the count again.
        UPDATE identity.users u
        SET failed_login_attempts =
                CASE WHEN u.locked_until IS NULL THEN u.failed_login_attempts ELSE 0 END + 1,
            locked_until =
                CASE WHEN CASE WHEN u.locked_until IS NULL THEN u.failed_login_attempts ELSE 0 END + 1
                          >= p.max_failed_logins
                     THEN now() + p.lockout END
        FROM identity.auth_policy p
        WHERE u.id = p_user_id
          AND (u.locked_until IS NULL OR u.locked_until <= now())
        RETURNING u.failed_login_attempts, u.locked_until
    )
    SELECT * FROM counted
    UNION ALL
    SELECT u.failed_login_attempts, u.locked_until
    FROM identity.users u
    WHERE u.id = p_user_id AND u.locked_until > now()
$$;

-- Records a successful login of an active, unlocked account: resets the failure
-- count and lock. Returns whether it was recorded.
CREATE OR REPLACE FUNCTION identity.user_login_succeeded(p_user_id uuid, p_ip inet)
RETURNS boolean
LANGUAGE sql SECURITY DEFINER
SET search_path = pg_catalog, identity, pg_temp
AS $$
    WITH updated AS (
        UPDATE identity.users
        SET failed_login_attempts = 0, locked_until = NULL, last_login_at = now(),
            last_login_ip = p_ip
        WHERE id = p_user_id
          AND status = 'active'
          AND (locked_until IS NULL OR locked_until <= now())
        RETURNING 1
    )
    SELECT EXISTS (SELECT FROM updated)
$$;

SELECT public.groundwork_set_owner('identity', 'groundwork_owner');

REVOKE ALL ON FUNCTION identity.sessions_clamp_expiry(),
    identity.organization_members_clamp_invitation(),
    identity.organization_members_guard_invitation(),
    identity.api_key_authenticate(bytea),
    identity.session_rotate(bytea, bytea, timestamptz),
    identity.invitation_accept(bytea),
    identity.user_login_lookup(text),
    identity.user_login_failed(uuid),
    identity.user_login_succeeded(uuid, inet)
    FROM PUBLIC, groundwork_app;
-- Presenting a secret (a key, a refresh token, an invitation token) is the proof.
GRANT EXECUTE ON FUNCTION identity.api_key_authenticate(bytea),
    identity.session_rotate(bytea, bytea, timestamptz),
    identity.invitation_accept(bytea)
    TO groundwork_app;
-- A login hands out a password hash and moves the lock-out: the auth service only.
GRANT USAGE ON SCHEMA identity TO groundwork_auth;
GRANT EXECUTE ON FUNCTION identity.user_login_lookup(text),
    identity.user_login_failed(uuid),
    identity.user_login_succeeded(uuid, inet)
    TO groundwork_auth;
