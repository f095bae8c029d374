--: OutboxMessage(partition_key?, locked_until?, last_error?, delivered_at?, dead_at?)

--- In the caller's transaction, so the message commits with the business change.
--! outbox_message_enqueue (partition_key?) : OutboxMessage
INSERT INTO messaging.outbox_messages (topic, partition_key, payload, headers, priority, max_attempts)
VALUES (:topic, :partition_key, :payload, :headers, :priority, :max_attempts)
RETURNING id, message_id, organization_id, topic, partition_key, payload, headers, priority,
          status, attempts, max_attempts, available_at, locked_until, last_error, created_at,
          delivered_at, dead_at;

-- plan: allow-seq-scan because a planner that sees many pending messages (as in a filled test database) scans; in use few are pending and outbox_messages_pending_idx serves the claim
--- The relay (groundwork_relay, every tenant). Locks with FOR UPDATE SKIP LOCKED and
--- leases for lease_seconds. Orders by priority, then id; claims only the oldest
--- pending message of each (organization, partition key), so a partition is delivered
--- in order, one message at a time, and never waits for another tenant's.
--! outbox_message_claim : OutboxMessage
WITH candidates AS (
    SELECT m.organization_id, m.id
    FROM messaging.outbox_messages m
    WHERE m.status = 'pending'
      AND m.available_at <= now()
      AND (m.locked_until IS NULL OR m.locked_until < now())
      AND NOT EXISTS (
          SELECT FROM messaging.outbox_messages earlier
          WHERE earlier.organization_id = m.organization_id
            AND earlier.partition_key = m.partition_key
            AND earlier.status = 'pending'
            AND earlier.id < m.id)
    ORDER BY m.priority DESC, m.id
    LIMIT :batch_size
    FOR UPDATE SKIP LOCKED
)
UPDATE messaging.outbox_messages m
SET locked_until = now() + make_interval(secs => :lease_seconds),
    attempts = m.attempts + 1
FROM candidates c
WHERE m.organization_id = c.organization_id AND m.id = c.id
RETURNING m.id, m.message_id, m.organization_id, m.topic, m.partition_key, m.payload,
          m.headers, m.priority, m.status, m.attempts, m.max_attempts, m.available_at,
          m.locked_until, m.last_error, m.created_at, m.delivered_at, m.dead_at;

--- The relay, by the messages' keys (organization_ids[i], ids[i]). Idempotent.
--! outbox_message_mark_delivered
UPDATE messaging.outbox_messages m
SET status = 'delivered', delivered_at = now(), locked_until = NULL
FROM unnest(:organization_ids::uuid[], :ids::bigint[]) AS k(organization_id, id)
WHERE m.organization_id = k.organization_id AND m.id = k.id AND m.status = 'pending';

--- The relay. Dead letter after max_attempts; otherwise back off exponentially
--- (base * 2^(attempts-1), at most max_backoff) with up to 50% random jitter.
--! outbox_message_mark_failed
UPDATE messaging.outbox_messages
SET last_error = :error,
    locked_until = NULL,
    status = CASE WHEN attempts >= max_attempts THEN 'dead'::messaging.outbox_status ELSE 'pending' END,
    dead_at = CASE WHEN attempts >= max_attempts THEN now() END,
    available_at = now() + make_interval(secs =>
        least(:max_backoff_seconds::float8, :base_backoff_seconds::float8 * power(2, attempts - 1))
        * (0.5 + random() / 2))
WHERE organization_id = :organization_id AND id = :id AND status = 'pending'
RETURNING status, available_at;

--- The relay: puts dead letters back in line with fresh attempts.
--! outbox_message_redrive
UPDATE messaging.outbox_messages
SET status = 'pending', attempts = 0, dead_at = NULL, available_at = now(), locked_until = NULL
WHERE status = 'dead' AND (cardinality(:ids::bigint[]) = 0 OR id = ANY(:ids));

--! outbox_message_get : OutboxMessage
SELECT id, message_id, organization_id, topic, partition_key, payload, headers, priority, status,
       attempts, max_attempts, available_at, locked_until, last_error, created_at, delivered_at,
       dead_at
FROM messaging.outbox_messages
WHERE organization_id = identity.current_org_id() AND id = :id;

--- The relay: every tenant's messages.
--! outbox_message_count_by_status
SELECT status, count(*) AS messages
FROM messaging.outbox_messages
GROUP BY status
ORDER BY status;

-- plan: allow-seq-scan because it is periodic maintenance that visits most delivered rows anyway
--- The relay's maintenance: deletes delivered messages older than retention_seconds.
--! outbox_message_delete_delivered
DELETE FROM messaging.outbox_messages
WHERE status = 'delivered' AND delivered_at < now() - make_interval(secs => :retention_seconds);

--- The built-in NOTIFY publisher.
--! outbox_message_notify
SELECT pg_notify(:channel, :payload) IS NULL AS sent;
