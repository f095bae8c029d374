-- Why: seed 002's reliable outbox (priority 0-10, retries with exponential backoff,
-- dead letters, partition keys) and idempotency keys with cached responses, both
-- tenant-owned and written inside the caller's transaction.

CREATE SCHEMA messaging;

CREATE TYPE messaging.outbox_status AS ENUM ('pending', 'delivered', 'dead');

CREATE TABLE messaging.outbox_messages (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL DEFAULT identity.current_org_id()
        CONSTRAINT outbox_messages_organization_id_fkey
            REFERENCES identity.organizations (id) ON DELETE RESTRICT,
    topic text NOT NULL
        CONSTRAINT outbox_messages_topic_length CHECK (char_length(topic) BETWEEN 1 AND 200),
    -- Messages with the same partition key are delivered in id order.
    partition_key text,
    payload jsonb NOT NULL,
    headers jsonb NOT NULL DEFAULT '{}'::jsonb,
    priority smallint NOT NULL DEFAULT 5
        CONSTRAINT outbox_messages_priority_range CHECK (priority BETWEEN 0 AND 10),
    status messaging.outbox_status NOT NULL DEFAULT 'pending',
    attempts integer NOT NULL DEFAULT 0
        CONSTRAINT outbox_messages_attempts_nonnegative CHECK (attempts >= 0),
    max_attempts integer NOT NULL DEFAULT 10
        CONSTRAINT outbox_messages_max_attempts_positive CHECK (max_attempts > 0),
    available_at timestamptz NOT NULL DEFAULT now(),
    locked_until timestamptz,
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz,
    dead_at timestamptz,
    CONSTRAINT outbox_messages_message_id_key UNIQUE (message_id),
    CONSTRAINT outbox_messages_state CHECK (
        (status = 'delivered') = (delivered_at IS NOT NULL)
        AND (status = 'dead') = (dead_at IS NOT NULL))
);

CREATE INDEX outbox_messages_pending_idx
    ON messaging.outbox_messages (priority DESC, id) WHERE status = 'pending';
CREATE INDEX outbox_messages_partition_pending_idx
    ON messaging.outbox_messages (partition_key, id) WHERE status = 'pending';
CREATE INDEX outbox_messages_dead_idx ON messaging.outbox_messages (id) WHERE status = 'dead';

CREATE TYPE messaging.idempotency_status AS ENUM ('in_progress', 'completed');

CREATE TABLE messaging.idempotency_keys (
    organization_id uuid NOT NULL DEFAULT identity.current_org_id()
        CONSTRAINT idempotency_keys_organization_id_fkey
            REFERENCES identity.organizations (id) ON DELETE CASCADE,
    key text NOT NULL
        CONSTRAINT idempotency_keys_key_length CHECK (char_length(key) BETWEEN 1 AND 255),
    request_hash bytea NOT NULL,
    status messaging.idempotency_status NOT NULL DEFAULT 'in_progress',
    response jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    expires_at timestamptz NOT NULL,
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (organization_id, key),
    CONSTRAINT idempotency_keys_completed_has_response
        CHECK ((status = 'completed') = (completed_at IS NOT NULL)),
    CONSTRAINT idempotency_keys_expires_after_creation CHECK (expires_at > created_at)
);

CREATE INDEX idempotency_keys_expires_at_idx ON messaging.idempotency_keys (expires_at);

ALTER TABLE messaging.outbox_messages ENABLE ROW LEVEL SECURITY;
CREATE POLICY outbox_messages_tenant ON messaging.outbox_messages
    FOR ALL TO groundwork_app, groundwork_readonly
    USING (organization_id = identity.current_org_id())
    WITH CHECK (organization_id = identity.current_org_id());

ALTER TABLE messaging.idempotency_keys ENABLE ROW LEVEL SECURITY;
CREATE POLICY idempotency_keys_tenant ON messaging.idempotency_keys
    FOR ALL TO groundwork_app, groundwork_readonly
    USING (organization_id = identity.current_org_id())
    WITH CHECK (organization_id = identity.current_org_id());

GRANT USAGE ON SCHEMA messaging TO groundwork_app, groundwork_readonly;
GRANT SELECT, INSERT ON messaging.outbox_messages TO groundwork_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON messaging.idempotency_keys TO groundwork_app;
GRANT SELECT ON messaging.outbox_messages, messaging.idempotency_keys TO groundwork_readonly;
