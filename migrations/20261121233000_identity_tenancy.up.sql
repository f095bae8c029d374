-- Why: completes the identity schema (seeds 000, 001, 003): the rest of the user
-- columns, profiles, memberships with hashed invitations, sessions with hashed
-- refresh tokens, API keys stored as hashes, the audit references that need both
-- organizations and users, and the tenant-context helpers that row-level security
-- policies use.

-- Seed 001 and 000: contact, locale, security tracking and lock-out.
CREATE TYPE identity.mfa_method AS ENUM ('totp', 'webauthn', 'sms');

ALTER TABLE identity.users
    ADD COLUMN phone text
        CONSTRAINT users_phone_format CHECK (phone ~ '^\+[1-9][0-9]{6,14}$'),
    ADD COLUMN locale text NOT NULL DEFAULT 'en'
        CONSTRAINT users_locale_format CHECK (locale ~ '^[a-z]{2}(-[A-Z]{2})?$'),
    ADD COLUMN timezone text NOT NULL DEFAULT 'UTC'
        CONSTRAINT users_timezone_length CHECK (char_length(timezone) BETWEEN 1 AND 64),
    ADD COLUMN tax_number text
        CONSTRAINT users_tax_number_format CHECK (tax_number ~ '^[0-9A-Z]{5,20}$'),
    ADD COLUMN mfa_enabled boolean NOT NULL DEFAULT false,
    ADD COLUMN mfa_method identity.mfa_method,
    ADD COLUMN failed_login_attempts integer NOT NULL DEFAULT 0
        CONSTRAINT users_failed_login_attempts_nonnegative CHECK (failed_login_attempts >= 0),
    ADD COLUMN locked_until timestamptz,
    ADD COLUMN last_login_ip inet,
    ADD COLUMN password_changed_at timestamptz,
    ADD COLUMN created_by uuid,
    ADD COLUMN updated_by uuid,
    ADD CONSTRAINT users_phone_key UNIQUE (phone),
    ADD CONSTRAINT users_mfa_method_required
        CHECK (NOT mfa_enabled OR mfa_method IS NOT NULL);

-- Seed 000: audit references, added once both tables exist.
ALTER TABLE identity.users
    ADD CONSTRAINT users_created_by_fkey FOREIGN KEY (created_by)
        REFERENCES identity.users (id) ON DELETE SET NULL,
    ADD CONSTRAINT users_updated_by_fkey FOREIGN KEY (updated_by)
        REFERENCES identity.users (id) ON DELETE SET NULL;

ALTER TABLE identity.organizations
    ADD COLUMN created_by uuid
        CONSTRAINT organizations_created_by_fkey REFERENCES identity.users (id) ON DELETE SET NULL,
    ADD COLUMN updated_by uuid
        CONSTRAINT organizations_updated_by_fkey REFERENCES identity.users (id) ON DELETE SET NULL;

CREATE INDEX users_metadata_gin_idx ON identity.users USING gin (metadata);
CREATE INDEX users_locked_until_idx ON identity.users (locked_until) WHERE locked_until IS NOT NULL;

-- Seed 003: one profile per user.
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

-- Seed 000's user_organizations. An invitation is a row in state 'invited' holding
-- the SHA-256 of its token; accepting it binds the user and clears the hash.
CREATE TYPE identity.member_role AS ENUM ('owner', 'admin', 'member', 'viewer');
CREATE TYPE identity.member_status AS ENUM ('invited', 'active', 'suspended');

CREATE TABLE identity.organization_members (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL
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
    CONSTRAINT organization_members_organization_id_user_id_key UNIQUE (organization_id, user_id),
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

-- Seeds 001 and 003: sessions hold the SHA-256 of their refresh token, never the token.
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

-- Seed 000: API keys, stored as SHA-256 with a short display prefix.
CREATE TABLE identity.api_keys (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL
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
    CONSTRAINT api_keys_key_hash_key UNIQUE (key_hash),
    CONSTRAINT api_keys_key_prefix_key UNIQUE (key_prefix),
    CONSTRAINT api_keys_expires_after_creation CHECK (expires_at > created_at)
);

CREATE INDEX api_keys_organization_id_idx ON identity.api_keys (organization_id);
CREATE INDEX api_keys_scopes_gin_idx ON identity.api_keys USING gin (scopes);

CREATE TRIGGER api_keys_set_updated_at
    BEFORE UPDATE ON identity.api_keys
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();

-- The tenant context: unset (or empty) settings are NULL, which matches no row.
CREATE FUNCTION identity.current_org_id() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT nullif(current_setting('app.current_org_id', true), '')::uuid $$;

CREATE FUNCTION identity.current_user_id() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT nullif(current_setting('app.current_user_id', true), '')::uuid $$;
