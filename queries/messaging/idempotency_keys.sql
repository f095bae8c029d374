--: IdempotencyKey(response?, completed_at?)

--- Claims the key for this transaction. A concurrent claim of the same key waits
--- here until this transaction ends; no row back means the key already exists.
--! idempotency_key_claim : IdempotencyKey
INSERT INTO messaging.idempotency_keys (key, request_hash, expires_at)
VALUES (:key, :request_hash, now() + make_interval(secs => :ttl_seconds))
ON CONFLICT (organization_id, key) DO NOTHING
RETURNING organization_id, key, request_hash, status, response, created_at, completed_at, expires_at;

--! idempotency_key_get : IdempotencyKey
SELECT organization_id, key, request_hash, status, response, created_at, completed_at, expires_at
FROM messaging.idempotency_keys
WHERE organization_id = identity.current_org_id() AND key = :key;

--! idempotency_key_complete
UPDATE messaging.idempotency_keys
SET status = 'completed', response = :response, completed_at = now()
WHERE organization_id = identity.current_org_id() AND key = :key;

--- Maintenance across tenants (the owner): deletes expired keys.
--! idempotency_key_delete_expired
DELETE FROM messaging.idempotency_keys WHERE expires_at < now();
