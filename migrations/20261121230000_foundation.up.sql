-- Why: the pieces every schema shares (pgcrypto, the updated_at trigger function) and
-- the first identity tables, organizations and users (seeds 000 and 003). The
-- "Identity and tenancy" migrations complete the identity schema.

CREATE EXTENSION IF NOT EXISTS pgcrypto;

-- Seed 003's audit trigger: updated_at is kept by the database, never by callers.
CREATE FUNCTION public.set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION public.set_updated_at() IS
    'BEFORE UPDATE trigger function that stamps updated_at on every mutable table';

CREATE SCHEMA identity;

CREATE TYPE identity.organization_status AS ENUM ('active', 'suspended', 'archived');

-- The tenants. created_by/updated_by reference users and are added once users exist.
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
    CONSTRAINT organizations_slug_key UNIQUE (slug)
);

CREATE INDEX organizations_created_at_id_idx ON identity.organizations (created_at, id);

CREATE TRIGGER organizations_set_updated_at
    BEFORE UPDATE ON identity.organizations
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();

CREATE TYPE identity.user_status AS ENUM ('active', 'inactive', 'suspended', 'deleted');

-- People. Users are global: organizations reach them through memberships.
CREATE TABLE identity.users (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email text NOT NULL
        CONSTRAINT users_email_format
            CHECK (email ~ '^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$'
                   AND char_length(email) <= 255),
    username text NOT NULL
        CONSTRAINT users_username_length CHECK (char_length(username) BETWEEN 3 AND 50),
    -- An argon2id PHC string produced by the application; never a password.
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
    CONSTRAINT users_username_key UNIQUE (username)
);

-- Email is unique regardless of case.
CREATE UNIQUE INDEX users_email_key ON identity.users (lower(email));
CREATE INDEX users_created_at_id_idx ON identity.users (created_at, id);
CREATE INDEX users_status_idx ON identity.users (status);

CREATE TRIGGER users_set_updated_at
    BEFORE UPDATE ON identity.users
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();
