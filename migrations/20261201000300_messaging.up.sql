-- Why: a reliable outbox (priority 0-10, retries with exponential backoff, dead
-- letters, partition keys) and idempotency keys with cached responses, both
-- tenant-owned and written inside the caller's transaction (docs/REQUIREMENTS.md,
-- "messaging").
--
-- * The application inserts only the business columns of a message (it cannot choose
--   ids or delivery state); the relay role (groundwork_relay) reads and updates
--   delivery state across tenants.
-- * max_attempts is 1 to 25, a payload at most 256 KiB, headers an object of at most
--   8 KiB, a partition key 1 to 200 characters. Partition order is per (organization,
--   partition key), so one tenant's undeliverable message never holds up another's.
-- * Idempotency keys: the application writes only key, request hash and expiry, then
--   the response; a request hash is 1 to 64 bytes, a response at most 1 MiB.

CREATE SCHEMA messaging;

CREATE TYPE messaging.outbox_status AS ENUM ('pending', 'delivered', 'dead');
CREATE TYPE messaging.idempotency_status AS ENUM ('in_progress', 'completed');

CREATE TABLE messaging.outbox_messages (
    id bigint GENERATED ALWAYS AS IDENTITY,
    message_id uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL DEFAULT identity.current_org_id()
        CONSTRAINT outbox_messages_organization_id_fkey
            REFERENCES identity.organizations (id) ON DELETE RESTRICT,
    topic text NOT NULL
        CONSTRAINT outbox_messages_topic_length CHECK (char_length(topic) BETWEEN 1 AND 200),
    -- Messages with the same partition key are delivered in id order.
    partition_key text
        CONSTRAINT outbox_messages_partition_key_length
            CHECK (char_length(partition_key) BETWEEN 1 AND 200),
    payload jsonb NOT NULL
        CONSTRAINT outbox_messages_payload_size CHECK (pg_column_size(payload) <= 262144),
    headers jsonb NOT NULL DEFAULT '{}'::jsonb
        CONSTRAINT outbox_messages_headers_object
            CHECK (jsonb_typeof(headers) = 'object' AND pg_column_size(headers) <= 8192),
    priority smallint NOT NULL DEFAULT 5
        CONSTRAINT outbox_messages_priority_range CHECK (priority BETWEEN 0 AND 10),
    status messaging.outbox_status NOT NULL DEFAULT 'pending',
    attempts integer NOT NULL DEFAULT 0
        CONSTRAINT outbox_messages_attempts_nonnegative CHECK (attempts >= 0),
    max_attempts integer NOT NULL DEFAULT 10
        CONSTRAINT outbox_messages_max_attempts_range CHECK (max_attempts BETWEEN 1 AND 25),
    available_at timestamptz NOT NULL DEFAULT now(),
    locked_until timestamptz,
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz,
    dead_at timestamptz,
    CONSTRAINT outbox_messages_pkey PRIMARY KEY (organization_id, id),
    -- Global by nature: a consumer deduplicates deliveries by message id.
    CONSTRAINT outbox_messages_message_id_key UNIQUE (message_id),
    CONSTRAINT outbox_messages_state CHECK (
        (status = 'delivered') = (delivered_at IS NOT NULL)
        AND (status = 'dead') = (dead_at IS NOT NULL))
);

CREATE INDEX outbox_messages_pending_idx
    ON messaging.outbox_messages (priority DESC, id) WHERE status = 'pending';
CREATE INDEX outbox_messages_partition_pending_idx
    ON messaging.outbox_messages (organization_id, partition_key, id) WHERE status = 'pending';
CREATE INDEX outbox_messages_dead_idx ON messaging.outbox_messages (id) WHERE status = 'dead';

CREATE TABLE messaging.idempotency_keys (
    organization_id uuid NOT NULL DEFAULT identity.current_org_id()
        CONSTRAINT idempotency_keys_organization_id_fkey
            REFERENCES identity.organizations (id) ON DELETE CASCADE,
    key text NOT NULL
        CONSTRAINT idempotency_keys_key_length CHECK (char_length(key) BETWEEN 1 AND 255),
    request_hash bytea NOT NULL
        CONSTRAINT idempotency_keys_request_hash_length
            CHECK (octet_length(request_hash) BETWEEN 1 AND 64),
    status messaging.idempotency_status NOT NULL DEFAULT 'in_progress',
    response jsonb
        CONSTRAINT idempotency_keys_response_size CHECK (pg_column_size(response) <= 1048576),
    created_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    expires_at timestamptz NOT NULL,
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (organization_id, key),
    CONSTRAINT idempotency_keys_completed_has_response
        CHECK ((status = 'completed') = (completed_at IS NOT NULL)),
    CONSTRAINT idempotency_keys_expires_after_creation CHECK (expires_at > created_at)
);

CREATE INDEX idempotency_keys_expires_at_idx ON messaging.idempotency_keys (expires_at);

-- Row-level security: the current organization; the relay delivers every tenant's
-- messages.
ALTER TABLE messaging.outbox_messages ENABLE ROW LEVEL SECURITY;
CREATE POLICY outbox_messages_tenant ON messaging.outbox_messages
    FOR ALL TO groundwork_app, groundwork_readonly
    USING (organization_id = identity.current_org_id())
    WITH CHECK (organization_id = identity.current_org_id());
CREATE POLICY outbox_messages_relay ON messaging.outbox_messages
    FOR ALL TO groundwork_relay
    USING (true)
    WITH CHECK (true);

ALTER TABLE messaging.idempotency_keys ENABLE ROW LEVEL SECURITY;
CREATE POLICY idempotency_keys_tenant ON messaging.idempotency_keys
    FOR ALL TO groundwork_app, groundwork_readonly
    USING (organization_id = identity.current_org_id())
    WITH CHECK (organization_id = identity.current_org_id());

SELECT public.groundwork_set_owner('messaging', 'groundwork_owner');

GRANT USAGE ON SCHEMA messaging TO groundwork_app, groundwork_readonly, groundwork_relay;
GRANT SELECT ON messaging.outbox_messages, messaging.idempotency_keys TO groundwork_readonly;

GRANT SELECT ON messaging.outbox_messages TO groundwork_app;
GRANT INSERT (topic, partition_key, payload, headers, priority, max_attempts)
    ON messaging.outbox_messages TO groundwork_app;
GRANT SELECT, DELETE ON messaging.outbox_messages TO groundwork_relay;
GRANT UPDATE (status, attempts, available_at, locked_until, last_error, delivered_at, dead_at)
    ON messaging.outbox_messages TO groundwork_relay;

GRANT SELECT, DELETE ON messaging.idempotency_keys TO groundwork_app;
GRANT INSERT (key, request_hash, expires_at) ON messaging.idempotency_keys TO groundwork_app;
GRANT UPDATE (status, response, completed_at) ON messaging.idempotency_keys TO groundwork_app;
