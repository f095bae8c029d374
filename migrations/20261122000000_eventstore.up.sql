-- Why: one event log for both Dynamic Consistency Boundary events (type + tags,
-- seed 000) and per-aggregate streams (seed 004), tenant-owned like every table,
-- with an append/read API callable from SQL by any client.
--
-- Consistency of DCB decisions. append() takes transaction-scoped advisory locks on
-- keys derived from (organization, type, tag): EXCLUSIVE on the keys its condition
-- could be invalidated through, SHARED on the keys of the events it writes, all in
-- one sorted acquisition. An event matches a query item when its type is one of the
-- item's types and its tags include all of the item's tags, so it always carries the
-- key (its type, the item's first tag), or (its type, '') / ('', first tag) /
-- ('', '') for items without tags or types, and a conflicting writer must wait for
-- the deciding transaction to end (or vice versa). Writers whose events match no
-- one's condition only share locks and never wait for each other.
--
-- Ordering. Positions come from a sequence when an event is inserted, so two
-- transactions can commit out of position order. Before drawing positions, an
-- appending transaction holds a shared advisory lock whose key encodes a lower bound
-- of the positions it will draw, until it ends. A reader first computes a horizon:
-- the lowest such bound still held by an in-flight transaction, capped by the
-- sequence's current value + 1; it then reads, in a newer snapshot, only events below
-- the horizon. Every event below the horizon was either committed before that
-- snapshot or never will be, so a reader that has read up to P never later finds a
-- new event at a position <= P.

CREATE SCHEMA eventstore;

CREATE SEQUENCE eventstore.events_position_seq AS bigint;

CREATE TABLE eventstore.events (
    position bigint PRIMARY KEY DEFAULT nextval('eventstore.events_position_seq'),
    event_id uuid NOT NULL DEFAULT gen_random_uuid(),
    organization_id uuid NOT NULL DEFAULT identity.current_org_id()
        CONSTRAINT events_organization_id_fkey
            REFERENCES identity.organizations (id) ON DELETE RESTRICT,
    type text NOT NULL
        CONSTRAINT events_type_format CHECK (type ~ '^[A-Za-z][A-Za-z0-9_.:-]{0,199}$'),
    tags text[] NOT NULL DEFAULT '{}',
    data jsonb NOT NULL,
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    aggregate_type text,
    aggregate_id uuid,
    aggregate_version integer
        CONSTRAINT events_aggregate_version_positive CHECK (aggregate_version > 0),
    correlation_id uuid,
    causation_id uuid,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_event_id_key UNIQUE (event_id),
    CONSTRAINT events_aggregate_id_version_key UNIQUE (aggregate_id, aggregate_version),
    CONSTRAINT events_stream_complete
        CHECK (num_nonnulls(aggregate_type, aggregate_id, aggregate_version) IN (0, 3)),
    CONSTRAINT events_metadata_object CHECK (jsonb_typeof(metadata) = 'object')
);

ALTER SEQUENCE eventstore.events_position_seq OWNED BY eventstore.events.position;

CREATE INDEX events_organization_id_position_idx ON eventstore.events (organization_id, position);
CREATE INDEX events_organization_id_type_position_idx
    ON eventstore.events (organization_id, type, position);
-- Conditions search this index on every append: keep it free of a pending list.
CREATE INDEX events_tags_gin_idx ON eventstore.events USING gin (tags) WITH (fastupdate = off);
CREATE INDEX events_correlation_id_idx ON eventstore.events (correlation_id)
    WHERE correlation_id IS NOT NULL;

ALTER TABLE eventstore.events ENABLE ROW LEVEL SECURITY;
CREATE POLICY events_tenant ON eventstore.events
    FOR ALL TO groundwork_app, groundwork_readonly
    USING (organization_id = identity.current_org_id())
    WITH CHECK (organization_id = identity.current_org_id());

GRANT USAGE ON SCHEMA eventstore TO groundwork_app, groundwork_readonly;
GRANT SELECT, INSERT ON eventstore.events TO groundwork_app;
GRANT SELECT ON eventstore.events TO groundwork_readonly;
GRANT USAGE ON SEQUENCE eventstore.events_position_seq TO groundwork_app;

-- Advisory-lock namespace of in-flight position bounds: key = OFFSET + position.
CREATE FUNCTION eventstore.position_lock_offset() RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT x'4756455600000000'::bigint $$;

-- One event of an append() argument, validated.
CREATE TYPE eventstore.new_event AS (ordinal integer, type text, tags text[], data jsonb, metadata jsonb);

-- Validates an append() argument in one pass and returns its events.
CREATE FUNCTION eventstore.parse_events(p_events jsonb)
RETURNS eventstore.new_event[]
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    problem text;
    parsed eventstore.new_event[];
BEGIN
    IF p_events IS NULL OR jsonb_typeof(p_events) <> 'array' THEN
        RAISE EXCEPTION 'events must be a JSON array of {"type", "tags", "data", "metadata"}'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_array_length(p_events) = 0 THEN
        RAISE EXCEPTION 'events must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT p.problem INTO problem
    FROM (
        SELECT x.n, CASE
            WHEN jsonb_typeof(x.e) <> 'object' THEN format('event %s is not a JSON object', x.n)
            WHEN jsonb_typeof(x.e -> 'type') IS DISTINCT FROM 'string'
                THEN format('event %s has no "type" string', x.n)
            WHEN x.e ? 'tags' AND (jsonb_typeof(x.e -> 'tags') <> 'array'
                                   OR jsonb_path_exists(x.e -> 'tags', '$[*] ? (@.type() != "string")'))
                THEN format('event %s has "tags" that are not an array of strings', x.n)
            WHEN x.e ? 'metadata' AND jsonb_typeof(x.e -> 'metadata') <> 'object'
                THEN format('event %s has "metadata" that is not an object', x.n)
            END AS problem
        FROM jsonb_array_elements(p_events) WITH ORDINALITY AS x(e, n)
    ) p
    WHERE p.problem IS NOT NULL
    ORDER BY p.n
    LIMIT 1;
    IF problem IS NOT NULL THEN
        RAISE EXCEPTION '%', problem USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT array_agg(ROW(
               x.n::integer,
               x.e ->> 'type',
               ARRAY(SELECT DISTINCT t FROM jsonb_array_elements_text(coalesce(x.e -> 'tags', '[]')) t ORDER BY t),
               coalesce(x.e -> 'data', 'null'::jsonb),
               coalesce(x.e -> 'metadata', '{}'::jsonb))::eventstore.new_event ORDER BY x.n)
    INTO parsed
    FROM jsonb_array_elements(p_events) WITH ORDINALITY AS x(e, n);
    RETURN parsed;
END
$$;

-- The items of a query: {"items": [{"types": [...], "tags": [...]}, ...]}.
CREATE FUNCTION eventstore.parse_query(p_query jsonb)
RETURNS TABLE (types text[], tags text[])
LANGUAGE plpgsql IMMUTABLE
AS $$
DECLARE
    item jsonb;
    n int := 0;
BEGIN
    IF p_query IS NULL OR jsonb_typeof(p_query) <> 'object'
       OR jsonb_typeof(p_query -> 'items') IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'a query must be {"items": [{"types": [...], "tags": [...]}, ...]}'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR item IN SELECT value FROM jsonb_array_elements(p_query -> 'items') LOOP
        n := n + 1;
        IF jsonb_typeof(item) <> 'object' THEN
            RAISE EXCEPTION 'query item % is not a JSON object', n USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF (item ? 'types' AND (jsonb_typeof(item -> 'types') <> 'array' OR EXISTS (
               SELECT FROM jsonb_array_elements(item -> 'types') t WHERE jsonb_typeof(t) <> 'string')))
           OR (item ? 'tags' AND (jsonb_typeof(item -> 'tags') <> 'array' OR EXISTS (
               SELECT FROM jsonb_array_elements(item -> 'tags') t WHERE jsonb_typeof(t) <> 'string'))) THEN
            RAISE EXCEPTION 'query item % has "types" or "tags" that are not arrays of strings', n
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        types := ARRAY(SELECT DISTINCT jsonb_array_elements_text(coalesce(item -> 'types', '[]')) ORDER BY 1);
        tags := ARRAY(SELECT DISTINCT jsonb_array_elements_text(coalesce(item -> 'tags', '[]')) ORDER BY 1);
        RETURN NEXT;
    END LOOP;
END
$$;

-- Lock key of (organization, type, tag); '' stands for "any".
CREATE FUNCTION eventstore.lock_key(p_org uuid, p_type text, p_tag text) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
-- The top two bits are cleared so that no key falls into the position-bound range.
AS $$ SELECT hashtextextended(p_org::text || chr(31) || p_type || chr(31) || p_tag, 7)
             & x'3FFFFFFFFFFFFFFF'::bigint $$;

-- Positions below which every event is final: see the ordering note above.
CREATE FUNCTION eventstore.read_horizon() RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    high bigint;
    low bigint;
    offset_ bigint := eventstore.position_lock_offset();
BEGIN
    SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END
    INTO high FROM eventstore.events_position_seq;
    SELECT min(((l.classid::bigint << 32) | l.objid::bigint) - offset_)
    INTO low
    FROM pg_locks l
    WHERE l.locktype = 'advisory' AND l.objsubid = 1
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND l.classid::bigint >= (offset_ >> 32) AND l.classid::bigint < (offset_ >> 32) + 65536;
    RETURN least(high + 1, coalesce(low, high + 1));
END
$$;

-- The events matching p_query after p_after and below p_below (NULL: no bound), in
-- position order, of the current tenant. Items are OR'ed; within an item any of the
-- types and all of the tags must match; an empty list does not constrain.
CREATE FUNCTION eventstore.query_events(p_query jsonb, p_after bigint, p_max_count integer, p_below bigint)
RETURNS SETOF eventstore.events
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    predicate text;
BEGIN
    IF p_max_count < 0 THEN
        RAISE EXCEPTION 'max_count must not be negative' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT string_agg(format('(%s AND %s)',
               CASE WHEN cardinality(q.types) = 0 THEN 'true'
                    ELSE format('e.type = ANY (%L::text[])', q.types) END,
               CASE WHEN cardinality(q.tags) = 0 THEN 'true'
                    ELSE format('e.tags @> %L::text[]', q.tags) END), ' OR ')
    INTO predicate
    FROM eventstore.parse_query(p_query) q;
    IF predicate IS NULL THEN
        RETURN;
    END IF;
    RETURN QUERY EXECUTE format(
        'SELECT e.* FROM eventstore.events e
         WHERE e.organization_id = identity.current_org_id()
           AND e.position > $1 AND ($2::bigint IS NULL OR e.position < $2) AND (%s)
         ORDER BY e.position LIMIT $3', predicate)
    USING coalesce(p_after, 0), p_below, p_max_count;
END
$$;

-- Reads matching events after a position, never past the read horizon.
CREATE FUNCTION eventstore.read(p_query jsonb, p_after bigint DEFAULT 0, p_max_count integer DEFAULT NULL)
RETURNS SETOF eventstore.events
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    horizon bigint := eventstore.read_horizon();
BEGIN
    -- A new statement, so a newer snapshot than the horizon's.
    RETURN QUERY SELECT * FROM eventstore.query_events(p_query, p_after, p_max_count, horizon);
END
$$;

-- Whether any event of the current tenant after p_after matches p_query: the
-- condition check of append(). One statement per item shape, each planned for the
-- actual tags or types (GIN on tags, or type + position).
CREATE FUNCTION eventstore.any_match(p_org uuid, p_query jsonb, p_after bigint)
RETURNS boolean
LANGUAGE plpgsql STABLE
AS $$
DECLARE
    item record;
BEGIN
    FOR item IN SELECT * FROM eventstore.parse_query(p_query) LOOP
        IF cardinality(item.tags) > 0 THEN
            IF EXISTS (SELECT FROM eventstore.events e
                       WHERE e.organization_id = p_org AND e.tags @> item.tags
                         AND e.position > p_after
                         AND (cardinality(item.types) = 0 OR e.type = ANY (item.types))) THEN
                RETURN true;
            END IF;
        ELSIF cardinality(item.types) > 0 THEN
            IF EXISTS (SELECT FROM eventstore.events e
                       WHERE e.organization_id = p_org AND e.type = ANY (item.types)
                         AND e.position > p_after) THEN
                RETURN true;
            END IF;
        ELSIF EXISTS (SELECT FROM eventstore.events e
                      WHERE e.organization_id = p_org AND e.position > p_after) THEN
            RETURN true;
        END IF;
    END LOOP;
    RETURN false;
END
$$;

-- Takes the DCB locks of an append: exclusive on the condition's keys, shared on
-- the events' keys, in key order so that single appends cannot deadlock each other.
CREATE FUNCTION eventstore.lock_keys(p_org uuid, p_events eventstore.new_event[], p_condition_query jsonb)
RETURNS void
LANGUAGE plpgsql VOLATILE
-- Planning this statement costs more than running it; a generic plan fits every call.
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    -- plpgsql caches this statement's plan; a SQL function would plan it every call.
    PERFORM CASE WHEN w.exclusive THEN pg_advisory_xact_lock(w.key)::text
                 ELSE pg_advisory_xact_lock_shared(w.key)::text END
    FROM (
        SELECT k.key, bool_or(k.exclusive) AS exclusive
        FROM (
            SELECT eventstore.lock_key(p_org, coalesce(t.type, ''), coalesce(q.tags[1], '')) AS key,
                   true AS exclusive
            FROM eventstore.parse_query(coalesce(p_condition_query, '{"items": []}')) q
            CROSS JOIN LATERAL unnest(CASE WHEN cardinality(q.types) = 0 THEN ARRAY[NULL::text]
                                           ELSE q.types END) t(type)
            WHERE p_condition_query IS NOT NULL
            UNION ALL
            SELECT eventstore.lock_key(p_org, k.type, k.tag), false
            FROM unnest(p_events) b
            CROSS JOIN LATERAL (
                SELECT b.type, '' UNION ALL SELECT '', ''
                UNION ALL SELECT b.type, g FROM unnest(b.tags) g
                UNION ALL SELECT '', g FROM unnest(b.tags) g
            ) k(type, tag)
        ) k
        GROUP BY k.key
        ORDER BY k.key
        OFFSET 0
    ) w;
END
$$;

-- Announces, until the transaction ends, a lower bound of the positions it is about
-- to draw (see read_horizon).
CREATE FUNCTION eventstore.announce_positions() RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    bound bigint;
BEGIN
    SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END
    INTO bound FROM eventstore.events_position_seq;
    PERFORM pg_advisory_xact_lock_shared(eventstore.position_lock_offset() + bound);
END
$$;

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

-- Appends events atomically and returns the position of the last one. With a
-- condition {"fail_if_events_match": <query>, "after": <position or null>} raises
-- SQLSTATE GWC01 (and writes nothing) when a matching event exists after "after".
CREATE FUNCTION eventstore.append(p_events jsonb, p_condition jsonb DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    org uuid := eventstore.require_tenant();
    batch eventstore.new_event[] := eventstore.parse_events(p_events);
    after_position bigint := 0;
    condition_query jsonb;
    last_position bigint;
BEGIN
    IF p_condition IS NOT NULL AND jsonb_typeof(p_condition) <> 'null' THEN
        IF jsonb_typeof(p_condition) <> 'object' OR NOT p_condition ? 'fail_if_events_match' THEN
            RAISE EXCEPTION 'a condition must be {"fail_if_events_match": <query>, "after": <position or null>}'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        condition_query := p_condition -> 'fail_if_events_match';
        PERFORM eventstore.parse_query(condition_query);
        IF jsonb_typeof(p_condition -> 'after') = 'number' THEN
            after_position := (p_condition ->> 'after')::bigint;
        ELSIF p_condition ? 'after' AND jsonb_typeof(p_condition -> 'after') <> 'null' THEN
            RAISE EXCEPTION 'condition "after" must be a position or null'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
    END IF;
    PERFORM eventstore.lock_keys(org, batch, condition_query);
    IF condition_query IS NOT NULL AND eventstore.any_match(org, condition_query, after_position) THEN
        RAISE EXCEPTION 'append condition failed: an event matching the query exists after position %',
            after_position USING ERRCODE = 'GWC01';
    END IF;
    PERFORM eventstore.announce_positions();
    WITH inserted AS (
        INSERT INTO eventstore.events (organization_id, type, tags, data, metadata,
                                       correlation_id, causation_id)
        SELECT org, b.type, b.tags, b.data, b.metadata - 'correlation_id' - 'causation_id',
               (b.metadata ->> 'correlation_id')::uuid, (b.metadata ->> 'causation_id')::uuid
        FROM unnest(batch) b
        ORDER BY b.ordinal
        RETURNING position
    )
    SELECT max(position) INTO last_position FROM inserted;
    RETURN last_position;
END
$$;

-- Appends events to an aggregate's stream with optimistic concurrency: the stream
-- must be at p_expected_version (0: new). Raises SQLSTATE GWC02, with the actual
-- version in DETAIL ("actual version: N"), when it is not; writes nothing then.
CREATE FUNCTION eventstore.append_to_stream(
    p_aggregate_type text, p_aggregate_id uuid, p_expected_version integer, p_events jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    org uuid := eventstore.require_tenant();
    batch eventstore.new_event[] := eventstore.parse_events(p_events);
    actual integer;
    last_position bigint;
BEGIN
    PERFORM eventstore.lock_keys(org, batch, NULL);
    -- One writer per stream at a time; others wait and then see the new version.
    PERFORM pg_advisory_xact_lock(eventstore.lock_key(org, 'stream', p_aggregate_id::text));
    SELECT coalesce(max(aggregate_version), 0) INTO actual
    FROM eventstore.events WHERE aggregate_id = p_aggregate_id;
    IF actual <> p_expected_version THEN
        RAISE EXCEPTION 'stream %/% is at version %, not the expected %',
            p_aggregate_type, p_aggregate_id, actual, p_expected_version
            USING ERRCODE = 'GWC02', DETAIL = format('actual version: %s', actual);
    END IF;
    PERFORM eventstore.announce_positions();
    WITH inserted AS (
        INSERT INTO eventstore.events (organization_id, type, tags, data, metadata,
                                       aggregate_type, aggregate_id, aggregate_version,
                                       correlation_id, causation_id)
        SELECT org, b.type, b.tags, b.data, b.metadata - 'correlation_id' - 'causation_id',
               p_aggregate_type, p_aggregate_id, p_expected_version + b.ordinal,
               (b.metadata ->> 'correlation_id')::uuid, (b.metadata ->> 'causation_id')::uuid
        FROM unnest(batch) b
        ORDER BY b.ordinal
        RETURNING position
    )
    SELECT max(position) INTO last_position FROM inserted;
    RETURN last_position;
END
$$;

GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA eventstore TO groundwork_app;
