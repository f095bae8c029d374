-- Why: what seed 001 (the CAD/CAM platform) adds to users and sessions: a platform
-- role, locales as an enum, time zones that exist, per-organization defaults for both,
-- company fields, Turkish tax numbers checked by their official check digits, and the
-- access token's JTI on sessions for revocation. The next migration builds the role and
-- JTI indexes concurrently and validates the constraints added here NOT VALID, without
-- blocking writes.
--
-- Deletion of users (docs/SECURITY.md, "Deleting users"): users are soft-deleted
-- (status 'deleted'); a hard DELETE is for erasure only. Foreign keys to users follow
-- one rule, by what the referencing row is:
-- * the user's own access and settings (profile, sessions, memberships) CASCADE: they
--   mean nothing without the user (seed 003; seed 001 asks RESTRICT for sessions, but a
--   user that may be erased cannot be held back by its own sessions);
-- * what a user owns or is accountable for (projects, tasks created, licences, seats,
--   CAD models and versions) RESTRICT: erasure must first hand it over (seed 001);
-- * who last touched or was handed something (created_by, updated_by, invited_by,
--   assignee) SET NULL.
--
-- Per-organization defaults: a user created while a tenant is set gets that
-- organization's default locale and time zone unless given others
-- (identity.fill_user_defaults); the CAD platform's organizations default to seed 001's
-- 'tr' and 'Europe/Istanbul' (query organization_create_cad_platform), everyone else's
-- to 'en' and 'UTC'.
--
-- Refusals: an unknown time zone is a foreign-key violation (23503) of
-- users_timezone_fkey or organizations_default_timezone_fkey; an unknown locale is
-- 22P02; a tax number that fails its check digits, or one without its kind, is a check
-- violation (23514) of users_tax_number_valid.

CREATE TYPE identity.platform_role AS ENUM ('user', 'support', 'admin');
CREATE TYPE identity.locale AS ENUM ('en', 'tr', 'de', 'fr', 'es', 'it', 'nl', 'pt', 'ru', 'ar',
                                     'zh', 'ja');
CREATE TYPE identity.tax_number_kind AS ENUM ('vkn', 'tckn');

-- The time zone names the server knows (pg_timezone_names), as a table that foreign
-- keys can check in microseconds; without the leap-second 'right/' zones, their 'posix/'
-- duplicates and the pseudo-zones. identity.refresh_time_zones() adds names a newer
-- tzdata brings; a name is never removed while rows use it.
CREATE TABLE identity.time_zones (
    name text PRIMARY KEY
);
INSERT INTO identity.time_zones (name)
SELECT name FROM pg_timezone_names
WHERE name !~ '^(posix|right)/' AND name NOT IN ('localtime', 'posixrules', 'Factory');

CREATE FUNCTION identity.refresh_time_zones() RETURNS integer
LANGUAGE sql
SET search_path = pg_catalog, identity, pg_temp
AS $$
    WITH added AS (
        INSERT INTO identity.time_zones (name)
        SELECT name FROM pg_timezone_names
        WHERE name !~ '^(posix|right)/' AND name NOT IN ('localtime', 'posixrules', 'Factory')
        ON CONFLICT (name) DO NOTHING
        RETURNING 1)
    SELECT count(*)::integer FROM added
$$;

-- VKN (10 digits, legal entities) and TCKN (11 digits, citizens), by the Revenue
-- Administration's and the population register's check-digit algorithms.
CREATE FUNCTION identity.tax_number_is_valid(kind identity.tax_number_kind, number text)
RETURNS boolean
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d integer[];
    sum integer := 0;
    odd integer;
    even integer;
    tmp integer;
    v integer;
BEGIN
    IF kind IS NULL OR number IS NULL THEN
        RETURN false;
    ELSIF kind = 'vkn' THEN
        IF number !~ '^[0-9]{10}$' THEN
            RETURN false;
        END IF;
        d := string_to_array(number, NULL)::integer[];
        FOR i IN 1..9 LOOP
            tmp := (d[i] + 10 - i) % 10;
            v := (tmp * (2 ^ (10 - i))::integer) % 9;
            IF tmp <> 0 AND v = 0 THEN
                v := 9;
            END IF;
            sum := sum + v;
        END LOOP;
        RETURN (10 - sum % 10) % 10 = d[10];
    ELSE
        IF number !~ '^[1-9][0-9]{10}$' THEN
            RETURN false;
        END IF;
        d := string_to_array(number, NULL)::integer[];
        odd := d[1] + d[3] + d[5] + d[7] + d[9];
        even := d[2] + d[4] + d[6] + d[8];
        RETURN ((odd * 7 - even) % 10 + 10) % 10 = d[10]
            AND (odd + even + d[10]) % 10 = d[11];
    END IF;
END
$$;

-- Organizations: the defaults their new users get.
ALTER TABLE identity.organizations
    ADD COLUMN default_locale identity.locale NOT NULL DEFAULT 'en',
    ADD COLUMN default_timezone text NOT NULL DEFAULT 'UTC';
ALTER TABLE identity.organizations
    ADD CONSTRAINT organizations_default_timezone_fkey FOREIGN KEY (default_timezone)
        REFERENCES identity.time_zones (name) ON UPDATE RESTRICT ON DELETE RESTRICT NOT VALID;

-- Users: the platform role (set by operators, never by the application role), company
-- fields, the tax number's kind.
ALTER TABLE identity.users
    ADD COLUMN role identity.platform_role NOT NULL DEFAULT 'user',
    ADD COLUMN company_name text,
    ADD COLUMN company_tax_office text,
    ADD COLUMN tax_number_kind identity.tax_number_kind;
ALTER TABLE identity.users
    ADD CONSTRAINT users_company_name_length
        CHECK (char_length(btrim(company_name)) BETWEEN 1 AND 255) NOT VALID,
    ADD CONSTRAINT users_company_tax_office_length
        CHECK (char_length(btrim(company_tax_office)) BETWEEN 1 AND 100) NOT VALID,
    ADD CONSTRAINT users_tax_number_valid
        CHECK ((tax_number IS NULL AND tax_number_kind IS NULL)
               OR identity.tax_number_is_valid(tax_number_kind, tax_number)) NOT VALID;
ALTER TABLE identity.users DROP CONSTRAINT users_tax_number_format;

-- Locale: from a checked text to the enum; an unknown language becomes 'en'. Time zone:
-- from a length check to the names that exist. Neither has a column default any more:
-- identity.fill_user_defaults fills them.
ALTER TABLE identity.users DROP CONSTRAINT users_locale_format;
ALTER TABLE identity.users ALTER COLUMN locale DROP DEFAULT;
-- groundwork:lint allow changing-column-type because identity.users is rewritten once, before the first release, while it holds test accounts only
-- groundwork:lint allow table-rewrite because identity.users is rewritten once, before the first release, while it holds test accounts only
ALTER TABLE identity.users ALTER COLUMN locale TYPE identity.locale
    USING (CASE WHEN split_part(locale, '-', 1) = ANY (enum_range(NULL::identity.locale)::text[])
                THEN split_part(locale, '-', 1) ELSE 'en' END)::identity.locale;
ALTER TABLE identity.users ALTER COLUMN timezone DROP DEFAULT;
-- groundwork:lint allow lock-held-while-scanning because the locale rewrite above holds the same lock for the whole migration
UPDATE identity.users SET timezone = 'UTC'
WHERE timezone NOT IN (SELECT name FROM identity.time_zones);
ALTER TABLE identity.users
    ADD CONSTRAINT users_timezone_fkey FOREIGN KEY (timezone)
        REFERENCES identity.time_zones (name) ON UPDATE RESTRICT ON DELETE RESTRICT NOT VALID;
ALTER TABLE identity.users DROP CONSTRAINT users_timezone_length;

-- A new user's locale and time zone, when not given: the current organization's
-- defaults, else 'en' and 'UTC'.
CREATE FUNCTION identity.fill_user_defaults() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, identity, pg_temp
AS $$
DECLARE
    org_locale identity.locale;
    org_timezone text;
BEGIN
    IF NEW.locale IS NULL OR NEW.timezone IS NULL THEN
        SELECT o.default_locale, o.default_timezone INTO org_locale, org_timezone
        FROM identity.organizations o
        WHERE o.id = identity.current_org_id();
        NEW.locale := coalesce(NEW.locale, org_locale, 'en');
        NEW.timezone := coalesce(NEW.timezone, org_timezone, 'UTC');
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER users_fill_defaults
    BEFORE INSERT ON identity.users
    FOR EACH ROW EXECUTE FUNCTION identity.fill_user_defaults();

-- Sessions: the JTI of the access token issued with the session's latest refresh, so a
-- service can refuse a revoked session's access token before it expires.
ALTER TABLE identity.sessions ADD COLUMN access_token_jti text;
ALTER TABLE identity.sessions
    ADD CONSTRAINT sessions_access_token_jti_length
        CHECK (char_length(access_token_jti) BETWEEN 1 AND 255) NOT VALID;

SELECT public.groundwork_set_owner('identity', 'groundwork_owner');

GRANT SELECT ON identity.time_zones TO groundwork_app, groundwork_readonly;
GRANT SELECT (role, company_name, company_tax_office, tax_number_kind)
    ON identity.users TO groundwork_app, groundwork_readonly;
GRANT INSERT (company_name, company_tax_office, tax_number_kind),
      UPDATE (company_name, company_tax_office, tax_number_kind)
    ON identity.users TO groundwork_app;
REVOKE ALL ON FUNCTION identity.refresh_time_zones(), identity.fill_user_defaults() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION identity.tax_number_is_valid(identity.tax_number_kind, text)
    TO groundwork_app, groundwork_readonly;
