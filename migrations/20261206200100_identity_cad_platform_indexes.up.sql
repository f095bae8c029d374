-- groundwork:no-transaction
-- Why: finishes 20261206200000_identity_cad_platform without blocking writes: users by
-- platform role (seed 001's idx_users_role) and sessions by access-token JTI (unique,
-- so that a JTI names one session), built concurrently; then the constraints added
-- NOT VALID are validated, which reads the tables under a lock that lets writes go on.
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_users_role ON identity.users (role);
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS sessions_access_token_jti_key
    ON identity.sessions (access_token_jti);
ALTER TABLE identity.organizations VALIDATE CONSTRAINT organizations_default_timezone_fkey;
ALTER TABLE identity.users VALIDATE CONSTRAINT users_company_name_length;
ALTER TABLE identity.users VALIDATE CONSTRAINT users_company_tax_office_length;
ALTER TABLE identity.users VALIDATE CONSTRAINT users_tax_number_valid;
ALTER TABLE identity.users VALIDATE CONSTRAINT users_timezone_fkey;
ALTER TABLE identity.sessions VALIDATE CONSTRAINT sessions_access_token_jti_length;
