-- groundwork:no-transaction
-- Why: undoes 20261206200100_identity_cad_platform_indexes: the indexes go, and the
-- constraints are back to NOT VALID (dropped and added again unvalidated).
ALTER TABLE identity.sessions DROP CONSTRAINT IF EXISTS sessions_access_token_jti_length;
ALTER TABLE identity.sessions
    ADD CONSTRAINT sessions_access_token_jti_length
        CHECK (char_length(access_token_jti) BETWEEN 1 AND 255) NOT VALID;
ALTER TABLE identity.users DROP CONSTRAINT IF EXISTS users_timezone_fkey;
ALTER TABLE identity.users
    ADD CONSTRAINT users_timezone_fkey FOREIGN KEY (timezone)
        REFERENCES identity.time_zones (name) ON UPDATE RESTRICT ON DELETE RESTRICT NOT VALID;
ALTER TABLE identity.users DROP CONSTRAINT IF EXISTS users_tax_number_valid;
ALTER TABLE identity.users
    ADD CONSTRAINT users_tax_number_valid
        CHECK ((tax_number IS NULL AND tax_number_kind IS NULL)
               OR identity.tax_number_is_valid(tax_number_kind, tax_number)) NOT VALID;
ALTER TABLE identity.users DROP CONSTRAINT IF EXISTS users_company_tax_office_length;
ALTER TABLE identity.users
    ADD CONSTRAINT users_company_tax_office_length
        CHECK (char_length(btrim(company_tax_office)) BETWEEN 1 AND 100) NOT VALID;
ALTER TABLE identity.users DROP CONSTRAINT IF EXISTS users_company_name_length;
ALTER TABLE identity.users
    ADD CONSTRAINT users_company_name_length
        CHECK (char_length(btrim(company_name)) BETWEEN 1 AND 255) NOT VALID;
ALTER TABLE identity.organizations DROP CONSTRAINT IF EXISTS organizations_default_timezone_fkey;
ALTER TABLE identity.organizations
    ADD CONSTRAINT organizations_default_timezone_fkey FOREIGN KEY (default_timezone)
        REFERENCES identity.time_zones (name) ON UPDATE RESTRICT ON DELETE RESTRICT NOT VALID;
DROP INDEX CONCURRENTLY IF EXISTS identity.sessions_access_token_jti_key;
DROP INDEX CONCURRENTLY IF EXISTS identity.idx_users_role;
