-- Why: an append costs little more than inserting its rows. The first event-store
-- migration validated, keyed and checked each append through several PL/pgSQL
-- helpers and found a condition's events through the tags GIN index, so every
-- conditional append visited every earlier event of its tag and replanned that
-- lookup. This migration:
--
-- * adds eventstore.event_tags, one row per (event, tag), keyed by (organization,
--   tag, position): a condition finds "an event with this tag after position P" with
--   one B-tree range probe, however many events the tag already has;
-- * rewrites append() and append_to_stream() as three statements: one that validates
--   the JSON, derives the lock keys and takes them in order, one condition probe, and
--   one INSERT of the events and their tag rows;
-- * derives lock keys from a hash seeded with the organization instead of hashing its
--   text form;
-- * checks event type names with a regular expression without a bounded repetition
--   ({0,199} compiled into a large automaton that cost more than the rest of the
--   insert) and a separate length limit;
-- * moves the commit notification from a statement trigger with a transition table
--   into the append functions;
-- * makes the append functions the only way in: they run as the schema owner
--   (SECURITY DEFINER) and the application role loses INSERT on the log, so no writer
--   can bypass the DCB locks or the position bounds readers rely on.
--
-- The locking and ordering technique is unchanged (see 20261122000000_eventstore).

CREATE TABLE eventstore.event_tags (
    organization_id uuid NOT NULL,
    tag text NOT NULL,
    -- The event (eventstore.events.position). No foreign key: append() writes both
    -- rows in one statement, events are never deleted, and the check would cost as
    -- much as the row.
    position bigint NOT NULL,
    type text NOT NULL,
    CONSTRAINT event_tags_pkey PRIMARY KEY (organization_id, tag, position)
);

COMMENT ON TABLE eventstore.event_tags IS
    'One row per (event, tag), written by append(): the index conditions are checked with';

INSERT INTO eventstore.event_tags (organization_id, tag, position, type)
SELECT e.organization_id, t.tag, e.position, e.type
FROM eventstore.events e
CROSS JOIN LATERAL (SELECT DISTINCT u.tag FROM unnest(e.tags) u(tag)) t;

ALTER TABLE eventstore.event_tags ENABLE ROW LEVEL SECURITY;
CREATE POLICY event_tags_tenant ON eventstore.event_tags
    FOR ALL TO groundwork_app, groundwork_readonly
    USING (organization_id = identity.current_org_id())
    WITH CHECK (organization_id = identity.current_org_id());
GRANT SELECT ON eventstore.event_tags TO groundwork_app, groundwork_readonly;

-- Writers go through append() and append_to_stream().
REVOKE INSERT ON eventstore.events FROM groundwork_app;
REVOKE USAGE ON SEQUENCE eventstore.events_position_seq FROM groundwork_app;

DROP TRIGGER events_notify_appended ON eventstore.events;
DROP FUNCTION eventstore.notify_appended();

-- One element of an append() argument, as a record.
CREATE TYPE eventstore.event_input AS (type text, tags text[], data jsonb, metadata jsonb);

-- Lock key of (organization, type, tag); '' stands for "any". The top two bits are
-- cleared so that no key falls into the position-bound range.
CREATE OR REPLACE FUNCTION eventstore.lock_key(p_org uuid, p_type text, p_tag text) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT hashtextextended(p_type || chr(31) || p_tag, uuid_hash(p_org)) & x'3FFFFFFFFFFFFFFF'::bigint $$;

ALTER TABLE eventstore.events
    DROP CONSTRAINT events_type_format,
    ADD CONSTRAINT events_type_format
        CHECK (type ~ '^[A-Za-z][A-Za-z0-9_.:-]*$' AND octet_length(type) <= 200);

-- Whether a JSON value is absent or an array of strings.
CREATE FUNCTION eventstore.is_string_array(p_value jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT p_value IS NULL
        OR (jsonb_typeof(p_value) = 'array'
            AND NOT jsonb_path_exists(p_value, 'strict $[*] ? (@.type() != "string")'))
$$;

-- Whether a JSON value is a query item: an object whose "types" and "tags", where
-- present, are arrays of strings.
CREATE FUNCTION eventstore.is_query_item(p_item jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT jsonb_typeof(p_item) = 'object'
       AND eventstore.is_string_array(p_item -> 'types')
       AND eventstore.is_string_array(p_item -> 'tags')
$$;

-- Raises the precise error for an invalid append() argument; called only once a
-- cheaper check has found one.
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
    ELSE
        RAISE EXCEPTION 'event % has "metadata" that is not an object', p_ordinal
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
END
$$;

CREATE FUNCTION eventstore.raise_invalid_query_item(p_item jsonb, p_ordinal bigint)
RETURNS text
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF jsonb_typeof(p_item) <> 'object' THEN
        RAISE EXCEPTION 'query item % is not a JSON object', p_ordinal
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RAISE EXCEPTION 'query item % has "types" or "tags" that are not arrays of strings', p_ordinal
        USING ERRCODE = 'invalid_parameter_value';
END
$$;


-- Reads validate query items by the same rule as appends.
CREATE OR REPLACE FUNCTION eventstore.parse_query(p_query jsonb)
RETURNS TABLE (types text[], tags text[])
LANGUAGE plpgsql IMMUTABLE
AS $$
BEGIN
    IF p_query IS NULL OR jsonb_typeof(p_query) <> 'object'
       OR jsonb_typeof(p_query -> 'items') IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'a query must be {"items": [{"types": [...], "tags": [...]}, ...]}'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    SELECT ARRAY(SELECT DISTINCT t FROM jsonb_array_elements_text(coalesce(v.item -> 'types', '[]')) t ORDER BY t),
           ARRAY(SELECT DISTINCT t FROM jsonb_array_elements_text(coalesce(v.item -> 'tags', '[]')) t ORDER BY t)
    FROM jsonb_array_elements(p_query -> 'items') WITH ORDINALITY i(item, n)
    CROSS JOIN LATERAL (
        SELECT CASE WHEN eventstore.is_query_item(i.item) THEN i.item
                    ELSE to_jsonb(eventstore.raise_invalid_query_item(i.item, i.n)) END
    ) v(item)
    ORDER BY i.n;
END
$$;

-- Validates the events and the condition's query of an append and takes its DCB
-- locks in one statement: exclusive on the query's keys (and p_exclusive_key),
-- shared on the events' keys, in key order with exclusive first, so that appends
-- cannot deadlock each other. An event carries the keys (type, ''), ('', ''), and
-- (type, tag) and ('', tag) for each tag; a query item locks (type, first tag) for
-- each of its types, '' standing for "any type" and for "no tag".
CREATE FUNCTION eventstore.lock_append(
    p_org uuid, p_events jsonb, p_query jsonb, p_exclusive_key bigint DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    IF jsonb_typeof(p_events) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'events must be a JSON array of {"type", "tags", "data", "metadata"}'
            USING ERRCODE = 'invalid_parameter_value';
    ELSIF jsonb_array_length(p_events) = 0 THEN
        RAISE EXCEPTION 'events must not be empty' USING ERRCODE = 'invalid_parameter_value';
    ELSIF p_query IS NOT NULL AND (jsonb_typeof(p_query) <> 'object'
                                   OR jsonb_typeof(p_query -> 'items') IS DISTINCT FROM 'array') THEN
        RAISE EXCEPTION 'a query must be {"items": [{"types": [...], "tags": [...]}, ...]}'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM CASE WHEN l.exclusive THEN pg_advisory_xact_lock(l.key)::text
                 ELSE pg_advisory_xact_lock_shared(l.key)::text END
    FROM (
        SELECT k.key, k.exclusive
        FROM (
            SELECT eventstore.lock_key(p_org, coalesce(t.type, ''), coalesce(i.item -> 'tags' ->> 0, '')) AS key,
                   true AS exclusive
            FROM jsonb_array_elements(p_query -> 'items') WITH ORDINALITY i(item, n)
            CROSS JOIN LATERAL (
                SELECT CASE WHEN eventstore.is_query_item(i.item) THEN i.item -> 'types'
                            ELSE to_jsonb(eventstore.raise_invalid_query_item(i.item, i.n)) END
            ) v(types)
            LEFT JOIN LATERAL jsonb_array_elements_text(v.types) t(type) ON true
            UNION ALL
            SELECT p_exclusive_key, true WHERE p_exclusive_key IS NOT NULL
            UNION ALL
            SELECT eventstore.lock_key(p_org, k.type, k.tag), false
            FROM jsonb_array_elements(p_events) WITH ORDINALITY e(event, n)
            CROSS JOIN LATERAL (
                SELECT CASE WHEN jsonb_typeof(e.event) = 'object'
                                 AND jsonb_typeof(e.event -> 'type') = 'string'
                                 AND eventstore.is_string_array(e.event -> 'tags')
                                 AND coalesce(jsonb_typeof(e.event -> 'metadata'), 'object') = 'object'
                            THEN e.event ->> 'type'
                            ELSE eventstore.raise_invalid_event(e.event, e.n) END
            ) v(type)
            CROSS JOIN LATERAL (
                SELECT v.type, '' UNION ALL SELECT '', ''
                UNION ALL
                SELECT w.type, g.tag
                FROM jsonb_array_elements_text(e.event -> 'tags') g(tag),
                     (VALUES (v.type), ('')) w(type)
            ) k(type, tag)
        ) k
        ORDER BY k.key, k.exclusive DESC
        OFFSET 0
    ) l;
END
$$;

-- Inserts validated events and their tag rows, in argument order, as one statement;
-- returns the last position. Stream events get versions p_first_version, +1, ...
CREATE FUNCTION eventstore.insert_events(
    p_org uuid, p_events jsonb,
    p_aggregate_type text DEFAULT NULL, p_aggregate_id uuid DEFAULT NULL, p_first_version integer DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    last_position bigint;
BEGIN
    -- A lower bound of the positions drawn below, held until the transaction ends
    -- (see eventstore.read_horizon).
    PERFORM pg_advisory_xact_lock_shared(eventstore.position_lock_offset()
        + coalesce(pg_sequence_last_value('eventstore.events_position_seq'::regclass), 0) + 1);
    WITH inserted AS (
        INSERT INTO eventstore.events (organization_id, type, tags, data, metadata,
                                       aggregate_type, aggregate_id, aggregate_version,
                                       correlation_id, causation_id)
        SELECT p_org, x.type,
               ARRAY(SELECT DISTINCT t.tag FROM unnest(x.tags) t(tag) ORDER BY t.tag),
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
    SELECT max(i.position) INTO last_position FROM inserted i;
    -- One notification per append, delivered at commit; the payload is the tenant.
    PERFORM pg_notify('eventstore_events', p_org::text);
    RETURN last_position;
END
$$;

CREATE OR REPLACE FUNCTION eventstore.append(p_events jsonb, p_condition jsonb DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
-- Every statement here has one right plan; never spend time replanning it.
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    org uuid := eventstore.require_tenant();
    query jsonb;
    after_position bigint := 0;
BEGIN
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
    PERFORM eventstore.lock_append(org, p_events, query);
    -- A new statement, so a snapshot taken after the locks: it sees every commit of a
    -- transaction that held a conflicting key. One B-tree probe per item: event_tags
    -- by (organization, first tag, position) when the item has tags, else the log by
    -- (organization, type, position) or (organization, position).
    IF query IS NOT NULL AND EXISTS (
        SELECT FROM jsonb_array_elements(query -> 'items') i(item)
        WHERE CASE
            WHEN jsonb_array_length(coalesce(i.item -> 'tags', '[]')) > 0 THEN EXISTS (
                SELECT FROM eventstore.event_tags t
                WHERE t.organization_id = org AND t.tag = i.item -> 'tags' ->> 0
                  AND t.position > after_position
                  AND (jsonb_array_length(coalesce(i.item -> 'types', '[]')) = 0
                       OR i.item -> 'types' ? t.type)
                  AND (jsonb_array_length(i.item -> 'tags') = 1 OR EXISTS (
                      SELECT FROM eventstore.events e
                      WHERE e.position = t.position
                        AND e.tags @> ARRAY(SELECT jsonb_array_elements_text(i.item -> 'tags')))))
            WHEN jsonb_array_length(coalesce(i.item -> 'types', '[]')) > 0 THEN EXISTS (
                SELECT FROM eventstore.events e
                WHERE e.organization_id = org
                  AND e.type = ANY (ARRAY(SELECT jsonb_array_elements_text(i.item -> 'types')))
                  AND e.position > after_position)
            ELSE EXISTS (
                SELECT FROM eventstore.events e
                WHERE e.organization_id = org AND e.position > after_position)
            END) THEN
        RAISE EXCEPTION 'append condition failed: an event matching the query exists after position %',
            after_position USING ERRCODE = 'GWC01';
    END IF;
    RETURN eventstore.insert_events(org, p_events);
END
$$;

CREATE OR REPLACE FUNCTION eventstore.append_to_stream(
    p_aggregate_type text, p_aggregate_id uuid, p_expected_version integer, p_events jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    org uuid := eventstore.require_tenant();
    actual integer;
BEGIN
    -- One writer per stream at a time; others wait and then see the new version.
    PERFORM eventstore.lock_append(org, p_events, NULL,
                                   eventstore.lock_key(org, 'stream', p_aggregate_id::text));
    SELECT coalesce(max(e.aggregate_version), 0) INTO actual
    FROM eventstore.events e WHERE e.aggregate_id = p_aggregate_id;
    IF actual <> p_expected_version THEN
        RAISE EXCEPTION 'stream %/% is at version %, not the expected %',
            p_aggregate_type, p_aggregate_id, actual, p_expected_version
            USING ERRCODE = 'GWC02', DETAIL = format('actual version: %s', actual);
    END IF;
    RETURN eventstore.insert_events(org, p_events, p_aggregate_type, p_aggregate_id,
                                    p_expected_version + 1);
END
$$;

DROP FUNCTION eventstore.any_match(uuid, jsonb, bigint);
DROP FUNCTION eventstore.lock_keys(uuid, eventstore.new_event[], jsonb);
DROP FUNCTION eventstore.announce_positions();
DROP FUNCTION eventstore.parse_events(jsonb);
DROP TYPE eventstore.new_event;

GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA eventstore TO groundwork_app;
-- The appends run as the owner: only the application role may call them, and nobody
-- may insert rows without their locks.
REVOKE EXECUTE ON FUNCTION eventstore.append(jsonb, jsonb),
                           eventstore.append_to_stream(text, uuid, integer, jsonb)
    FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION eventstore.insert_events(uuid, jsonb, text, uuid, integer)
    FROM PUBLIC, groundwork_app;
