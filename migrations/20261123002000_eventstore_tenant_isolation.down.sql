-- Why: undoes 20261123002000_eventstore_tenant_isolation, restoring the global lock
-- keys, horizon and notification channel. Fails if two tenants have streams with the
-- same aggregate id and version, which the global key forbade.

DROP FUNCTION eventstore.notification_channel();
DROP FUNCTION eventstore.insert_events(uuid, eventstore.tenant_keys, boolean, jsonb, text, uuid, integer);
DROP FUNCTION eventstore.lock_append(integer, jsonb, jsonb, bigint);
DROP FUNCTION eventstore.tenant_key(uuid);
DROP FUNCTION eventstore.lock_key(integer, text, text);
DROP TRIGGER organizations_event_store_keys ON identity.organizations;
DROP FUNCTION eventstore.organization_keys();

CREATE FUNCTION eventstore.position_lock_offset() RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT x'4756455600000000'::bigint $$;

CREATE OR REPLACE FUNCTION eventstore.read_horizon() RETURNS bigint
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

CREATE FUNCTION eventstore.lock_key(p_org uuid, p_type text, p_tag text) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT hashtextextended(p_type || chr(31) || p_tag, uuid_hash(p_org)) & x'3FFFFFFFFFFFFFFF'::bigint $$;

CREATE OR REPLACE FUNCTION eventstore.is_query_item(p_item jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT jsonb_typeof(p_item) = 'object'
       AND eventstore.is_string_array(p_item -> 'types')
       AND eventstore.is_string_array(p_item -> 'tags')
$$;

CREATE OR REPLACE FUNCTION eventstore.raise_invalid_event(p_event jsonb, p_ordinal bigint)
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

CREATE OR REPLACE FUNCTION eventstore.raise_invalid_query_item(p_item jsonb, p_ordinal bigint)
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

DROP FUNCTION eventstore.check_query(jsonb);
DROP FUNCTION eventstore.valid_tag(text, bigint);
DROP FUNCTION eventstore.is_event(jsonb);
DROP FUNCTION eventstore.json_size(jsonb);

ALTER TABLE eventstore.events
    DROP CONSTRAINT events_stream_version_key,
    ADD CONSTRAINT events_aggregate_id_version_key UNIQUE (aggregate_id, aggregate_version);

DROP TABLE eventstore.tenant_keys;

REVOKE ALL ON FUNCTION eventstore.insert_events(uuid, jsonb, text, uuid, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION eventstore.position_lock_offset(),
    eventstore.lock_key(uuid, text, text),
    eventstore.lock_append(uuid, jsonb, jsonb, bigint)
    TO groundwork_app;
CREATE OR REPLACE FUNCTION eventstore.read(p_query jsonb, p_after bigint DEFAULT 0, p_max_count integer DEFAULT NULL)
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

REVOKE ALL ON FUNCTION eventstore.read_horizon(), eventstore.read(jsonb, bigint, integer)
    FROM groundwork_readonly;
GRANT EXECUTE ON FUNCTION eventstore.read_horizon(), eventstore.read(jsonb, bigint, integer)
    TO PUBLIC, groundwork_app;

SELECT public.groundwork_set_owner('eventstore', 'groundwork_owner');
