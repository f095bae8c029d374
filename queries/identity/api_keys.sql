--: ApiKey(created_by?, rate_limit_per_minute?, last_used_at?, expires_at?, revoked_at?)

--- Stores the display prefix and the SHA-256 of the key, never the key.
--! api_key_create (created_by?, rate_limit_per_minute?, expires_at?) : ApiKey
INSERT INTO identity.api_keys (created_by, name, key_prefix, key_hash, scopes, rate_limit_per_minute,
                               expires_at)
VALUES (:created_by, :name, :key_prefix, :key_hash, :scopes, :rate_limit_per_minute, :expires_at)
RETURNING id, organization_id, created_by, name, key_prefix, scopes, rate_limit_per_minute,
          usage_count, last_used_at, expires_at, revoked_at, created_at, updated_at;

--- By the presented key's hash, before the tenant is known; records the use. No row:
--- unknown, revoked or expired.
--! api_key_authenticate : (rate_limit_per_minute?)
SELECT api_key_id, organization_id, scopes, rate_limit_per_minute
FROM identity.api_key_authenticate(:key_hash);

--! api_key_get : ApiKey
SELECT id, organization_id, created_by, name, key_prefix, scopes, rate_limit_per_minute,
       usage_count, last_used_at, expires_at, revoked_at, created_at, updated_at
FROM identity.api_keys
WHERE organization_id = identity.current_org_id() AND id = :id;

--- Keyset pagination by id within the current organization.
--! api_key_list (after_id?) : ApiKey
SELECT id, organization_id, created_by, name, key_prefix, scopes, rate_limit_per_minute,
       usage_count, last_used_at, expires_at, revoked_at, created_at, updated_at
FROM identity.api_keys
WHERE organization_id = identity.current_org_id()
  AND (:after_id::uuid IS NULL OR id > :after_id)
ORDER BY id
LIMIT :limit;

--- Idempotent: revoking a revoked key keeps its first revocation time.
--! api_key_revoke
UPDATE identity.api_keys SET revoked_at = COALESCE(revoked_at, now())
WHERE organization_id = identity.current_org_id() AND id = :id;
