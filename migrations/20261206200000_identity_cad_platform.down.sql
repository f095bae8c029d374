-- Why: undoes 20261206200000_identity_cad_platform. Locales go back to text; tax
-- numbers keep their digits and lose their kind.

REVOKE EXECUTE ON FUNCTION identity.tax_number_is_valid(identity.tax_number_kind, text)
    FROM groundwork_app, groundwork_readonly;
REVOKE INSERT (company_name, company_tax_office, tax_number_kind),
       UPDATE (company_name, company_tax_office, tax_number_kind)
    ON identity.users FROM groundwork_app;
REVOKE SELECT (role, company_name, company_tax_office, tax_number_kind)
    ON identity.users FROM groundwork_app, groundwork_readonly;
REVOKE SELECT ON identity.time_zones FROM groundwork_app, groundwork_readonly;

ALTER TABLE identity.sessions DROP COLUMN access_token_jti;

DROP TRIGGER users_fill_defaults ON identity.users;
DROP FUNCTION identity.fill_user_defaults();

ALTER TABLE identity.users DROP CONSTRAINT users_timezone_fkey;
ALTER TABLE identity.users ALTER COLUMN timezone SET DEFAULT 'UTC';
ALTER TABLE identity.users
    ADD CONSTRAINT users_timezone_length CHECK (char_length(timezone) BETWEEN 1 AND 64);
-- groundwork:lint allow changing-column-type because it undoes the rewrite of the up file, before the first release
ALTER TABLE identity.users ALTER COLUMN locale TYPE text USING locale::text;
ALTER TABLE identity.users ALTER COLUMN locale SET DEFAULT 'en';
ALTER TABLE identity.users
    ADD CONSTRAINT users_locale_format CHECK (locale ~ '^[a-z]{2}(-[A-Z]{2})?$');

ALTER TABLE identity.users DROP CONSTRAINT users_tax_number_valid;
ALTER TABLE identity.users
    ADD CONSTRAINT users_tax_number_format CHECK (tax_number ~ '^[0-9A-Z]{5,20}$');
ALTER TABLE identity.users
    DROP COLUMN tax_number_kind,
    DROP COLUMN company_tax_office,
    DROP COLUMN company_name,
    DROP COLUMN role;

ALTER TABLE identity.organizations
    DROP COLUMN default_timezone,
    DROP COLUMN default_locale;

DROP FUNCTION identity.tax_number_is_valid(identity.tax_number_kind, text);
DROP FUNCTION identity.refresh_time_zones();
DROP TABLE identity.time_zones;
DROP TYPE identity.tax_number_kind;
DROP TYPE identity.locale;
DROP TYPE identity.platform_role;
