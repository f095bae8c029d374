-- groundwork:no-transaction
-- Why: undoes 20261206200100_identity_cad_platform_indexes.
DROP INDEX CONCURRENTLY IF EXISTS identity.sessions_access_token_jti_key;
DROP INDEX CONCURRENTLY IF EXISTS identity.idx_users_role;
