//! The event store: one log for Dynamic Consistency Boundary events (type + tags)
//! and per-aggregate streams, in the `eventstore` schema, per tenant.
//!
//! The SQL functions `eventstore.append(events, condition)`,
//! `eventstore.append_to_stream(...)` and `eventstore.read(query, after, max_count)`
//! are the API for any client; this module wraps them with typed arguments. Both
//! appends need a READ COMMITTED transaction with a tenant context
//! ([`crate::tenant`]); reads work for the application and read-only roles.
//!
//! **Consistent decisions.** An append takes transaction-scoped advisory locks in its
//! tenant's lock space, on keys named by tag (or by type, for query items without
//! tags): exclusive on the keys through which its condition could be invalidated,
//! shared on the keys of the events it writes, in one sorted acquisition. Any event
//! that matches a query item carries the item's key, so a conflicting append waits for
//! the deciding transaction and then sees its events; appends that match nobody's
//! condition take only shared locks and run in parallel, and so do decisions about
//! different tags. The condition is then checked in a snapshot taken after
//! the locks, with one B-tree probe per query item: `eventstore.event_tags` holds a
//! row per (event, tag) keyed by (organization, tag, position), so "an event with this
//! tag after position P" costs the same however many events the tag already has. A
//! failed condition raises SQLSTATE `WE001` ([`EventStoreError::ConditionFailed`]); a
//! stream append at the wrong version `WE002` ([`EventStoreError::VersionConflict`]).
//!
//! **Decisions in two round trips.** [`decide`] reads, calls the caller's rule and
//! appends what it decided on the condition that nothing matching was appended after
//! what it read, sending `BEGIN` with the read and the append with `COMMIT`, and
//! retries under a [`RetryPolicy`] when the condition fails.
//!
//! **Bounded locks.** A transaction takes at most 32 keys per tenant; the append that
//! would take more locks its tenant's whole space exclusively instead, and so do the
//! transaction's later appends. However large, a transaction holds a few advisory
//! locks. The advisory-lock functions are revoked from `PUBLIC`, so only the append
//! functions (running as the schema owner) can take these locks.
//!
//! **The only way in.** The append functions run as the schema owner; the application
//! role cannot insert into the log itself, so no writer bypasses the locks, the tag
//! rows or the position bounds below.
//!
//! **No skipped events.** Positions come from a sequence at insert time, so
//! transactions can commit out of position order. Before drawing positions, a
//! transaction's first append for a tenant holds, until it ends, a shared advisory
//! lock in the tenant's space whose key encodes a lower bound of its positions. `read`
//! first computes the tenant's horizon (the lowest bound its in-flight appends hold,
//! capped by the sequence) and then, in a newer snapshot, returns only events below
//! it: a reader that has read up to P never later sees a new event at a position
//! <= P. A reader may lag behind a long-running append of its own tenant; it never
//! skips past it, and never waits for another tenant.
//!
//! **Limits.** An append holds at most 1,000 events and 8 MiB; an event at most
//! 1 MiB and 64 tags of 1 to 256 bytes; a query at most 100 items. Over a limit the
//! append fails with SQLSTATE `54000` ([`crate::Error::LimitExceeded`]); malformed
//! input with `22023` ([`crate::Error::Invalid`]). Nothing is written either way.

use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

mod decision;

pub use decision::{Decided, Decision, RetryPolicy, decide};

use crate::Error;
use crate::client::async_::{GenericClient, Params};
use crate::error::{Violation, converts_from_driver_errors};
use crate::pool::Lsn;
use crate::queries::eventstore::events::{
    Event, EventAppendToStreamParams, EventReadBelowParams, event_append, event_append_to_stream,
    event_read, event_read_below, event_read_horizon, event_read_stream,
};

/// An event to append.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NewEvent {
    /// The event type, for example `StudentSubscribed`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Tags the event is found by, for example `course:42`.
    pub tags: Vec<String>,
    /// The payload.
    pub data: Value,
    /// Metadata; `correlation_id` and `causation_id` (UUIDs) go to their own columns.
    pub metadata: Value,
}

impl NewEvent {
    /// An event with `data`, no tags and empty metadata.
    pub fn new(event_type: impl Into<String>, data: Value) -> Self {
        Self {
            event_type: event_type.into(),
            tags: Vec::new(),
            data,
            metadata: Value::Object(Default::default()),
        }
    }

    /// Adds tags.
    pub fn tagged<I: IntoIterator<Item = S>, S: Into<String>>(mut self, tags: I) -> Self {
        self.tags.extend(tags.into_iter().map(Into::into));
        self
    }

    /// Sets the metadata.
    pub fn with_metadata(mut self, metadata: Value) -> Self {
        self.metadata = metadata;
        self
    }
}

/// One alternative of a [`Query`]: any of `types` and all of `tags` (an empty list
/// does not constrain).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct QueryItem {
    /// Event types, any of which matches.
    pub types: Vec<String>,
    /// Tags, all of which must be present.
    pub tags: Vec<String>,
}

/// Which events a read or a condition concerns: the items are OR'ed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Query {
    /// The alternatives.
    pub items: Vec<QueryItem>,
}

impl Query {
    /// A query with one item.
    pub fn item<T, G>(types: T, tags: G) -> Self
    where
        T: IntoIterator,
        T::Item: Into<String>,
        G: IntoIterator,
        G::Item: Into<String>,
    {
        Self {
            items: vec![QueryItem {
                types: types.into_iter().map(Into::into).collect(),
                tags: tags.into_iter().map(Into::into).collect(),
            }],
        }
    }

    /// Every event.
    pub fn all() -> Self {
        Self {
            items: vec![QueryItem::default()],
        }
    }

    /// Adds an alternative.
    pub fn or(mut self, item: QueryItem) -> Self {
        self.items.push(item);
        self
    }

    fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// Fail the append if an event matching `fail_if_events_match` exists after `after`
/// (anywhere, when `after` is `None`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AppendCondition {
    /// The events that would invalidate the decision.
    pub fail_if_events_match: Query,
    /// The position the decision was based on.
    pub after: Option<i64>,
}

/// SQLSTATE raised by `eventstore.append` when its condition matches an event.
pub const CONDITION_FAILED: &str = "WE001";
/// SQLSTATE raised by `eventstore.append_to_stream` on a stale expected version; the
/// detail is `{"aggregate_id", "expected_version", "actual_version"}`.
pub const VERSION_CONFLICT: &str = "WE002";
/// SQLSTATE raised by `eventstore.read_horizon` (and so `eventstore.read`) on a
/// standby, which cannot compute a horizon: read with [`read_below`] and a horizon
/// computed on the primary ([`read_horizon`]).
pub const HORIZON_ON_STANDBY: &str = "WE003";

/// Why an event-store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EventStoreError {
    /// The append's condition matched an event after its position (SQLSTATE WE001): the
    /// decision it guarded is stale; read again and decide again. Nothing was written.
    #[error("append condition failed: {0}")]
    ConditionFailed(Box<Violation>),
    /// The stream was not at the expected version (SQLSTATE WE002); nothing was
    /// written.
    #[error("stream {aggregate_id} is at version {actual}, not the expected {expected}")]
    VersionConflict {
        /// The stream.
        aggregate_id: Uuid,
        /// What the caller expected.
        expected: i32,
        /// What it is.
        actual: i32,
        /// The server's report.
        violation: Box<Violation>,
    },
    /// A read horizon was asked of a standby (SQLSTATE WE003): it has neither the
    /// primary's in-flight appends nor its sequence's position, so a horizon computed
    /// there could let a reader skip an event. Compute it on the primary
    /// ([`read_horizon`]) and read with [`read_below`].
    #[error("the event store's read horizon cannot be computed on a standby: {0}")]
    NeedsPrimaryHorizon(Box<Violation>),
    /// Anything else.
    #[error(transparent)]
    Database(Error),
}

impl EventStoreError {
    /// The server's report, if there is one.
    pub fn violation(&self) -> Option<&Violation> {
        match self {
            Self::ConditionFailed(v)
            | Self::VersionConflict { violation: v, .. }
            | Self::NeedsPrimaryHorizon(v) => Some(v),
            Self::Database(e) => e.violation(),
        }
    }

    /// The SQLSTATE, if the server reported one.
    pub fn code(&self) -> Option<&tokio_postgres::error::SqlState> {
        self.violation().map(|v| &v.code)
    }

    /// The name of the constraint that rejected the row, if any.
    pub fn constraint(&self) -> Option<&str> {
        self.violation().and_then(|v| v.constraint.as_deref())
    }
}

impl From<Error> for EventStoreError {
    fn from(error: Error) -> Self {
        if let Some(v) = error.raised(CONDITION_FAILED) {
            return Self::ConditionFailed(Box::new(v.clone()));
        }
        if let Some(v) = error.raised(HORIZON_ON_STANDBY) {
            return Self::NeedsPrimaryHorizon(Box::new(v.clone()));
        }
        let conflict = error.raised(VERSION_CONFLICT).and_then(|v| {
            let detail = v.detail_json()?;
            let version = |key: &str| detail.get(key)?.as_i64()?.try_into().ok();
            Some(Self::VersionConflict {
                aggregate_id: detail.get("aggregate_id")?.as_str()?.parse().ok()?,
                expected: version("expected_version")?,
                actual: version("actual_version")?,
                violation: Box::new(v.clone()),
            })
        });
        conflict.unwrap_or(Self::Database(error))
    }
}

converts_from_driver_errors!(EventStoreError);

impl From<EventStoreError> for Error {
    fn from(error: EventStoreError) -> Self {
        match error {
            EventStoreError::ConditionFailed(v)
            | EventStoreError::VersionConflict { violation: v, .. }
            | EventStoreError::NeedsPrimaryHorizon(v) => Error::Database(v),
            EventStoreError::Database(e) => e,
        }
    }
}

/// Appends `events` atomically and returns the position of the last one. With a
/// condition, fails with [`EventStoreError::ConditionFailed`] and writes nothing when
/// it matches.
pub async fn append<C: GenericClient>(
    client: &C,
    events: &[NewEvent],
    condition: Option<&AppendCondition>,
) -> Result<i64, EventStoreError> {
    let events = serde_json::to_value(events).unwrap_or(Value::Null);
    let condition = condition.map(|c| serde_json::to_value(c).unwrap_or(Value::Null));
    Ok(event_append()
        .bind(client, &events, &condition)
        .one()
        .await?)
}

/// An append to an aggregate's stream.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StreamAppend<'a> {
    /// The aggregate's type, for example `cart`; a stream keeps its first.
    pub aggregate_type: &'a str,
    /// The aggregate: the stream's id within the tenant.
    pub aggregate_id: Uuid,
    /// The version the stream must be at: 0 for a new stream.
    pub expected_version: i32,
    /// The events, which get versions `expected_version + 1`, `+ 2`, ...
    pub events: &'a [NewEvent],
}

/// Appends to the current tenant's stream: the stream must be at the expected
/// version and of the aggregate type; returns the last position.
pub async fn append_to_stream<C: GenericClient>(
    client: &C,
    append: &StreamAppend<'_>,
) -> Result<i64, EventStoreError> {
    let StreamAppend {
        aggregate_type,
        aggregate_id,
        expected_version,
        events,
    } = *append;
    let json = serde_json::to_value(events).unwrap_or(Value::Null);
    Ok(event_append_to_stream()
        .params(
            client,
            &EventAppendToStreamParams {
                aggregate_type,
                aggregate_id,
                expected_version,
                events: json,
            },
        )
        .one()
        .await?)
}

/// Events matching `query` after position `after`, in position order. On a standby it
/// fails with [`EventStoreError::NeedsPrimaryHorizon`]: use [`read_below`].
pub async fn read<C: GenericClient>(
    client: &C,
    query: &Query,
    after: i64,
    max_count: Option<i32>,
) -> Result<Vec<Event>, EventStoreError> {
    Ok(event_read()
        .bind(client, &query.to_json(), &after, &max_count)
        .all()
        .await?)
}

/// How far a reader may read without skipping an event, computed on the primary: the
/// tenant's read horizon and the primary's WAL position after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadHorizon {
    /// Events at positions below this are final.
    pub below: i64,
    /// A standby that has replayed this far has every event below `below`.
    pub lsn: Lsn,
}

/// The current tenant's read horizon, on the primary (on a standby it fails with
/// [`EventStoreError::NeedsPrimaryHorizon`]). For reads on a read replica: run
/// [`read_below`] there once it has replayed `lsn`
/// ([`ReplicatedPool::read`](crate::pool::ReplicatedPool::read) with `Some(lsn)`).
pub async fn read_horizon<C: GenericClient>(client: &C) -> Result<ReadHorizon, EventStoreError> {
    let row = event_read_horizon().bind(client).one().await?;
    let lsn = row.lsn.parse().map_err(|_| {
        EventStoreError::Database(Error::Decode(serde_json::Error::io(std::io::Error::other(
            format!("the server's WAL position {:?}", row.lsn),
        ))))
    })?;
    Ok(ReadHorizon {
        below: row.below,
        lsn,
    })
}

/// Events matching `query` after position `after` and below `horizon` (computed on
/// the primary by [`read_horizon`]), in position order: the read for a standby that
/// has replayed `horizon.lsn`. A reader that has read up to P never later sees a new
/// event at a position <= P, as with [`read`].
pub async fn read_below<C: GenericClient>(
    client: &C,
    query: &Query,
    after: i64,
    horizon: &ReadHorizon,
    max_count: Option<i32>,
) -> Result<Vec<Event>, EventStoreError> {
    Ok(event_read_below()
        .params(
            client,
            &EventReadBelowParams {
                query: query.to_json(),
                after,
                below: horizon.below,
                max_count,
            },
        )
        .all()
        .await?)
}

/// The events of the current tenant's stream after `after_version`, in version order.
pub async fn read_stream<C: GenericClient>(
    client: &C,
    aggregate_id: Uuid,
    after_version: i32,
) -> Result<Vec<Event>, EventStoreError> {
    Ok(event_read_stream()
        .bind(client, &aggregate_id, &after_version)
        .all()
        .await?)
}
