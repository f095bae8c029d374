//! A Dynamic Consistency Boundary decision in two round trips.
//!
//! A decision reads the events its rule depends on, decides, and appends the events
//! it decided on the condition that nothing matching was appended after what it read.
//! Done with separate statements that is four round trips (`BEGIN`, the tenant and the
//! read, the append, `COMMIT`). [`decide`] sends `BEGIN`, the tenant context and the
//! read together and waits once, then sends the conditional append and `COMMIT`
//! together and waits once more: tokio-postgres writes requests in the order they are
//! first polled and the server answers them in that order, so nothing is lost by not
//! waiting in between. When the condition fails (another writer appended a matching
//! event), the transaction is already rolled back by the time `COMMIT` answers, and the
//! decision is read and taken again as often as the [`RetryPolicy`] allows.
//!
//! Through a transaction pooler ([`PoolMode::Transaction`](crate::pool::PoolMode)) a
//! statement prepared before `BEGIN` may not exist on the server connection the
//! transaction gets, so there a decision prepares inside its transaction and takes
//! four round trips.
//!
//! A decision dropped half-way (its future cancelled between the two round trips)
//! leaves no open transaction behind: a guard sends `ROLLBACK` on the connection, as a
//! dropped tokio-postgres transaction does, before the connection goes back to its
//! pool.

use futures::FutureExt;
use serde_json::Value;

use super::{AppendCondition, EventStoreError, NewEvent, Query};
use crate::Error;
use crate::queries::eventstore::events::{Event, event_append, event_read};
use crate::tenant::{Tenant, context_statement};

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

/// Rolls back the transaction it guards unless defused: a decision dropped half-way
/// never leaves a transaction open on a pooled connection.
struct OpenTransaction<'c> {
    client: Option<&'c deadpool_postgres::Client>,
}

impl OpenTransaction<'_> {
    fn closed(&mut self) {
        self.client = None;
    }
}

impl Drop for OpenTransaction<'_> {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            // The first poll writes the request; its answer is discarded.
            let _ = client.batch_execute("ROLLBACK").now_or_never();
        }
    }
}

/// Takes a DCB decision for `tenant` in two round trips: reads the events matching
/// `query`, calls `rule` with them, and appends what it decided on the condition that
/// no event matching `query` was appended after the last one read; retried under
/// `policy` when that condition fails. The transaction is READ COMMITTED, as appends
/// need.
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
    let context = context_statement(tenant);
    // Prepared (and cached on the connection) before anything is pipelined: a statement
    // prepared inside the pipeline would wait for its answer while COMMIT went ahead.
    let read = event_read().prepare(client).await.map_err(Error::from)?;
    let append = event_append().prepare(client).await.map_err(Error::from)?;
    let query_json = query.to_json();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut open = OpenTransaction {
            client: Some(client),
        };
        // Round trip 1: BEGIN, the tenant context and the read, answered in order.
        let (begun, context_set, events) = futures::join!(
            client.batch_execute("BEGIN ISOLATION LEVEL READ COMMITTED"),
            client.batch_execute(&context),
            read.bind(client, &query_json, &0, &None::<i32>).all(),
        );
        begun.map_err(Error::from)?;
        context_set.map_err(Error::from)?;
        let events = events.map_err(Error::from)?;
        let after = events.last().map(|e| e.position);
        let (events_to_append, value) = match rule(&events) {
            Decision::Done(value) => (Vec::new(), value),
            Decision::Append { events, value } => (events, value),
        };
        if events_to_append.is_empty() {
            client.batch_execute("COMMIT").await.map_err(Error::from)?;
            open.closed();
            return Ok(Decided {
                value,
                position: None,
                attempts: attempt,
            });
        }
        // Round trip 2: the conditional append and COMMIT. When the append fails, the
        // server answers COMMIT with a rollback.
        let condition = AppendCondition {
            fail_if_events_match: query.clone(),
            after,
        };
        let events_json = serde_json::to_value(&events_to_append).unwrap_or(Value::Null);
        let condition_json = serde_json::to_value(&condition).ok();
        let (appended, committed) = futures::join!(
            append.bind(client, &events_json, &condition_json).one(),
            client.batch_execute("COMMIT"),
        );
        open.closed();
        match appended.map_err(EventStoreError::from) {
            Ok(position) => {
                committed.map_err(Error::from)?;
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
