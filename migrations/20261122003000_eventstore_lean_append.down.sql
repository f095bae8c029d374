-- Reverts 20261122003000_eventstore_lean_append.up.sql: the previous append and
-- append_to_stream (definitions as in 20261122000000_eventstore and
-- 20261122002000_eventstore_subscriptions), the notify trigger and the INSERT grant.

DROP FUNCTION eventstore.lock_append(uuid, jsonb, jsonb, bigint);
DROP FUNCTION eventstore.insert_events(uuid, jsonb, text, uuid, integer);
DROP FUNCTION eventstore.is_query_item(jsonb);
DROP FUNCTION eventstore.is_string_array(jsonb);
DROP FUNCTION eventstore.raise_invalid_event(jsonb, bigint);
DROP TYPE eventstore.event_input;
DROP TABLE eventstore.event_tags;

ALTER TABLE eventstore.events
    DROP CONSTRAINT events_type_format,
    ADD CONSTRAINT events_type_format CHECK (type ~ '^[A-Za-z][A-Za-z0-9_.:-]{0,199}$');

-- The items of a query: {"items": [{"types": [...], "tags": [...]}, ...]}.
CREATE OR REPLACE FUNCTION eventstore.parse_query(p_query jsonb)
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

DROP FUNCTION eventstore.raise_invalid_query_item(jsonb, bigint);

-- Lock key of (organization, type, tag); '' stands for "any".
CREATE OR REPLACE FUNCTION eventstore.lock_key(p_org uuid, p_type text, p_tag text) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
-- The top two bits are cleared so that no key falls into the position-bound range.
AS $$ SELECT hashtextextended(p_org::text || chr(31) || p_type || chr(31) || p_tag, 7)
             & x'3FFFFFFFFFFFFFFF'::bigint $$;

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

-- Appends events atomically and returns the position of the last one. With a
-- condition {"fail_if_events_match": <query>, "after": <position or null>} raises
-- SQLSTATE GWC01 (and writes nothing) when a matching event exists after "after".
CREATE OR REPLACE FUNCTION eventstore.append(p_events jsonb, p_condition jsonb DEFAULT NULL)
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
CREATE OR REPLACE FUNCTION eventstore.append_to_stream(
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

-- One notification per appending statement, delivered at commit; the payload is the
-- organization, so consumers of other tenants can ignore it.
CREATE FUNCTION eventstore.notify_appended() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('eventstore_events', organization_id::text)
    FROM (SELECT DISTINCT organization_id FROM appended) orgs;
    RETURN NULL;
END
$$;

CREATE TRIGGER events_notify_appended
    AFTER INSERT ON eventstore.events
    REFERENCING NEW TABLE AS appended
    FOR EACH STATEMENT EXECUTE FUNCTION eventstore.notify_appended();

GRANT INSERT ON eventstore.events TO groundwork_app;
GRANT USAGE ON SEQUENCE eventstore.events_position_seq TO groundwork_app;
GRANT EXECUTE ON FUNCTION eventstore.append(jsonb, jsonb),
                          eventstore.append_to_stream(text, uuid, integer, jsonb)
    TO PUBLIC;
GRANT EXECUTE ON FUNCTION eventstore.parse_events(jsonb),
                          eventstore.any_match(uuid, jsonb, bigint),
                          eventstore.lock_keys(uuid, eventstore.new_event[], jsonb),
                          eventstore.announce_positions()
    TO groundwork_app;
