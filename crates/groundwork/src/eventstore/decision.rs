//! A Dynamic Consistency Boundary decision in two round trips.
//!
//! A decision reads the events its rule depends on, decides, and appends the events
//! it decided on the condition that nothing matching was appended after what it read.
//! Done in a transaction that is four round trips (`BEGIN`, the tenant and the read,
//! the append, `COMMIT`). [`decide`] needs no transaction around the read and the
//! append: each statement of a READ COMMITTED transaction reads its own snapshot
//! anyway, and what keeps the decision consistent is the append's condition, checked
//! under the append's locks against the latest commits. So the read is one statement
//! that sets the tenant for its own transaction and reads, and the conditional append
//! one statement that sets the tenant and appends, committed when it returns: one
//! round trip each, and nothing for the server to parse, plan or answer besides them.
//! When the condition fails (another writer appended a matching event), nothing was
//! written, and the decision is read and taken again as often as the [`RetryPolicy`]
//! allows.
//!
//! A decision dropped half-way (its future cancelled between the two round trips)
//! leaves nothing behind: no transaction is open between them, and an append whose
//! answer was never awaited either committed whole or wrote nothing.
//!
//! Through a transaction pooler ([`PoolMode::Transaction`](crate::pool::PoolMode)) a
//! statement prepared once may not exist on the server connection a later statement
//! gets, so there a decision runs in a transaction that prepares its statements
//! inside it, and takes four round trips.

use serde_json::Value;

use super::{AppendCondition, EventStoreError, NewEvent, Query};
use crate::Error;
use crate::queries::eventstore::events::{Event, event_append_as_tenant, event_read_as_tenant};
use crate::tenant::{Tenant, context_values};

/// What a decision made of the events it read.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision<T> {
    /// Append these events (on the condition that nothing matching the query was
    /// appended after what was read), and return `value`.
    Append {
        /// The events to append; empty appends nothing.
        events: Vec<NewEvent>,
        /// What the caller gets back when the append commits.
        value: T,
    },
    /// Append nothing and return `value` (a refusal by the caller's rule, or a
    /// decision that changes nothing).
    Done(T),
}

/// How often a decision whose condition failed is read and taken again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, at least 1 (1: never retry).
    pub max_attempts: u32,
}

impl RetryPolicy {
    /// Take the decision once: a failed condition is returned as
    /// [`EventStoreError::ConditionFailed`].
    pub const NEVER: Self = Self { max_attempts: 1 };

    /// Up to `max_attempts` attempts in all.
    pub fn attempts(max_attempts: u32) -> Self {
        Self {
            max_attempts: max_attempts.max(1),
        }
    }
}

impl Default for RetryPolicy {
    /// Three attempts: a decision loses to a concurrent writer rarely, twice in a row
    /// more rarely still.
    fn default() -> Self {
        Self::attempts(3)
    }
}

/// What [`decide`] returns.
#[derive(Clone, Debug, PartialEq)]
pub struct Decided<T> {
    /// The value of the decision that was taken.
    pub value: T,
    /// The position of the last event appended, if any.
    pub position: Option<i64>,
    /// How many attempts it took (1 unless a condition failed).
    pub attempts: u32,
}

/// Takes a DCB decision for `tenant` in two round trips: reads the events matching
/// `query`, calls `rule` with them, and appends what it decided on the condition that
/// no event matching `query` was appended after the last one read; retried under
/// `policy` when that condition fails. The read and the append each run in a
/// transaction of their own, at the connection's default isolation level: an append
/// needs READ COMMITTED (PostgreSQL's default) and refuses any other with SQLSTATE
/// 25000.
///
/// ```no_run
/// use groundwork::eventstore::{Decision, NewEvent, Query, RetryPolicy, decide};
/// use groundwork::tenant::Tenant;
///
/// # async fn example(mut client: deadpool_postgres::Client, org: uuid::Uuid) -> Result<(), groundwork::eventstore::EventStoreError> {
/// let course = Query::item(["CourseCreated", "StudentSubscribed"], ["course:42"]);
/// let decided = decide(&mut client, Tenant::organization(org), &course, RetryPolicy::default(), |events| {
///     let subscribed = events.iter().filter(|e| e.r#type == "StudentSubscribed").count();
///     if subscribed >= 30 {
///         return Decision::Done(false); // full: refused by the rule, nothing appended
///     }
///     Decision::Append {
///         events: vec![NewEvent::new("StudentSubscribed", serde_json::json!({"student": "s1"}))
///             .tagged(["course:42", "student:s1"])],
///         value: true,
///     }
/// })
/// .await?;
/// println!("subscribed: {} after {} attempt(s)", decided.value, decided.attempts);
/// # Ok(())
/// # }
/// ```
pub async fn decide<T, F>(
    client: &mut deadpool_postgres::Client,
    tenant: Tenant,
    query: &Query,
    policy: RetryPolicy,
    mut rule: F,
) -> Result<Decided<T>, EventStoreError>
where
    F: FnMut(&[Event]) -> Decision<T>,
{
    if crate::pool::is_transaction_pooled(&client.statement_cache) {
        return decide_in_transaction(client, tenant, query, policy, rule).await;
    }
    let client: &deadpool_postgres::Client = client;
    let (organization_id, user_id) = context_values(tenant);
    let read = event_read_as_tenant()
        .prepare(client)
        .await
        .map_err(Error::from)?;
    let append = event_append_as_tenant()
        .prepare(client)
        .await
        .map_err(Error::from)?;
    let query_json = query.to_json();
    let mut attempt = 0;
    loop {
        attempt += 1;
        // Round trip 1: the read, with the tenant, in a transaction of its own.
        let events = read
            .bind(
                client,
                &organization_id,
                &user_id,
                &query_json,
                &0,
                &None::<i32>,
            )
            .all()
            .await
            .map_err(Error::from)?;
        let after = events.last().map(|e| e.position);
        let (events_to_append, value) = match rule(&events) {
            Decision::Done(value) => (Vec::new(), value),
            Decision::Append { events, value } => (events, value),
        };
        if events_to_append.is_empty() {
            return Ok(Decided {
                value,
                position: None,
                attempts: attempt,
            });
        }
        // Round trip 2: the conditional append, with the tenant, committed on its own.
        let condition = AppendCondition {
            fail_if_events_match: query.clone(),
            after,
        };
        let events_json = serde_json::to_value(&events_to_append).unwrap_or(Value::Null);
        let condition_json = serde_json::to_value(&condition).ok();
        let appended = append
            .bind(
                client,
                &condition_json,
                &organization_id,
                &user_id,
                &events_json,
            )
            .one()
            .await;
        match appended.map_err(EventStoreError::from) {
            Ok(position) => {
                return Ok(Decided {
                    value,
                    position: Some(position),
                    attempts: attempt,
                });
            }
            Err(EventStoreError::ConditionFailed(_)) if attempt < policy.max_attempts => continue,
            Err(error) => return Err(error),
        }
    }
}

/// [`decide`] through a transaction pooler: every statement prepared and run inside
/// the decision's transaction.
async fn decide_in_transaction<T, F>(
    client: &mut deadpool_postgres::Client,
    tenant: Tenant,
    query: &Query,
    policy: RetryPolicy,
    mut rule: F,
) -> Result<Decided<T>, EventStoreError>
where
    F: FnMut(&[Event]) -> Decision<T>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        let tx = crate::tenant::begin(client, tenant).await?;
        let events = super::read(&tx, query, 0, None).await?;
        let after = events.last().map(|e| e.position);
        let (events_to_append, value) = match rule(&events) {
            Decision::Done(value) => (Vec::new(), value),
            Decision::Append { events, value } => (events, value),
        };
        if events_to_append.is_empty() {
            crate::pool::commit(tx).await?;
            return Ok(Decided {
                value,
                position: None,
                attempts: attempt,
            });
        }
        let condition = AppendCondition {
            fail_if_events_match: query.clone(),
            after,
        };
        match super::append(&tx, &events_to_append, Some(&condition)).await {
            Ok(position) => {
                crate::pool::commit(tx).await?;
                return Ok(Decided {
                    value,
                    position: Some(position),
                    attempts: attempt,
                });
            }
            Err(EventStoreError::ConditionFailed(_)) if attempt < policy.max_attempts => {
                drop(tx);
                continue;
            }
            Err(error) => return Err(error),
        }
    }
}
