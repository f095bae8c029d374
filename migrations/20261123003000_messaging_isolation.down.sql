-- Why: undoes 20261123003000_messaging_isolation.

ALTER TABLE messaging.idempotency_keys
    DROP CONSTRAINT idempotency_keys_request_hash_length,
    DROP CONSTRAINT idempotency_keys_response_size;

REVOKE INSERT, UPDATE ON messaging.idempotency_keys FROM groundwork_app;
GRANT INSERT, UPDATE ON messaging.idempotency_keys TO groundwork_app;

REVOKE ALL ON messaging.outbox_messages FROM groundwork_relay;
REVOKE USAGE ON SCHEMA messaging FROM groundwork_relay;
DROP POLICY outbox_messages_relay ON messaging.outbox_messages;

DROP INDEX messaging.outbox_messages_partition_pending_idx;
CREATE INDEX outbox_messages_partition_pending_idx
    ON messaging.outbox_messages (partition_key, id) WHERE status = 'pending';

ALTER TABLE messaging.outbox_messages
    DROP CONSTRAINT outbox_messages_max_attempts_range,
    DROP CONSTRAINT outbox_messages_payload_size,
    DROP CONSTRAINT outbox_messages_headers_object,
    DROP CONSTRAINT outbox_messages_partition_key_length,
    ADD CONSTRAINT outbox_messages_max_attempts_positive CHECK (max_attempts > 0);

REVOKE INSERT ON messaging.outbox_messages FROM groundwork_app;
GRANT INSERT ON messaging.outbox_messages TO groundwork_app;
