-- Why: undoes 20261126000000_eventstore_static_read: reads plan a statement built from
-- the query's values again, and event_tags' key no longer carries the type.

ALTER TABLE eventstore.event_tags
    DROP CONSTRAINT event_tags_pkey,
    ADD CONSTRAINT event_tags_pkey PRIMARY KEY (organization_id, tag, position);

CREATE OR REPLACE FUNCTION eventstore.query_events(p_query jsonb, p_after bigint, p_max_count integer, p_below bigint)
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
