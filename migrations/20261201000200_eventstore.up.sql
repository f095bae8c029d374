-- Why: one event log per tenant for both Dynamic Consistency Boundary events (type and
-- tags) and per-aggregate streams (aggregate type, id and version), with an append and
-- read API callable from SQL by any client (docs/REQUIREMENTS.md, "eventstore").
--
-- Writing. append() and append_to_stream() are the only way into the log: they run as
-- the schema owner and the application role cannot insert rows, so no writer bypasses
-- the locks below. An append is limited in events (1,000), size (8 MiB, 1 MiB per
-- event), tags (64 per event, 1 to 256 bytes each) and query size (SQLSTATE 54000 when
-- over a limit, 22023 when malformed). An append checks its JSON with a few JSON paths,
-- takes its lock keys in one statement, probes its condition with one statement per
-- query item, and inserts the events and their eventstore.event_tags rows in one more.
--
-- Consistency of DCB decisions. Each tenant has its own advisory-lock space (a number
-- from eventstore.tenant_keys): a key is the space in the high 32 bits and a hash of a
-- lock name in the low 32. An event carries the names (its type, any tag), (any type,
-- any tag) and (any type, tag) for each of its tags. A query item names (any type, its
-- first tag) when it has tags, (type, any tag) for each of its types when it has types
-- only, and (any type, any tag) when it has neither: every event matching the item
-- carries that name. An append takes EXCLUSIVE locks on the names of its condition and
-- SHARED locks on those of its events, in one sorted acquisition, so a conflicting
-- writer waits for the deciding transaction to end (or the other way round). Writers
-- whose events match no one's condition only share locks and never wait for each
-- other; two decisions about one tag wait for each other whatever their types. A
-- transaction takes at most 32 keys per tenant before it escalates to its tenant's
-- space key.
--
-- Ordering. Positions come from a sequence when an event is inserted, so two
-- transactions can commit out of position order. Before drawing positions, an
-- appending transaction holds a shared lock (space, bound) whose bound is a lower
-- bound of the positions it will draw, until it ends. A reader first computes its
-- tenant's horizon: the lowest bound still held by one of the tenant's in-flight
-- appends, capped by the sequence's value + 1; it then reads, in a newer snapshot,
-- only events below the horizon. Every event below the horizon was either committed
-- before that snapshot or never will be, so a reader that has read up to P never later
-- finds a new event at a position <= P, and waits only for its own tenant's appends.
--
-- Reading. A read is a fixed set of statements whose plans are made once per
-- connection and do not depend on statistics: each item with tags walks event_tags by
-- (organization, first tag, position), checking the other tags on the event; an item
-- with types only walks the log by (organization, type, position); an item with
-- neither, the log by (organization, position). Each event found is then read from the
-- log by its full key (organization, type, position). The usual read, one item with
-- tags, is one statement (tag_events).
--
-- Notifications. Each tenant has its own channel with an unguessable name, given only
-- to that tenant (notification_channel()); an append notifies it at commit with an
-- empty payload.

CREATE SCHEMA eventstore;

-- The single-column rules of the log are domains: PostgreSQL reads a table CHECK
-- constraint from the catalog and plans it again for every INSERT statement, while a
-- domain's constraints are compiled once per session.
CREATE DOMAIN eventstore.event_type AS text
    CONSTRAINT event_type_format
        CHECK (VALUE ~ '^[A-Za-z][A-Za-z0-9_.:-]*$' AND octet_length(VALUE) <= 200);
COMMENT ON DOMAIN eventstore.event_type IS
    'An event type name: a letter, then letters, digits and _ . : -, at most 200 bytes';

CREATE DOMAIN eventstore.json_object AS jsonb
    CONSTRAINT json_object CHECK (jsonb_typeof(VALUE) = 'object');
COMMENT ON DOMAIN eventstore.json_object IS 'A JSON object';

CREATE DOMAIN eventstore.stream_version AS integer
    CONSTRAINT stream_version_positive CHECK (VALUE > 0);
COMMENT ON DOMAIN eventstore.stream_version IS 'A version within a stream: 1, 2, 3, ...';

CREATE SEQUENCE eventstore.events_position_seq AS bigint;

CREATE TABLE eventstore.events (
    position bigint NOT NULL DEFAULT nextval('eventstore.events_position_seq'),
    event_id uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL DEFAULT identity.current_org_id()
        CONSTRAINT events_organization_id_fkey
            REFERENCES identity.organizations (id) ON DELETE RESTRICT,
    type eventstore.event_type NOT NULL,
    tags text[] NOT NULL DEFAULT '{}',
    data jsonb NOT NULL,
    metadata eventstore.json_object NOT NULL DEFAULT '{}'::jsonb,
    aggregate_type text,
    aggregate_id uuid,
    aggregate_version eventstore.stream_version,
    correlation_id uuid,
    causation_id uuid,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_pkey PRIMARY KEY (organization_id, position),
    -- Global by nature: an event's id names it across tenants.
    CONSTRAINT events_event_id_key UNIQUE (event_id),
    CONSTRAINT events_stream_complete
        CHECK (num_nonnulls(aggregate_type, aggregate_id, aggregate_version) IN (0, 3))
);

ALTER SEQUENCE eventstore.events_position_seq OWNED BY eventstore.events.position;

CREATE INDEX events_organization_id_type_position_idx
    ON eventstore.events (organization_id, type, position);
-- Streams are per tenant. Partial: only stream events are in it, and a lookup of an
-- event by its key cannot be planned as a walk of it (on a log too new to have
-- statistics, an index led by organization_id alone may look as cheap as the key).
CREATE UNIQUE INDEX events_stream_version_key
    ON eventstore.events (organization_id, aggregate_id, aggregate_version)
    WHERE aggregate_id IS NOT NULL;
CREATE INDEX events_tags_gin_idx ON eventstore.events USING gin (tags) WITH (fastupdate = off);
CREATE INDEX events_correlation_id_idx ON eventstore.events (correlation_id)
    WHERE correlation_id IS NOT NULL;

-- One row per (event, tag): a condition finds "an event with this tag after position
-- P" with one B-tree range probe, however many events the tag already has. The key
-- carries the event type, so that walking a tag is an index-only scan.
CREATE TABLE eventstore.event_tags (
    organization_id uuid NOT NULL,
    tag text NOT NULL,
    -- The event (eventstore.events.position). No foreign key: append() writes both
    -- rows in one statement, events are never deleted, and the check would cost as
    -- much as the row.
    position bigint NOT NULL,
    type text NOT NULL,
    CONSTRAINT event_tags_pkey PRIMARY KEY (organization_id, tag, position) INCLUDE (type)
);

COMMENT ON TABLE eventstore.event_tags IS
    'One row per (event, tag), written by append(): the index conditions are checked with';

-- A tenant's lock space and notification channel, made with the organization.
CREATE TABLE eventstore.tenant_keys (
    organization_id uuid PRIMARY KEY
        CONSTRAINT tenant_keys_organization_id_fkey
            REFERENCES identity.organizations (id) ON DELETE CASCADE,
    -- Both global by nature: a lock space and a channel name are server-wide.
    -- groundwork:lint allow prefer-bigint-over-int because pg_advisory_xact_lock(int, int) takes a 32-bit lock space
    lock_space integer GENERATED ALWAYS AS IDENTITY
        CONSTRAINT tenant_keys_lock_space_key UNIQUE,
    notify_channel text NOT NULL
        DEFAULT 'eventstore_' || replace(gen_random_uuid()::text, '-', '')
        CONSTRAINT tenant_keys_notify_channel_key UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE eventstore.tenant_keys IS
    'Per tenant: its advisory-lock space and its notification channel; read by the owner only';

-- Durable, named subscription checkpoints for event-store consumers.
CREATE TABLE eventstore.subscriptions (
    organization_id uuid NOT NULL DEFAULT identity.current_org_id()
        CONSTRAINT subscriptions_organization_id_fkey
            REFERENCES identity.organizations (id) ON DELETE CASCADE,
    name text NOT NULL
        CONSTRAINT subscriptions_name_length CHECK (char_length(name) BETWEEN 1 AND 200),
    position bigint NOT NULL DEFAULT 0
        CONSTRAINT subscriptions_position_nonnegative CHECK (position >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT subscriptions_pkey PRIMARY KEY (organization_id, name)
);

CREATE TRIGGER subscriptions_set_updated_at
    BEFORE UPDATE ON eventstore.subscriptions
    FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();

-- One element of an append() argument, as a record.
CREATE TYPE eventstore.event_input AS (type text, tags text[], data jsonb, metadata jsonb);

-- The tenant of an append, which must run in a READ COMMITTED transaction.
CREATE FUNCTION eventstore.require_tenant() RETURNS uuid
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    org uuid := identity.current_org_id();
BEGIN
    IF org IS NULL THEN
        RAISE EXCEPTION 'appending events needs a tenant: app.current_org_id is not set'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'appending events needs a READ COMMITTED transaction (conditions are checked against the latest commits)'
            USING ERRCODE = 'invalid_transaction_state';
    END IF;
    RETURN org;
END
$$;

-- Every organization gets its keys when it is created, so that no append ever waits
-- for another transaction's first append to commit the row.
CREATE FUNCTION eventstore.organization_keys() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, eventstore, pg_temp
AS $$
BEGIN
    INSERT INTO eventstore.tenant_keys (organization_id) VALUES (NEW.id)
    ON CONFLICT (organization_id) DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER organizations_event_store_keys
    AFTER INSERT ON identity.organizations
    FOR EACH ROW EXECUTE FUNCTION eventstore.organization_keys();

-- groundwork:lint allow lock-held-while-scanning because it runs with the initial schema, when identity.organizations has no rows yet
INSERT INTO eventstore.tenant_keys (organization_id)
SELECT id FROM identity.organizations ORDER BY created_at, id;

-- The tenant's lock space and channel. The row is made with the organization; this
-- makes it for an organization that somehow has none. Callers run as the owner.
CREATE FUNCTION eventstore.tenant_key(p_org uuid) RETURNS eventstore.tenant_keys
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    found_key eventstore.tenant_keys;
BEGIN
    SELECT * INTO found_key FROM eventstore.tenant_keys k WHERE k.organization_id = p_org;
    IF NOT FOUND THEN
        -- A concurrent first append of the same tenant waits here for the other
        -- transaction, then finds its row.
        INSERT INTO eventstore.tenant_keys (organization_id) VALUES (p_org)
        ON CONFLICT (organization_id) DO NOTHING
        RETURNING * INTO found_key;
        IF NOT FOUND THEN
            SELECT * INTO found_key FROM eventstore.tenant_keys k WHERE k.organization_id = p_org;
        END IF;
    END IF;
    RETURN found_key;
END
$$;

-- The size of a JSON value as the server holds it, uncompressed.
CREATE FUNCTION eventstore.json_size(p_value jsonb) RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT CASE WHEN pg_column_compression(p_value) IS NULL THEN pg_column_size(p_value)
                ELSE octet_length(p_value::text) END
$$;

-- Whether a JSON value is absent or an array of strings.
CREATE FUNCTION eventstore.is_string_array(p_value jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT p_value IS NULL
        OR (jsonb_typeof(p_value) = 'array'
            AND NOT jsonb_path_exists(p_value, 'strict $[*] ? (@.type() != "string")'))
$$;

-- Whether a JSON value is an event within the limits: an object with a "type"
-- string, at most 64 "tags" (strings), an object "metadata" if any, at most 1 MiB.
-- Tag lengths are checked where tags are expanded (lock_append).
CREATE FUNCTION eventstore.is_event(p_event jsonb) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN jsonb_typeof(p_event) <> 'object'
          OR jsonb_typeof(p_event -> 'type') IS DISTINCT FROM 'string'
          OR NOT eventstore.is_string_array(p_event -> 'tags') THEN false
        WHEN jsonb_array_length(coalesce(p_event -> 'tags', '[]')) > 64
          OR coalesce(jsonb_typeof(p_event -> 'metadata'), 'object') <> 'object' THEN false
        ELSE eventstore.json_size(p_event) <= 1048576
    END
$$;

-- Raises the precise error for an event that is_event() refused.
CREATE FUNCTION eventstore.raise_invalid_event(p_event jsonb, p_ordinal bigint)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF jsonb_typeof(p_event) <> 'object' THEN
        RAISE EXCEPTION 'event % is not a JSON object', p_ordinal
            USING ERRCODE = 'invalid_parameter_value';
    ELSIF jsonb_typeof(p_event -> 'type') IS DISTINCT FROM 'string' THEN
        RAISE EXCEPTION 'event % has no "type" string', p_ordinal
            USING ERRCODE = 'invalid_parameter_value';
    ELSIF NOT eventstore.is_string_array(p_event -> 'tags') THEN
        RAISE EXCEPTION 'event % has "tags" that are not an array of strings', p_ordinal
            USING ERRCODE = 'invalid_parameter_value';
    ELSIF jsonb_array_length(coalesce(p_event -> 'tags', '[]')) > 64 THEN
        RAISE EXCEPTION 'event % has % tags; an event has at most 64',
            p_ordinal, jsonb_array_length(p_event -> 'tags')
            USING ERRCODE = 'program_limit_exceeded';
    ELSIF coalesce(jsonb_typeof(p_event -> 'metadata'), 'object') <> 'object' THEN
        RAISE EXCEPTION 'event % has "metadata" that is not an object', p_ordinal
            USING ERRCODE = 'invalid_parameter_value';
    ELSE
        RAISE EXCEPTION 'event % is % bytes; an event is at most 1048576 bytes (1 MiB)',
            p_ordinal, eventstore.json_size(p_event)
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
END
$$;

-- A tag of an event: 1 to 256 bytes.
CREATE FUNCTION eventstore.valid_tag(p_tag text, p_ordinal bigint) RETURNS text
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF p_tag = '' THEN
        RAISE EXCEPTION 'event % has an empty tag', p_ordinal
            USING ERRCODE = 'invalid_parameter_value';
    ELSIF octet_length(p_tag) > 256 THEN
        RAISE EXCEPTION 'event % has a tag of % bytes; a tag is at most 256 bytes',
            p_ordinal, octet_length(p_tag)
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
    RETURN p_tag;
END
$$;

-- Whether a JSON value is a query item within the limits: an object whose "types" and
-- "tags", where present, are arrays of at most 64 strings.
CREATE FUNCTION eventstore.is_query_item(p_item jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN jsonb_typeof(p_item) <> 'object'
          OR NOT eventstore.is_string_array(p_item -> 'types')
          OR NOT eventstore.is_string_array(p_item -> 'tags') THEN false
        ELSE jsonb_array_length(coalesce(p_item -> 'types', '[]')) <= 64
         AND jsonb_array_length(coalesce(p_item -> 'tags', '[]')) <= 64
    END
$$;

-- Raises the precise error for a query item that is_query_item() refused.
CREATE FUNCTION eventstore.raise_invalid_query_item(p_item jsonb, p_ordinal bigint)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF jsonb_typeof(p_item) <> 'object' THEN
        RAISE EXCEPTION 'query item % is not a JSON object', p_ordinal
            USING ERRCODE = 'invalid_parameter_value';
    ELSIF NOT eventstore.is_string_array(p_item -> 'types')
       OR NOT eventstore.is_string_array(p_item -> 'tags') THEN
        RAISE EXCEPTION 'query item % has "types" or "tags" that are not arrays of strings', p_ordinal
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RAISE EXCEPTION 'query item % has more than 64 types or tags', p_ordinal
        USING ERRCODE = 'program_limit_exceeded';
END
$$;

-- Raises the precise error for a query that is not {"items": [...]} with at most 100
-- items and 64 KiB, or for its first item that is_query_item() refuses.
CREATE FUNCTION eventstore.check_query(p_query jsonb) RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF p_query IS NULL OR jsonb_typeof(p_query) <> 'object'
       OR jsonb_typeof(p_query -> 'items') IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'a query must be {"items": [{"types": [...], "tags": [...]}, ...]}'
            USING ERRCODE = 'invalid_parameter_value';
    ELSIF jsonb_array_length(p_query -> 'items') > 100 THEN
        RAISE EXCEPTION 'a query has % items; a query has at most 100',
            jsonb_array_length(p_query -> 'items')
            USING ERRCODE = 'program_limit_exceeded';
    ELSIF eventstore.json_size(p_query) > 65536 THEN
        RAISE EXCEPTION 'a query is % bytes; a query is at most 65536 bytes', eventstore.json_size(p_query)
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
    PERFORM CASE WHEN eventstore.is_query_item(i.item) THEN NULL
                 ELSE eventstore.raise_invalid_query_item(i.item, i.n) END
    FROM jsonb_array_elements(p_query -> 'items') WITH ORDINALITY i(item, n);
END
$$;

-- Whether p_query is surely a valid query: cheap JSON-path checks that pass every
-- valid query. check_query() refuses the others precisely (or lets them through).
CREATE FUNCTION eventstore.is_valid_query(p_query jsonb) RETURNS boolean
-- STABLE as json_size() is: a function inlined where it is called may not be declared
-- less volatile than what it calls.
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN jsonb_path_match(p_query, 'strict $.type() == "object" && $.items.type() == "array"
                 && $.items.size() <= 100 && !(exists($.items[*] ? (@.type() != "object")))', '{}', true) IS NOT TRUE
          OR eventstore.json_size(p_query) > 65536 THEN false
        ELSE NOT jsonb_path_exists(p_query, 'lax $.items[*] ? (
                 (exists(@.types) && !(@.types.type() == "array")) || @.types.size() > 64
                 || @.types[*].type() != "string"
                 || (exists(@.tags) && !(@.tags.type() == "array")) || @.tags.size() > 64
                 || @.tags[*].type() != "string")')
    END
$$;

-- Raises the precise error for an append beyond the limits or for its first event
-- that is not valid (shape, then tags in order); returns when every event is valid.
CREATE FUNCTION eventstore.check_events(p_events jsonb) RETURNS void
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF jsonb_typeof(p_events) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'events must be a JSON array of {"type", "tags", "data", "metadata"}'
            USING ERRCODE = 'invalid_parameter_value';
    ELSIF jsonb_array_length(p_events) = 0 THEN
        RAISE EXCEPTION 'events must not be empty' USING ERRCODE = 'invalid_parameter_value';
    ELSIF jsonb_array_length(p_events) > 1000 THEN
        RAISE EXCEPTION 'an append has % events; an append has at most 1000', jsonb_array_length(p_events)
            USING ERRCODE = 'program_limit_exceeded';
    ELSIF eventstore.json_size(p_events) > 8388608 THEN
        RAISE EXCEPTION 'an append is % bytes; an append is at most 8388608 bytes (8 MiB)',
            eventstore.json_size(p_events)
            USING ERRCODE = 'program_limit_exceeded';
    END IF;
    -- Per event: its shape first, then its tags in order.
    PERFORM CASE WHEN eventstore.is_event(e.event) THEN NULL
                 ELSE eventstore.raise_invalid_event(e.event, e.n) END,
            (SELECT count(eventstore.valid_tag(g.tag, e.n))
             FROM jsonb_array_elements_text(e.event -> 'tags') g(tag))
    FROM jsonb_array_elements(p_events) WITH ORDINALITY e(event, n);
END
$$;

-- The advisory key of a lock name in the lock space whose own key is p_space_key:
-- the space in the high 32 bits, a hash of the name in the low 32, never 0. A type t
-- names (t, any tag) as t || chr(31), a tag g (any type, g) as chr(31) || g.
CREATE FUNCTION eventstore.lock_key(p_space_key bigint, p_name text, p_is_type boolean)
RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT p_space_key | greatest(hashtext(CASE WHEN p_is_type THEN p_name || chr(31)
                                                ELSE chr(31) || p_name END)::bigint & 4294967295, 1)
$$;

-- The lock names a query's conditions take (see lock_append), as JSON arrays of
-- strings: types (a type t names (t, any tag)), those of its items without tags, and
-- '' (everything) when an item has neither types nor tags; tags (a tag g names (any
-- type, g)), the first tag of each item that has tags.
CREATE FUNCTION eventstore.query_type_names(p_query jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT jsonb_path_query_array(p_query, 'lax $.items[*] ? (!exists(@.tags[0])).types[*]')
        || CASE WHEN jsonb_path_exists(p_query, 'lax $.items[*] ? (!exists(@.tags[0]) && !exists(@.types[0]))')
                THEN '[""]'::jsonb ELSE '[]' END
$$;

CREATE FUNCTION eventstore.query_tag_names(p_query jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT coalesce(jsonb_path_query_array(p_query, 'lax $.items[*].tags[0]'), '[]')
$$;

-- Validates the events and the condition's query of an append and takes its DCB
-- locks in the tenant's lock space p_space, in one sorted acquisition: the space key
-- shared, then each key of the append, exclusive if the query (or p_exclusive_name)
-- names it, shared otherwise. Returns whether this is the transaction's first append
-- for the tenant (which then takes the position bound).
-- Valid appends pass cheap checks (JSON paths over the whole argument); anything else
-- is checked again by check_events() and check_query(), which raise its precise error.
CREATE FUNCTION eventstore.lock_append(
    p_space integer, p_events jsonb, p_query jsonb, p_exclusive_name text DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    state text := current_setting('eventstore.append_locks', true);
    taken integer := CASE WHEN split_part(state, ':', 1) = p_space::text
                          THEN split_part(state, ':', 2)::integer ELSE 0 END;
    -- A key is the space in the high 32 bits and a hash of a lock name in the low 32,
    -- never 0 (the space's own key).
    space_key bigint := p_space::bigint << 32;
    -- The events' tags, as a JSON array.
    tags jsonb := jsonb_path_query_array(p_events, 'lax $[*].tags[*]');
    query_types jsonb := CASE WHEN p_query IS NULL THEN '[]' ELSE eventstore.query_type_names(p_query) END;
    -- The lock names, a JSON array of strings, and where each of its runs ends.
    names jsonb;
    event_types_end integer;
    query_types_end integer;
    event_tags_end integer;
    key_count integer;
BEGIN
    -- Cheap checks that pass every valid append; anything else is checked again
    -- precisely, and refused with its error.
    IF (CASE WHEN jsonb_path_match(p_events, 'strict $.type() == "array" && $.size() >= 1 && $.size() <= 1000
                       && !(exists($[*] ? (@.type() != "object")))', '{}', true) IS NOT TRUE
              OR eventstore.json_size(p_events) > 1048576 THEN true
            ELSE jsonb_path_exists(p_events, 'lax $[*] ? (!(@.type.type() == "string")
                     || (exists(@.tags) && !(@.tags.type() == "array")) || @.tags.size() > 64
                     || @.tags[*].type() != "string" || @.tags[*] == ""
                     || (exists(@.metadata) && !(@.metadata.type() == "object")))') END) THEN
        PERFORM eventstore.check_events(p_events);
    END IF;
    IF p_query IS NOT NULL AND NOT eventstore.is_valid_query(p_query) THEN
        PERFORM eventstore.check_query(p_query);
    END IF;
    -- A tag is at most 256 bytes: surely so when all of them take no more as JSON.
    IF octet_length(tags::text) > 256 THEN
        IF (SELECT max(octet_length(t.tag)) > 256 FROM jsonb_array_elements_text(tags) t(tag)) THEN
            PERFORM eventstore.check_events(p_events);
        END IF;
    END IF;
    -- Lock names, in five runs: '' for the space's own key (shared); the events'
    -- types, one per event, and '' (shared); the query's types and '' (exclusive); the
    -- events' tags (shared); the query's tags and p_exclusive_name (exclusive). A type
    -- t names (t, any tag): t || chr(31); a tag g (any type, g): chr(31) || g; ''
    -- everything. A query item with tags locks its first tag, one with types only its
    -- types, one with neither everything.
    event_types_end := jsonb_array_length(p_events) + 2;
    query_types_end := event_types_end + jsonb_array_length(query_types);
    event_tags_end := query_types_end + jsonb_array_length(tags);
    names := '[""]' || jsonb_path_query_array(p_events, 'lax $[*].type') || '[""]' || query_types || tags
             || eventstore.query_tag_names(p_query) || coalesce(to_jsonb(p_exclusive_name), '[]');
    -- A transaction takes at most 32 keys per tenant: the append that would take
    -- more locks the space key exclusively instead (waiting for the tenant's other
    -- appends and holding off new ones until it ends), and so do later appends of
    -- the transaction. The count is kept in the transaction-local setting
    -- eventstore.append_locks ("<space>:<keys taken, -1 once exclusive>"); a key
    -- asked for twice counts twice.
    IF taken >= 0 AND jsonb_array_length(names) - 1 > 32 - taken THEN
        SELECT count(DISTINCT eventstore.lock_key(space_key, n.name, n.i <= query_types_end))
        INTO key_count
        FROM jsonb_array_elements_text(names) WITH ORDINALITY n(name, i)
        WHERE n.i > 1;
        IF taken + key_count > 32 THEN
            PERFORM pg_advisory_xact_lock(space_key), set_config('eventstore.append_locks', p_space || ':-1', true);
            taken := -1;
        END IF;
    END IF;
    IF taken >= 0 THEN
        -- The keys in ascending order, the space's own first, so that appends cannot
        -- deadlock each other; a key asked for both ways exclusively first.
        PERFORM set_config('eventstore.append_locks', p_space || ':' || (taken - 1 + count(
                   CASE WHEN k.exclusive THEN pg_advisory_xact_lock(k.key)::text
                        ELSE pg_advisory_xact_lock_shared(k.key)::text END)), true)
        FROM (SELECT CASE WHEN n.i = 1 THEN space_key
                          ELSE eventstore.lock_key(space_key, n.name, n.i <= query_types_end) END AS key,
                     (n.i > event_types_end AND n.i <= query_types_end) OR n.i > event_tags_end AS exclusive
              FROM jsonb_array_elements_text(names) WITH ORDINALITY n(name, i)
              ORDER BY 1, 2 DESC) k;
    END IF;
    RETURN state IS NULL OR split_part(state, ':', 1) <> p_space::text;
END
$$;

-- Tags as an event stores them: sorted, without duplicates. Called only for events
-- with several tags, so that the INSERT below has no subquery to set up per append.
CREATE FUNCTION eventstore.sorted_tags(p_tags text[]) RETURNS text[]
-- PL/pgSQL keeps the plan for the session; a SQL function that cannot be inlined is
-- planned again at every call.
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    RETURN ARRAY(SELECT DISTINCT t FROM unnest(p_tags) t ORDER BY t);
END
$$;

-- Inserts validated events and their tag rows, in argument order, as one statement;
-- returns the last position. Stream events get versions p_first_version, +1, ...
-- The transaction's first append for a tenant first takes the tenant's position
-- bound (see read_horizon). The tenant's channel is notified at commit.
CREATE FUNCTION eventstore.insert_events(
    p_org uuid, p_tenant eventstore.tenant_keys, p_first boolean, p_events jsonb,
    p_aggregate_type text DEFAULT NULL, p_aggregate_id uuid DEFAULT NULL, p_first_version integer DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    last_position bigint;
    notified text;
BEGIN
    IF p_first THEN
        -- A lower bound of the positions drawn below, held until the transaction ends:
        -- the key is (space, bound modulo 2^32).
        PERFORM pg_advisory_xact_lock_shared(p_tenant.lock_space,
            ((coalesce(pg_sequence_last_value('eventstore.events_position_seq'::regclass), 0) + 1)::bit(32))::integer);
    END IF;
    WITH inserted AS (
        INSERT INTO eventstore.events (organization_id, type, tags, data, metadata,
                                       aggregate_type, aggregate_id, aggregate_version,
                                       correlation_id, causation_id)
        SELECT p_org, x.type,
               CASE WHEN cardinality(x.tags) > 1 THEN eventstore.sorted_tags(x.tags)
                    ELSE coalesce(x.tags, '{}') END,
               coalesce(x.data, 'null'),
               coalesce(x.metadata, '{}') - 'correlation_id' - 'causation_id',
               p_aggregate_type, p_aggregate_id, p_first_version + x.n::integer - 1,
               (x.metadata ->> 'correlation_id')::uuid, (x.metadata ->> 'causation_id')::uuid
        FROM jsonb_populate_recordset(NULL::eventstore.event_input, p_events) WITH ORDINALITY
            AS x(type, tags, data, metadata, n)
        ORDER BY x.n
        RETURNING position, type, tags
    ), tagged AS (
        INSERT INTO eventstore.event_tags (organization_id, tag, position, type)
        SELECT p_org, t.tag, i.position, i.type
        FROM inserted i CROSS JOIN LATERAL unnest(i.tags) t(tag)
    )
    -- The notification is delivered at commit, once per transaction; its payload
    -- says nothing.
    SELECT max(i.position), pg_notify(p_tenant.notify_channel, '')::text
    INTO last_position, notified
    FROM inserted i;
    RETURN last_position;
END
$$;

-- Appends events atomically and returns the position of the last one. With a
-- condition {"fail_if_events_match": <query>, "after": <position or null>} raises
-- SQLSTATE WE001 (and writes nothing) when a matching event exists after "after".
CREATE FUNCTION eventstore.append(p_events jsonb, p_condition jsonb DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, eventstore, pg_temp
-- A session plans each statement once, perhaps while the tables are nearly empty,
-- and keeps that plan as they grow: a sequential scan, cheapest over a page or two,
-- would then read every event of the log at every call. The store's functions never
-- scan a table whole, so they refuse such plans (enable_seqscan = off: only
-- index paths remain, and each statement here has one).
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
DECLARE
    org uuid := identity.current_org_id();
    tenant eventstore.tenant_keys;
    query jsonb;
    after_position bigint := 0;
    first_append boolean;
    item jsonb;
    matched boolean;
BEGIN
    IF org IS NULL OR current_setting('transaction_isolation') <> 'read committed' THEN
        PERFORM eventstore.require_tenant();
    END IF;
    SELECT * INTO tenant FROM eventstore.tenant_keys k WHERE k.organization_id = org;
    IF NOT FOUND THEN
        tenant := eventstore.tenant_key(org);
    END IF;
    IF p_condition IS NOT NULL AND jsonb_typeof(p_condition) <> 'null' THEN
        IF jsonb_typeof(p_condition) <> 'object' OR NOT p_condition ? 'fail_if_events_match' THEN
            RAISE EXCEPTION 'a condition must be {"fail_if_events_match": <query>, "after": <position or null>}'
                USING ERRCODE = 'invalid_parameter_value';
        ELSIF coalesce(jsonb_typeof(p_condition -> 'after'), 'null') NOT IN ('number', 'null') THEN
            RAISE EXCEPTION 'condition "after" must be a position or null'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        query := p_condition -> 'fail_if_events_match';
        after_position := coalesce((p_condition ->> 'after')::bigint, 0);
    END IF;
    first_append := eventstore.lock_append(tenant.lock_space, p_events, query);
    -- Each probe is a new statement, so a snapshot taken after the locks: it sees every
    -- commit of a transaction that held a conflicting key. One B-tree probe per item:
    -- event_tags by (organization, first tag, position) when the item has tags, else
    -- the log by (organization, type, position) or (organization, position).
    FOR i IN 0 .. coalesce(jsonb_array_length(query -> 'items'), 0) - 1 LOOP
        item := query -> 'items' -> i;
        IF item -> 'tags' -> 1 IS NOT NULL THEN
            -- The other tags checked on each event by its key (a scalar subquery: a join
            -- or an EXISTS may be planned as a scan of every event of the tenant).
            matched := EXISTS (
                SELECT FROM eventstore.event_tags t
                WHERE t.organization_id = org AND t.tag = item -> 'tags' ->> 0
                  AND t.position > after_position
                  AND (coalesce(jsonb_array_length(item -> 'types'), 0) = 0 OR item -> 'types' ? t.type)
                  AND (SELECT to_jsonb(e.tags) @> (item -> 'tags') FROM eventstore.events e
                       WHERE e.organization_id = org AND e.type = t.type AND e.position = t.position));
        ELSIF item -> 'tags' -> 0 IS NOT NULL THEN
            matched := EXISTS (
                SELECT FROM eventstore.event_tags t
                WHERE t.organization_id = org AND t.tag = item -> 'tags' ->> 0
                  AND t.position > after_position
                  AND (coalesce(jsonb_array_length(item -> 'types'), 0) = 0 OR item -> 'types' ? t.type));
        ELSIF item -> 'types' -> 0 IS NOT NULL THEN
            -- One probe of (organization, type, position) per type (a lateral
            -- subquery with a limit is planned with the type as a parameter).
            matched := EXISTS (
                SELECT FROM jsonb_array_elements_text(item -> 'types') ty(type)
                CROSS JOIN LATERAL (SELECT FROM eventstore.events e
                                    WHERE e.organization_id = org AND e.type = ty.type
                                      AND e.position > after_position
                                    LIMIT 1) hit);
        ELSE
            matched := EXISTS (
                SELECT FROM eventstore.events e
                WHERE e.organization_id = org AND e.position > after_position);
        END IF;
        IF matched THEN
            RAISE EXCEPTION 'append condition failed: an event matching the query exists after position %',
                after_position USING ERRCODE = 'WE001';
        END IF;
    END LOOP;
    RETURN eventstore.insert_events(org, tenant, first_append, p_events);
END
$$;

-- Appends to the tenant's stream of p_aggregate_id, which must be at
-- p_expected_version (0: new) and of p_aggregate_type, with optimistic concurrency:
-- raises SQLSTATE WE002 (DETAIL {"aggregate_id", "expected_version",
-- "actual_version"}) when it is not, and writes nothing then.
CREATE FUNCTION eventstore.append_to_stream(
    p_aggregate_type text, p_aggregate_id uuid, p_expected_version integer, p_events jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, eventstore, pg_temp
-- Plans that stay right as the tables grow: see append().
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
AS $$
DECLARE
    org uuid := eventstore.require_tenant();
    tenant eventstore.tenant_keys := eventstore.tenant_key(org);
    first_append boolean;
    stream_type text;
    actual integer;
BEGIN
    IF p_aggregate_id IS NULL OR p_expected_version IS NULL OR p_expected_version < 0 THEN
        RAISE EXCEPTION 'a stream append needs an aggregate id and an expected version of 0 or more'
            USING ERRCODE = 'invalid_parameter_value';
    ELSIF p_aggregate_type IS NULL OR octet_length(p_aggregate_type) NOT BETWEEN 1 AND 200 THEN
        RAISE EXCEPTION 'an aggregate type is 1 to 200 bytes'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- One writer per stream at a time; others wait and then see the new version.
    first_append := eventstore.lock_append(tenant.lock_space, p_events, NULL,
                                           'stream:' || p_aggregate_id);
    SELECT e.aggregate_type, e.aggregate_version INTO stream_type, actual
    FROM eventstore.events e
    WHERE e.organization_id = org AND e.aggregate_id = p_aggregate_id
    ORDER BY e.aggregate_version DESC
    LIMIT 1;
    actual := coalesce(actual, 0);
    IF actual > 0 AND stream_type <> p_aggregate_type THEN
        RAISE EXCEPTION 'stream % is of aggregate type %, not %', p_aggregate_id, stream_type, p_aggregate_type
            USING ERRCODE = 'invalid_parameter_value';
    ELSIF actual <> p_expected_version THEN
        RAISE EXCEPTION 'stream %/% is at version %, not the expected %',
            p_aggregate_type, p_aggregate_id, actual, p_expected_version
            USING ERRCODE = 'WE002',
                  DETAIL = jsonb_build_object('aggregate_id', p_aggregate_id,
                                              'expected_version', p_expected_version,
                                              'actual_version', actual)::text;
    END IF;
    RETURN eventstore.insert_events(org, tenant, first_append, p_events, p_aggregate_type, p_aggregate_id,
                                    p_expected_version + 1);
END
$$;

-- Positions below which every event of the current tenant that matches p_query
-- (every event when p_query is NULL) is final. Appends hold a shared lock (space,
-- bound) from before they draw positions until they end, bound being a lower bound of
-- their positions, modulo 2^32. The horizon is the lowest bound the tenant's in-flight
-- appends hold, capped by the sequence's value + 1 (read first: an append that takes
-- its bound later draws above it). A bound is recovered from its low 32 bits as the
-- largest value not above that cap. Called by the definer functions below, as the
-- owner: it reads the sequence and the tenant's lock space.
CREATE FUNCTION eventstore.query_horizon(p_query jsonb) RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    space integer;
    space_key bigint;
    cap bigint;
    low bigint;
    type_names jsonb;
    tag_names jsonb;
BEGIN
    -- A standby has neither the primary's pg_locks nor its sequence's true position
    -- (sequences are WAL-logged ahead): a horizon computed here could pass an append
    -- still in flight on the primary.
    IF pg_is_in_recovery() THEN
        RAISE EXCEPTION 'the event store''s read horizon cannot be computed on a standby'
            USING ERRCODE = 'WE003',
                  HINT = 'read below a horizon computed on the primary (eventstore.read_below)';
    END IF;
    SELECT k.lock_space INTO space FROM eventstore.tenant_keys k
    WHERE k.organization_id = identity.current_org_id();
    cap := coalesce(pg_sequence_last_value('eventstore.events_position_seq'::regclass), 0) + 1;
    IF space IS NULL THEN
        -- No committed event and no append that could commit one below the cap: an
        -- append that makes the row holds it until it commits, and every other append
        -- of the tenant waits for that row.
        RETURN cap;
    END IF;
    space_key := space::bigint << 32;
    -- Keys are taken for an instant, at the session level, unless this transaction
    -- appended itself (its own holds would not conflict, and its bound counts). Each
    -- in one expression, so that nothing can interrupt between taking and releasing.
    IF split_part(coalesce(current_setting('eventstore.append_locks', true), ''), ':', 1) <> space::text THEN
        -- Most of the time no append of the tenant is in flight: then the space key,
        -- which every append holds from before it draws positions until it ends, is
        -- free, and everything below the cap (read before) is final.
        IF (CASE WHEN pg_try_advisory_lock(space_key) THEN pg_advisory_unlock(space_key) ELSE false END) THEN
            RETURN cap;
        END IF;
        -- Appends are in flight, but perhaps none that can write what p_query reads:
        -- every append holds, shared, the keys its events' types and tags name (and
        -- '', everything) until it ends, or the space key exclusively once it takes too
        -- many keys. When the space key can be shared and no key the query names is
        -- held, no event matching the query is in flight below the cap: an append that
        -- takes such a key later draws above it. A hash collision only sends the read
        -- to the slow path below.
        IF p_query IS NOT NULL THEN
            type_names := eventstore.query_type_names(p_query);
            tag_names := eventstore.query_tag_names(p_query);
            IF jsonb_array_length(type_names) + jsonb_array_length(tag_names) <= 16
               AND (CASE WHEN pg_try_advisory_lock_shared(space_key)
                         THEN pg_advisory_unlock_shared(space_key) ELSE false END)
               AND NOT EXISTS (
                   SELECT FROM (SELECT eventstore.lock_key(space_key, n.name, true)
                                FROM jsonb_array_elements_text(type_names) n(name)
                                UNION ALL
                                SELECT eventstore.lock_key(space_key, n.name, false)
                                FROM jsonb_array_elements_text(tag_names) n(name)) k(key)
                   WHERE NOT (CASE WHEN pg_try_advisory_lock(k.key) THEN pg_advisory_unlock(k.key)
                                   ELSE false END)) THEN
                RETURN cap;
            END IF;
        END IF;
    END IF;
    SELECT min(cap - (((cap - l.objid::bigint) % 4294967296) + 4294967296) % 4294967296)
    INTO low
    FROM pg_locks l
    WHERE l.locktype = 'advisory' AND l.objsubid = 2 AND l.classid = space::oid
      AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database());
    RETURN least(cap, coalesce(low, cap));
END
$$;

-- Positions below which every event of the current tenant is final (query_horizon).
CREATE FUNCTION eventstore.read_horizon() RETURNS bigint
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, eventstore, pg_temp
-- Plans that stay right as the tables grow: see append().
SET enable_seqscan = off
AS $$
BEGIN
    RETURN eventstore.query_horizon(NULL);
END
$$;

-- The events of tenant p_org that a query item with tags matches, after p_after and
-- below p_below, in position order, at most p_max_count: a walk of event_tags by
-- (organization, first tag, position), the other tags checked on each event. Inlined
-- where it is called (a SQL function of one SELECT), so that it is planned there.
CREATE FUNCTION eventstore.tag_matches(
    p_org uuid, p_item jsonb, p_after bigint, p_below bigint, p_max_count integer)
RETURNS TABLE (event_position bigint, event_type text)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT t.position, t.type FROM eventstore.event_tags t
    WHERE t.organization_id = p_org AND t.tag = p_item -> 'tags' ->> 0
      AND t.position > p_after AND t.position < p_below
      AND (coalesce(jsonb_array_length(p_item -> 'types'), 0) = 0 OR p_item -> 'types' ? t.type)
      -- A scalar subquery, one probe per row: an EXISTS here may be planned as a
      -- hash of every event of the tenant.
      AND (p_item -> 'tags' -> 1 IS NULL OR (
          SELECT to_jsonb(e.tags) @> (p_item -> 'tags') FROM eventstore.events e
          WHERE e.organization_id = p_org AND e.type = t.type AND e.position = t.position))
    ORDER BY t.position
    LIMIT p_max_count
$$;

-- The event of tenant p_org at p_position, of type p_type, by its full key. Inlined
-- where it is called, as a subquery kept apart (OFFSET 0): in a lateral join it is
-- planned with the key as parameters, so that any plan of it is one probe. (A join,
-- or position = ANY (...), may be planned as a walk of every event of the tenant,
-- cheapest while the log is nearly empty, and kept as the log grows.)
CREATE FUNCTION eventstore.event_by_key(p_org uuid, p_type text, p_position bigint)
RETURNS SETOF eventstore.events
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT * FROM eventstore.events e
    WHERE e.organization_id = p_org AND e.type = p_type AND e.position = p_position
    OFFSET 0
$$;

-- The events of tenant p_org that a query item with tags matches (tag_matches), each
-- looked up by its full key, in position order: the usual read, one statement.
-- Inlined where it is called.
CREATE FUNCTION eventstore.tag_events(
    p_org uuid, p_item jsonb, p_after bigint, p_below bigint, p_max_count integer)
RETURNS SETOF eventstore.events
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT e.*
    FROM eventstore.tag_matches(p_org, p_item, p_after, p_below, p_max_count) m
    CROSS JOIN LATERAL eventstore.event_by_key(p_org, m.event_type, m.event_position) e
    ORDER BY m.event_position
$$;

-- Reads matching events of the current tenant after a position and below a read
-- horizon (eventstore.read_horizon(), computed on the primary), in position order. Items are OR'ed; within an item any of the
-- types and all of the tags must match; an empty list does not constrain. Runs as the
-- owner: under row-level security PostgreSQL may not evaluate a non-leakproof
-- operator such as the tags' @> before the policy, so it cannot use the tags index
-- and filters every event of the tenant instead; this filters by tenant itself.
CREATE FUNCTION eventstore.read_below(p_query jsonb, p_after bigint, p_below bigint, p_max_count integer DEFAULT NULL)
RETURNS SETOF eventstore.events
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, eventstore, pg_temp
-- Every statement here has one right plan, made once per session: index probes,
-- whose cost follows what the read returns. Plans that scan or hash a whole table,
-- cheapest while it is nearly empty, are refused (see append()).
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
SET enable_hashjoin = off
SET enable_mergejoin = off
AS $$
DECLARE
    org uuid := identity.current_org_id();
    below bigint := p_below;
    after_position bigint := coalesce(p_after, 0);
    item jsonb;
    -- The matching events' positions and, at the same index, their types.
    positions bigint[] := '{}';
    types text[] := '{}';
BEGIN
    IF p_below IS NULL THEN
        RAISE EXCEPTION 'a read needs a horizon' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_max_count < 0 THEN
        RAISE EXCEPTION 'max_count must not be negative' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT coalesce(eventstore.is_valid_query(p_query), false) THEN
        PERFORM eventstore.check_query(p_query);
    END IF;
    -- Each statement below is newer than the horizon (computed by the caller, on the
    -- primary when this runs on a standby), so its snapshot is too.
    -- The usual query, one item with tags: one statement walks the tag and looks up
    -- each event by its full key.
    IF jsonb_array_length(p_query -> 'items') = 1 AND p_query -> 'items' -> 0 -> 'tags' -> 0 IS NOT NULL THEN
        RETURN QUERY
        SELECT * FROM eventstore.tag_events(org, p_query -> 'items' -> 0, after_position, below, p_max_count);
        RETURN;
    END IF;
    -- The events each item matches, as (position, type): tag_matches() for an item
    -- with tags; the log by (organization, type, position) for an item with types
    -- only; for an item with neither, every event.
    FOR i IN 0 .. jsonb_array_length(p_query -> 'items') - 1 LOOP
        item := p_query -> 'items' -> i;
        IF item -> 'tags' -> 0 IS NOT NULL THEN
            SELECT positions || coalesce(array_agg(m.event_position), '{}'),
                   types || coalesce(array_agg(m.event_type), '{}')
            INTO positions, types
            FROM eventstore.tag_matches(org, item, after_position, below, p_max_count) m;
        ELSIF item -> 'types' -> 0 IS NOT NULL THEN
            -- One range of (organization, type, position) per type (a lateral
            -- subquery with a limit is planned with the type as a parameter).
            SELECT positions || coalesce(array_agg(m.position), '{}'), types || coalesce(array_agg(m.type), '{}')
            INTO positions, types
            FROM jsonb_array_elements_text(item -> 'types') ty(type)
            CROSS JOIN LATERAL (
                SELECT e.position, ty.type FROM eventstore.events e
                WHERE e.organization_id = org AND e.type = ty.type
                  AND e.position > after_position AND e.position < below
                ORDER BY e.position
                LIMIT p_max_count) m;
        ELSE
            -- Matches every event: nothing else to look for.
            RETURN QUERY
            SELECT e.* FROM eventstore.events e
            WHERE e.organization_id = org AND e.position > after_position AND e.position < below
            ORDER BY e.position
            LIMIT p_max_count;
            RETURN;
        END IF;
    END LOOP;
    -- Each event once, in position order, by its full key.
    RETURN QUERY
    SELECT e.*
    FROM (SELECT DISTINCT p.position, p.type FROM unnest(positions, types) p(position, type)
          ORDER BY p.position
          LIMIT p_max_count) p
    CROSS JOIN LATERAL eventstore.event_by_key(org, p.type, p.position) e
    ORDER BY p.position;
END
$$;

-- read_below with the tenant's own horizon for the query, computed here (so on the
-- primary only).
CREATE FUNCTION eventstore.read(p_query jsonb, p_after bigint DEFAULT 0, p_max_count integer DEFAULT NULL)
RETURNS SETOF eventstore.events
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, eventstore, pg_temp
-- Plans that stay right as the tables grow: see read_below().
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
SET enable_hashjoin = off
SET enable_mergejoin = off
AS $$
DECLARE
    org uuid := identity.current_org_id();
    -- The horizon first: the statements below come after it, with newer snapshots.
    below bigint := eventstore.query_horizon(p_query);
BEGIN
    -- The usual query, one valid item with tags, is read here in one statement
    -- (through read_below, each event would be built twice); any other by read_below.
    IF jsonb_path_match(p_query, 'strict $.items.size() == 1 && exists($.items[0].tags[0])', '{}', true)
       AND coalesce(p_max_count >= 0, true) AND eventstore.is_valid_query(p_query) THEN
        RETURN QUERY
        SELECT * FROM eventstore.tag_events(org, p_query -> 'items' -> 0, coalesce(p_after, 0), below, p_max_count);
        RETURN;
    END IF;
    RETURN QUERY SELECT * FROM eventstore.read_below(p_query, p_after, below, p_max_count);
END
$$;

-- The current tenant's notification channel: LISTEN on it to hear of its commits.
CREATE FUNCTION eventstore.notification_channel() RETURNS text
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, eventstore, pg_temp
-- Plans that stay right as the tables grow: see append().
SET enable_seqscan = off
AS $$
DECLARE
    org uuid := identity.current_org_id();
BEGIN
    IF org IS NULL THEN
        RAISE EXCEPTION 'the notification channel is per tenant: app.current_org_id is not set'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN (eventstore.tenant_key(org)).notify_channel;
END
$$;

-- Row-level security: the current organization only.
ALTER TABLE eventstore.events ENABLE ROW LEVEL SECURITY;
CREATE POLICY events_tenant ON eventstore.events
    FOR ALL TO groundwork_app, groundwork_readonly
    USING (organization_id = identity.current_org_id())
    WITH CHECK (organization_id = identity.current_org_id());

ALTER TABLE eventstore.event_tags ENABLE ROW LEVEL SECURITY;
CREATE POLICY event_tags_tenant ON eventstore.event_tags
    FOR ALL TO groundwork_app, groundwork_readonly
    USING (organization_id = identity.current_org_id())
    WITH CHECK (organization_id = identity.current_org_id());

ALTER TABLE eventstore.tenant_keys ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_keys_tenant ON eventstore.tenant_keys
    FOR ALL TO groundwork_app, groundwork_readonly
    USING (organization_id = identity.current_org_id())
    WITH CHECK (organization_id = identity.current_org_id());

ALTER TABLE eventstore.subscriptions ENABLE ROW LEVEL SECURITY;
CREATE POLICY subscriptions_tenant ON eventstore.subscriptions
    FOR ALL TO groundwork_app, groundwork_readonly
    USING (organization_id = identity.current_org_id())
    WITH CHECK (organization_id = identity.current_org_id());

SELECT public.groundwork_set_owner('eventstore', 'groundwork_owner');

-- Privileges: the log is read directly and written through the append functions.
GRANT USAGE ON SCHEMA eventstore TO groundwork_app, groundwork_readonly;
GRANT USAGE ON DOMAIN eventstore.event_type, eventstore.json_object, eventstore.stream_version
    TO groundwork_app, groundwork_readonly;
GRANT SELECT ON eventstore.events, eventstore.event_tags TO groundwork_app, groundwork_readonly;
GRANT SELECT, INSERT, UPDATE ON eventstore.subscriptions TO groundwork_app;
GRANT SELECT ON eventstore.subscriptions TO groundwork_readonly;

-- The definer functions and the helpers that take locks or write are not for PUBLIC.
REVOKE ALL ON FUNCTION eventstore.organization_keys(),
    eventstore.tenant_key(uuid),
    eventstore.lock_append(integer, jsonb, jsonb, text),
    eventstore.insert_events(uuid, eventstore.tenant_keys, boolean, jsonb, text, uuid, integer),
    eventstore.append(jsonb, jsonb),
    eventstore.append_to_stream(text, uuid, integer, jsonb),
    eventstore.query_horizon(jsonb),
    eventstore.tag_matches(uuid, jsonb, bigint, bigint, integer),
    eventstore.event_by_key(uuid, text, bigint),
    eventstore.tag_events(uuid, jsonb, bigint, bigint, integer),
    eventstore.read_horizon(),
    eventstore.read(jsonb, bigint, integer),
    eventstore.read_below(jsonb, bigint, bigint, integer),
    eventstore.notification_channel()
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION eventstore.append(jsonb, jsonb),
    eventstore.append_to_stream(text, uuid, integer, jsonb)
    TO groundwork_app;
GRANT EXECUTE ON FUNCTION eventstore.read_horizon(),
    eventstore.read(jsonb, bigint, integer),
    eventstore.read_below(jsonb, bigint, bigint, integer),
    eventstore.notification_channel()
    TO groundwork_app, groundwork_readonly;
