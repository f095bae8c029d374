-- Why: the application role could insert outbox rows with OVERRIDING SYSTEM VALUE
-- (choosing ids, so that other tenants' enqueues failed on the primary key) and any
-- delivery state, choose up to 2^31-1 attempts and payloads of any size; and
-- partition order was kept per partition key across all tenants, so one tenant's
-- undeliverable message held up another tenant's partition of the same name.
--
-- * The application inserts only the business columns of a message; the relay role
--   (groundwork_relay) reads and updates delivery state across tenants.
-- * max_attempts is 1 to 25, a payload at most 256 KiB, headers an object of at most
--   8 KiB, a partition key 1 to 200 characters.
-- * Partition order is per (organization, partition key).
-- * Idempotency keys: the application writes only key, request hash and expiry, then
--   the response; a request hash is 1 to 64 bytes, a response at most 1 MiB.

REVOKE INSERT ON messaging.outbox_messages FROM groundwork_app;
GRANT INSERT (topic, partition_key, payload, headers, priority, max_attempts)
    ON messaging.outbox_messages TO groundwork_app;

ALTER TABLE messaging.outbox_messages
    DROP CONSTRAINT outbox_messages_max_attempts_positive,
    ADD CONSTRAINT outbox_messages_max_attempts_range CHECK (max_attempts BETWEEN 1 AND 25),
    ADD CONSTRAINT outbox_messages_payload_size CHECK (pg_column_size(payload) <= 262144),
    ADD CONSTRAINT outbox_messages_headers_object
        CHECK (jsonb_typeof(headers) = 'object' AND pg_column_size(headers) <= 8192),
    ADD CONSTRAINT outbox_messages_partition_key_length
        CHECK (char_length(partition_key) BETWEEN 1 AND 200);

DROP INDEX messaging.outbox_messages_partition_pending_idx;
CREATE INDEX outbox_messages_partition_pending_idx
    ON messaging.outbox_messages (organization_id, partition_key, id) WHERE status = 'pending';

-- The relay delivers every tenant's messages.
CREATE POLICY outbox_messages_relay ON messaging.outbox_messages
    FOR ALL TO groundwork_relay
    USING (true)
    WITH CHECK (true);
GRANT USAGE ON SCHEMA messaging TO groundwork_relay;
GRANT SELECT, DELETE ON messaging.outbox_messages TO groundwork_relay;
GRANT UPDATE (status, attempts, available_at, locked_until, last_error, delivered_at, dead_at)
    ON messaging.outbox_messages TO groundwork_relay;

REVOKE INSERT, UPDATE ON messaging.idempotency_keys FROM groundwork_app;
GRANT INSERT (key, request_hash, expires_at) ON messaging.idempotency_keys TO groundwork_app;
GRANT UPDATE (status, response, completed_at) ON messaging.idempotency_keys TO groundwork_app;

ALTER TABLE messaging.idempotency_keys
    ADD CONSTRAINT idempotency_keys_request_hash_length
        CHECK (octet_length(request_hash) BETWEEN 1 AND 64),
    ADD CONSTRAINT idempotency_keys_response_size CHECK (pg_column_size(response) <= 1048576);
