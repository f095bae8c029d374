-- groundwork:no-transaction
-- Why: the indexes of 20261206200000_identity_cad_platform, built without blocking
-- writes: users by platform role (seed 001's idx_users_role) and sessions by access
-- token JTI, unique so that a JTI names one session.
CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_users_role ON identity.users (role);
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS sessions_access_token_jti_key
    ON identity.sessions (access_token_jti);
