-- Why: identity and tenancy (docs/REQUIREMENTS.md, "identity"): organizations (the
-- tenants), users merged from every system into one table, one profile per user,
-- memberships with hashed invitations, sessions with hashed refresh tokens, API keys
-- stored as hashes, the login lock-out policy, and the tenant context that row-level
-- security reads.
--
-- Isolation (docs/SECURITY.md):
-- * tenant-owned rows are visible to groundwork_app and groundwork_readonly only for
--   the organization in app.current_org_id; users, profiles and sessions only for the
--   user in app.current_user_id. A user sees only itself in identity.users (never its
--   password hash); fellow members are seen through identity.member_directory, which
--   shows active members' names and emails only.
-- * a membership row can be inserted for the current user or as an invitation, and
--   an invitation becomes a membership only through invitation_accept() by the
--   invitee.
-- * lookups that happen before the tenant is known (authenticating an API key,
--   rotating a session by its refresh token, accepting an invitation, logging in) are
--   SECURITY DEFINER functions that find one row by hash, check the state of the user
--   and organization they act for, and return only what the caller may know. The login
--   functions are for groundwork_auth only and apply identity.auth_policy.

CREATE SCHEMA identity;

-- The tenant context: unset (or empty) settings are NULL, which matches no row.
CREATE FUNCTION identity.current_org_id() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT nullif(current_setting('app.current_org_id', true), '')::uuid $$;

CREATE FUNCTION identity.current_user_id() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT nullif(current_setting('app.current_user_id', true), '')::uuid $$;

CREATE TYPE identity.organization_status AS ENUM ('active', 'suspended', 'archived');
CREATE TYPE identity.user_status AS ENUM ('active', 'inactive', 'suspended', 'deleted');
CREATE TYPE identity.mfa_method AS ENUM ('totp', 'webauthn', 'sms');
CREATE TYPE identity.member_role AS ENUM ('owner', 'admin', 'member', 'viewer');
CREATE TYPE identity.member_status AS ENUM ('invited', 'active', 'suspended');

-- People. Users are global: organizations reach them through memberships.
CREATE TABLE identity.users (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email text NOT NULL
        CONSTRAINT users_email_format
            CHECK (email ~ '^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$'
                   AND char_length(email) <= 255),
    username text NOT NULL
        CONSTRAINT users_username_length CHECK (char_length(username) BETWEEN 3 AND 50),
    -- An argon2id PHC string produced by the application; never a password. NULL for a
    -- user who has not set one (invited, or signing in another way).
    password_hash text
        CONSTRAINT users_password_hash_format CHECK (password_hash LIKE '$argon2id$%'),
    first_name text CONSTRAINT users_first_name_length CHECK (char_length(first_name) <= 100),
    last_name text CONSTRAINT users_last_name_length CHECK (char_length(last_name) <= 100),
    avatar_url text,
    email_verified boolean NOT NULL DEFAULT false,
    status identity.user_status NOT NULL DEFAULT 'active',
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    last_login_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    phone text
        CONSTRAINT users_phone_format CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
    locale text NOT NULL DEFAULT 'en'
        CONSTRAINT users_locale_format CHECK (locale ~ '^[a-z]{2}(-[A-Z]{2})?$'),
    timezone text NOT NULL DEFAULT 'UTC'
        CONSTRAINT users_timezone_length CHECK (char_length(timezone) BETWEEN 1 AND 64),
    tax_number text
        CONSTRAINT users_tax_number_format CHECK (tax_number ~ '^[0-9A-Z]{5,20}$'),
    mfa_enabled boolean NOT NULL DEFAULT false,
    mfa_method identity.mfa_method,
    -- Lock-out (identity.auth_policy), written by the login functions only.
    failed_login_attempts integer NOT NULL DEFAULT 0
        CONSTRAINT users_failed_login_attempts_nonnegative CHECK (failed_login_attempts >= 0),
    locked_until timestamptz,
    last_login_ip inet,
    password_changed_at timestamptz,
    created_by uuid
        CONSTRAINT users_created_by_fkey REFERENCES identity.users (id) ON DELETE SET NULL,
    updated_by uuid
        CONSTRAINT users_updated_by_fkey REFERENCES identity.users (id) ON DELETE SET NULL,
    CONSTRAINT users_username_key UNIQUE (username),
    CONSTRAINT users_phone_key UNIQUE (phone),
    CONSTRAINT users_mfa_method_required CHECK (NOT mfa_enabled OR mfa_method IS NOT NULL)
);

-- Email is unique regardless of case.
CREATE UNIQUE INDEX users_email_key ON identity.users (lower(email));
CREATE INDEX users_created_at_id_idx ON identity.users (created_at, id);
CREATE INDEX users_status_idx ON identity.users (status);
CREATE INDEX users_metadata_gin_idx ON identity.users USING gin (metadata);
CREATE INDEX users_locked_until_idx ON identity.users (locked_until) WHERE locked_until IS NOT NULL;

CREATE TRIGGER users_set_updated_at
    BEFORE UPDATE ON identity.users
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();

-- The tenants.
CREATE TABLE identity.organizations (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name text NOT NULL
        CONSTRAINT organizations_name_length CHECK (char_length(btrim(name)) BETWEEN 1 AND 255),
    slug text NOT NULL
        CONSTRAINT organizations_slug_format
            CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND char_length(slug) <= 63),
    status identity.organization_status NOT NULL DEFAULT 'active',
    settings jsonb NOT NULL DEFAULT '{}'::jsonb,
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    created_by uuid
        CONSTRAINT organizations_created_by_fkey REFERENCES identity.users (id) ON DELETE SET NULL,
    updated_by uuid
        CONSTRAINT organizations_updated_by_fkey REFERENCES identity.users (id) ON DELETE SET NULL,
    CONSTRAINT organizations_slug_key UNIQUE (slug)
);

CREATE INDEX organizations_created_at_id_idx ON identity.organizations (created_at, id);

CREATE TRIGGER organizations_set_updated_at
    BEFORE UPDATE ON identity.organizations
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();

-- One profile per user.
CREATE TABLE identity.user_profiles (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL
        CONSTRAINT user_profiles_user_id_fkey REFERENCES identity.users (id) ON DELETE CASCADE,
    bio text CONSTRAINT user_profiles_bio_length CHECK (char_length(bio) <= 2000),
    location text CONSTRAINT user_profiles_location_length CHECK (char_length(location) <= 255),
    website_url text
        CONSTRAINT user_profiles_website_url_format CHECK (website_url ~ '^https?://'),
    social_links jsonb NOT NULL DEFAULT '{}'::jsonb,
    preferences jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT user_profiles_user_id_key UNIQUE (user_id)
);

CREATE INDEX user_profiles_preferences_gin_idx ON identity.user_profiles USING gin (preferences);

CREATE TRIGGER user_profiles_set_updated_at
    BEFORE UPDATE ON identity.user_profiles
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();

-- Memberships. An invitation is a row in state 'invited' holding the SHA-256 of its
-- token; accepting it binds the user and clears the hash.
CREATE TABLE identity.organization_members (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL DEFAULT identity.current_org_id()
        CONSTRAINT organization_members_organization_id_fkey
            REFERENCES identity.organizations (id) ON DELETE CASCADE,
    user_id uuid
        CONSTRAINT organization_members_user_id_fkey
            REFERENCES identity.users (id) ON DELETE CASCADE,
    role identity.member_role NOT NULL DEFAULT 'member',
    permissions jsonb NOT NULL DEFAULT '{}'::jsonb,
    status identity.member_status NOT NULL DEFAULT 'active',
    invitation_email text
        CONSTRAINT organization_members_invitation_email_format
            CHECK (invitation_email ~ '^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$'),
    invitation_token_hash bytea
        CONSTRAINT organization_members_invitation_token_hash_length
            CHECK (octet_length(invitation_token_hash) = 32),
    invitation_expires_at timestamptz,
    invited_by uuid
        CONSTRAINT organization_members_invited_by_fkey
            REFERENCES identity.users (id) ON DELETE SET NULL,
    joined_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT organization_members_pkey PRIMARY KEY (organization_id, id),
    CONSTRAINT organization_members_organization_id_user_id_key UNIQUE (organization_id, user_id),
    -- Global by nature: a token is presented before the tenant is known.
    CONSTRAINT organization_members_invitation_token_hash_key UNIQUE (invitation_token_hash),
    CONSTRAINT organization_members_state CHECK (
        CASE status
            WHEN 'invited' THEN invitation_token_hash IS NOT NULL
                AND invitation_expires_at IS NOT NULL
                AND (user_id IS NOT NULL OR invitation_email IS NOT NULL)
            ELSE user_id IS NOT NULL AND invitation_token_hash IS NULL
        END
    )
);

CREATE UNIQUE INDEX organization_members_open_invitation_key
    ON identity.organization_members (organization_id, lower(invitation_email))
    WHERE status = 'invited';
CREATE INDEX organization_members_user_id_idx ON identity.organization_members (user_id);
CREATE INDEX organization_members_permissions_gin_idx
    ON identity.organization_members USING gin (permissions);

CREATE TRIGGER organization_members_set_updated_at
    BEFORE UPDATE ON identity.organization_members
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();

-- Sessions hold the SHA-256 of their refresh token, never the token.
CREATE TABLE identity.sessions (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL
        CONSTRAINT sessions_user_id_fkey REFERENCES identity.users (id) ON DELETE CASCADE,
    refresh_token_hash bytea NOT NULL
        CONSTRAINT sessions_refresh_token_hash_length CHECK (octet_length(refresh_token_hash) = 32),
    device_fingerprint text
        CONSTRAINT sessions_device_fingerprint_length CHECK (char_length(device_fingerprint) <= 255),
    ip_address inet,
    user_agent text,
    expires_at timestamptz NOT NULL,
    last_used_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sessions_refresh_token_hash_key UNIQUE (refresh_token_hash),
    CONSTRAINT sessions_expires_after_creation CHECK (expires_at > created_at)
);

CREATE INDEX sessions_user_id_idx ON identity.sessions (user_id) WHERE revoked_at IS NULL;
CREATE INDEX sessions_expires_at_idx ON identity.sessions (expires_at);
CREATE INDEX sessions_device_fingerprint_idx ON identity.sessions (device_fingerprint)
    WHERE device_fingerprint IS NOT NULL;

-- API keys, stored as SHA-256 with a short display prefix.
CREATE TABLE identity.api_keys (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL DEFAULT identity.current_org_id()
        CONSTRAINT api_keys_organization_id_fkey
            REFERENCES identity.organizations (id) ON DELETE CASCADE,
    created_by uuid
        CONSTRAINT api_keys_created_by_fkey REFERENCES identity.users (id) ON DELETE SET NULL,
    name text NOT NULL CONSTRAINT api_keys_name_length CHECK (char_length(name) BETWEEN 1 AND 100),
    key_prefix text NOT NULL CONSTRAINT api_keys_key_prefix_format CHECK (key_prefix ~ '^gw_[a-z0-9]{8}$'),
    key_hash bytea NOT NULL CONSTRAINT api_keys_key_hash_length CHECK (octet_length(key_hash) = 32),
    scopes text[] NOT NULL DEFAULT '{}',
    rate_limit_per_minute integer
        CONSTRAINT api_keys_rate_limit_positive CHECK (rate_limit_per_minute > 0),
    usage_count bigint NOT NULL DEFAULT 0,
    last_used_at timestamptz,
    expires_at timestamptz,
    revoked_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT api_keys_pkey PRIMARY KEY (organization_id, id),
    -- Global by nature: a key is presented before the tenant is known.
    CONSTRAINT api_keys_key_hash_key UNIQUE (key_hash),
    CONSTRAINT api_keys_key_prefix_key UNIQUE (key_prefix),
    CONSTRAINT api_keys_expires_after_creation CHECK (expires_at > created_at)
);

CREATE INDEX api_keys_scopes_gin_idx ON identity.api_keys USING gin (scopes);

CREATE TRIGGER api_keys_set_updated_at
    BEFORE UPDATE ON identity.api_keys
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();

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

-- An invitation turns into a membership only in invitation_accept().
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

-- Authenticates a presented API key by its SHA-256: live keys (not revoked, not
-- expired) of active organizations only; records the use.
CREATE FUNCTION identity.api_key_authenticate(p_key_hash bytea)
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
CREATE FUNCTION identity.session_rotate(p_old_hash bytea, p_new_hash bytea, p_expires_at timestamptz)
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
CREATE FUNCTION identity.user_login_lookup(p_email text)
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
CREATE FUNCTION identity.user_login_succeeded(p_user_id uuid, p_ip inet)
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

-- Row-level security. Tenant-owned: the current organization only.
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
-- The application inserts a membership for the current user (joining or creating an
-- organization) or an invitation; it cannot re-point a row at another user.
CREATE POLICY organization_members_attach ON identity.organization_members
    AS RESTRICTIVE FOR INSERT TO groundwork_app
    WITH CHECK (status = 'invited' OR user_id = identity.current_user_id());

ALTER TABLE identity.api_keys ENABLE ROW LEVEL SECURITY;
CREATE POLICY api_keys_tenant ON identity.api_keys
    FOR ALL TO groundwork_app, groundwork_readonly
    USING (organization_id = identity.current_org_id())
    WITH CHECK (organization_id = identity.current_org_id());

-- User-owned: the current user only.
ALTER TABLE identity.users ENABLE ROW LEVEL SECURITY;
CREATE POLICY users_self ON identity.users
    FOR ALL TO groundwork_app, groundwork_readonly
    USING (id = identity.current_user_id())
    WITH CHECK (id = identity.current_user_id());

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

SELECT public.groundwork_set_owner('identity', 'groundwork_owner');

-- Privileges.
GRANT USAGE ON SCHEMA identity TO groundwork_app, groundwork_readonly, groundwork_auth;
GRANT SELECT, INSERT, UPDATE, DELETE
    ON identity.organizations, identity.user_profiles, identity.sessions, identity.api_keys
    TO groundwork_app;
GRANT SELECT ON identity.organizations, identity.user_profiles, identity.sessions, identity.api_keys
    TO groundwork_readonly;

-- Users: security state (status, lock-out, login tracking, verification) is written
-- by the owner and the definer functions; the password hash is never read back.
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
GRANT DELETE ON identity.users TO groundwork_app;

GRANT SELECT, DELETE ON identity.organization_members TO groundwork_app;
GRANT SELECT ON identity.organization_members TO groundwork_readonly;
GRANT INSERT (organization_id, user_id, role, permissions, status, invitation_email,
              invitation_token_hash, invitation_expires_at, invited_by, joined_at)
    ON identity.organization_members TO groundwork_app;
GRANT UPDATE (role, permissions, status) ON identity.organization_members TO groundwork_app;

GRANT SELECT ON identity.member_directory TO groundwork_app, groundwork_readonly;

-- Functions: none for PUBLIC. Presenting a secret (a key, a refresh token, an
-- invitation token) is the proof; a login hands out a password hash and moves the
-- lock-out, so it is for the auth service only.
REVOKE ALL ON FUNCTION identity.sessions_clamp_expiry(),
    identity.organization_members_clamp_invitation(),
    identity.organization_members_guard_invitation(),
    identity.api_key_authenticate(bytea),
    identity.session_rotate(bytea, bytea, timestamptz),
    identity.invitation_accept(bytea),
    identity.user_login_lookup(text),
    identity.user_login_failed(uuid),
    identity.user_login_succeeded(uuid, inet)
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION identity.api_key_authenticate(bytea),
    identity.session_rotate(bytea, bytea, timestamptz),
    identity.invitation_accept(bytea)
    TO groundwork_app;
GRANT EXECUTE ON FUNCTION identity.user_login_lookup(text),
    identity.user_login_failed(uuid),
    identity.user_login_succeeded(uuid, inet)
    TO groundwork_auth;
