--: Session(device_fingerprint?, ip_address?, user_agent?, revoked_at?)

--- Stores only the SHA-256 of the refresh token.
--! session_create (device_fingerprint?, ip_address?, user_agent?) : Session
INSERT INTO identity.sessions (user_id, refresh_token_hash, device_fingerprint, ip_address,
                               user_agent, expires_at)
VALUES (:user_id, :refresh_token_hash, :device_fingerprint, :ip_address, :user_agent,
        now() + make_interval(secs => :valid_seconds))
RETURNING id, user_id, device_fingerprint, ip_address, user_agent, expires_at, last_used_at,
          revoked_at, created_at;

--- By the presented token's hash, before the user is known; the old token stops
--- working. No row: unknown, revoked or expired.
--! session_rotate
SELECT session_id, user_id, expires_at
FROM identity.session_rotate(:old_token_hash, :new_token_hash,
                             now() + make_interval(secs => :valid_seconds));

--! session_get : Session
SELECT id, user_id, device_fingerprint, ip_address, user_agent, expires_at, last_used_at,
       revoked_at, created_at
FROM identity.sessions
WHERE id = :id;

--! session_list_active_by_user : Session
SELECT id, user_id, device_fingerprint, ip_address, user_agent, expires_at, last_used_at,
       revoked_at, created_at
FROM identity.sessions
WHERE user_id = :user_id AND revoked_at IS NULL AND expires_at > now()
ORDER BY created_at, id;

--- Idempotent: revoking a revoked session keeps its first revocation time.
--! session_revoke
UPDATE identity.sessions SET revoked_at = COALESCE(revoked_at, now()) WHERE id = :id;

--! session_revoke_all_for_user
UPDATE identity.sessions SET revoked_at = now()
WHERE user_id = :user_id AND revoked_at IS NULL;

-- plan: allow-seq-scan because it is periodic maintenance; revoked_at has no index of its own
--- Maintenance (runs as the owner): deletes sessions expired or revoked more than
--- retention_seconds ago.
--! session_delete_expired
DELETE FROM identity.sessions
WHERE expires_at < now() - make_interval(secs => :retention_seconds)
   OR revoked_at < now() - make_interval(secs => :retention_seconds);

--- Records the JTI of the access token just issued for the session (each refresh issues
--- a new one); unique across sessions.
--! session_access_token_jti_set
UPDATE identity.sessions SET access_token_jti = :jti
WHERE id = :id AND revoked_at IS NULL;

--- Whether an access token may still be honoured: its session is the current user's, not
--- revoked and not expired. False for an unknown JTI.
--! session_access_token_is_live
SELECT EXISTS (SELECT FROM identity.sessions
               WHERE access_token_jti = :jti AND revoked_at IS NULL AND expires_at > now())
    AS live;
