-- Why: a hot standby has no pg_locks of the primary's appends and its sequence is
-- WAL-logged ahead, so a read horizon computed there could pass an append still in
-- flight on the primary, and a reader checkpointed past it would skip its events.
-- read_horizon() now refuses to run in recovery (SQLSTATE WE003); read_below() reads
-- below a horizon the caller computed on the primary; read() is read_below() with the
-- tenant's own horizon, as before.

CREATE FUNCTION eventstore.read_below(p_query jsonb, p_after bigint, p_below bigint, p_max_count integer DEFAULT NULL::integer) RETURNS SETOF eventstore.events
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'eventstore', 'pg_temp'
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
DECLARE
    org uuid := identity.current_org_id();
    below bigint := p_below;
    after_position bigint := coalesce(p_after, 0);
    item jsonb;
    positions bigint[] := '{}';
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
    -- The positions each item matches: event_tags by (organization, first
    -- tag, position), checking the other tags on the event; the log by (organization,
    -- type, position) for an item with types only; for an item with neither, every
    -- event.
    FOR i IN 0 .. jsonb_array_length(p_query -> 'items') - 1 LOOP
        item := p_query -> 'items' -> i;
        IF item -> 'tags' -> 0 IS NOT NULL THEN
            positions := positions || ARRAY(
                SELECT t.position FROM eventstore.event_tags t
                WHERE t.organization_id = org AND t.tag = item -> 'tags' ->> 0
                  AND t.position > after_position AND t.position < below
                  AND (coalesce(jsonb_array_length(item -> 'types'), 0) = 0 OR item -> 'types' ? t.type)
                  -- A scalar subquery, one probe per row: an EXISTS here may be
                  -- planned as a hash of every event of the tenant.
                  AND (item -> 'tags' -> 1 IS NULL OR (
                      SELECT to_jsonb(e.tags) @> (item -> 'tags') FROM eventstore.events e
                      WHERE e.organization_id = org AND e.position = t.position))
                ORDER BY t.position
                LIMIT p_max_count);
        ELSIF item -> 'types' -> 0 IS NOT NULL THEN
            positions := positions || ARRAY(
                SELECT e.position FROM eventstore.events e
                WHERE e.organization_id = org
                  AND e.type = ANY (ARRAY(SELECT jsonb_array_elements_text(item -> 'types')))
                  AND e.position > after_position AND e.position < below
                ORDER BY e.position
                LIMIT p_max_count);
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
    RETURN QUERY
    SELECT e.* FROM eventstore.events e
    WHERE e.organization_id = org AND e.position = ANY (positions)
    ORDER BY e.position
    LIMIT p_max_count;
END
$$;
ALTER FUNCTION eventstore.read_below(p_query jsonb, p_after bigint, p_below bigint, p_max_count integer) OWNER TO groundwork_owner;
REVOKE ALL ON FUNCTION eventstore.read_below(p_query jsonb, p_after bigint, p_below bigint, p_max_count integer) FROM PUBLIC;
GRANT ALL ON FUNCTION eventstore.read_below(p_query jsonb, p_after bigint, p_below bigint, p_max_count integer) TO groundwork_app;
GRANT ALL ON FUNCTION eventstore.read_below(p_query jsonb, p_after bigint, p_below bigint, p_max_count integer) TO groundwork_readonly;

CREATE OR REPLACE FUNCTION eventstore.read_horizon() RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'eventstore', 'pg_temp'
    AS $$
DECLARE
    space integer;
    cap bigint;
    low bigint;
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
    -- Most of the time no append of the tenant is in flight: then the space key, which
    -- every append holds from before it draws positions until it ends, is free, and
    -- everything below the cap (read before) is final. Taken for an instant, at the
    -- session level, unless this transaction appended itself (its own hold would not
    -- conflict, and its bound counts).
    IF split_part(coalesce(current_setting('eventstore.append_locks', true), ''), ':', 1) <> space::text THEN
        -- One expression, so that nothing can interrupt between taking and releasing.
        IF (CASE WHEN pg_try_advisory_lock(space::bigint << 32)
                 THEN pg_advisory_unlock(space::bigint << 32) ELSE false END) THEN
            RETURN cap;
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

CREATE OR REPLACE FUNCTION eventstore.read(p_query jsonb, p_after bigint DEFAULT 0, p_max_count integer DEFAULT NULL::integer) RETURNS SETOF eventstore.events
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path TO 'pg_catalog', 'eventstore', 'pg_temp'
    SET plan_cache_mode TO 'force_generic_plan'
    AS $$
BEGIN
    -- The horizon first; read_below's statements come after it, with newer snapshots.
    RETURN QUERY SELECT * FROM eventstore.read_below(p_query, p_after, eventstore.read_horizon(), p_max_count);
END
$$;

-- The forms service appends and reads events as the application role does.
SELECT public.groundwork_grant_like('eventstore', 'groundwork_app', 'forms_service');
