--: Event(aggregate_type?, aggregate_id?, aggregate_version?, correlation_id?, causation_id?)

--- Atomic; with a condition, fails with SQLSTATE WE001 when a matching event exists
--- after the condition's position. Locks (advisory) the keys the condition and the
--- events touch until the transaction ends.
--! event_append (condition?)
SELECT eventstore.append(:events, :condition) AS position;

--- event_append in a statement of its own, outside any transaction: the tenant
--- (organization and user ids as text, '' for none) is set for the statement's own
--- transaction before the append runs. One round trip; commits when it returns.
--! event_append_as_tenant (condition?)
SELECT eventstore.append(t.events, :condition) AS position
FROM (SELECT set_config('app.current_org_id', :organization_id, true),
             set_config('app.current_user_id', :user_id, true),
             :events::jsonb AS events
      -- A fence: the subquery (and so the tenant) is evaluated first.
      OFFSET 0) AS t;

--- Optimistic concurrency: fails with SQLSTATE WE002 unless the tenant's stream is at
--- expected_version. Serialises writers of the same stream.
--! event_append_to_stream
SELECT eventstore.append_to_stream(:aggregate_type, :aggregate_id, :expected_version, :events)
    AS position;

--- Position order, never past the read horizon: a reader that has read up to P never
--- later sees a new event at a position <= P.
--! event_read (max_count?) : Event
SELECT position, event_id, organization_id, type, tags, data, metadata, aggregate_type,
       aggregate_id, aggregate_version, correlation_id, causation_id, recorded_at
FROM eventstore.read(:query, :after, :max_count);

--- event_read in a statement of its own, outside any transaction: the tenant
--- (organization and user ids as text, '' for none) is set for the statement's own
--- transaction before the read runs (the read takes the query from it).
--! event_read_as_tenant (max_count?) : Event
SELECT e.position, e.event_id, e.organization_id, e.type, e.tags, e.data, e.metadata,
       e.aggregate_type, e.aggregate_id, e.aggregate_version, e.correlation_id,
       e.causation_id, e.recorded_at
FROM (SELECT set_config('app.current_org_id', :organization_id, true),
             set_config('app.current_user_id', :user_id, true),
             :query::jsonb AS query
      OFFSET 0) AS t,
     LATERAL eventstore.read(t.query, :after, :max_count) AS e;

--- The tenant's read horizon, computed on the primary, and the primary's WAL position
--- after it: a standby that has replayed that position reads below the horizon
--- (event_read_below) without skipping an event. Fails with WE003 on a standby.
--! event_read_horizon
SELECT eventstore.read_horizon() AS below, pg_current_wal_insert_lsn()::text AS lsn;

--- Position order, below a horizon computed on the primary (event_read_horizon): the
--- read for a standby, where the horizon cannot be computed.
--! event_read_below (max_count?) : Event
SELECT position, event_id, organization_id, type, tags, data, metadata, aggregate_type,
       aggregate_id, aggregate_version, correlation_id, causation_id, recorded_at
FROM eventstore.read_below(:query, :after, :below, :max_count);

--- The current tenant's stream, in version order.
--! event_read_stream : Event
SELECT position, event_id, organization_id, type, tags, data, metadata, aggregate_type,
       aggregate_id, aggregate_version, correlation_id, causation_id, recorded_at
FROM eventstore.events
WHERE organization_id = identity.current_org_id()
  AND aggregate_id = :aggregate_id AND aggregate_version > :after_version
ORDER BY aggregate_version;

--! event_stream_version
SELECT coalesce(max(aggregate_version), 0) AS version
FROM eventstore.events
WHERE organization_id = identity.current_org_id() AND aggregate_id = :aggregate_id;

--- Position order, never past the read horizon.
--! event_read_by_type (max_count?) : Event
SELECT position, event_id, organization_id, type, tags, data, metadata, aggregate_type,
       aggregate_id, aggregate_version, correlation_id, causation_id, recorded_at
FROM eventstore.read(jsonb_build_object('items', jsonb_build_array(
         jsonb_build_object('types', jsonb_build_array(:type::text)))), :after, :max_count);
