//! The transactional outbox (`messaging.outbox_messages`).
//!
//! [`enqueue`] writes a message in the caller's transaction, so it commits (or not)
//! with the business change. A [`Relay`] claims batches with `FOR UPDATE SKIP LOCKED`
//! under a lease, in priority order, taking only the oldest pending message of each
//! partition key so that a partition is delivered in order; it hands each message to
//! a [`Publisher`], marks successes delivered and failures for a retry with
//! exponential backoff and jitter, and moves a message to dead letter (keeping the
//! last error) after its `max_attempts`. [`redrive`] puts dead letters back.
//!
//! Delivery is at least once: a relay that dies after publishing and before marking
//! leaves the message to be published again when its lease ends. Consumers
//! deduplicate by `message_id`.
//!
//! The relay works across tenants: run it on a connection whose role is a member of
//! `groundwork_relay`, which reads every tenant's messages and updates only their
//! delivery state. The application role inserts only a message's business columns;
//! partition order is per (organization, partition key), so one tenant's
//! undeliverable message holds only its own partition, until its last attempt makes
//! it a dead letter. `max_attempts` is 1 to 25, a payload at most 256 KiB.

use std::sync::Mutex;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::Value;

use crate::Error;
use crate::client::async_::GenericClient;
use crate::queries::messaging::outbox_messages::{
    OutboxMessage, outbox_message_claim, outbox_message_enqueue, outbox_message_mark_delivered,
    outbox_message_mark_failed, outbox_message_notify, outbox_message_redrive,
};

/// A message to enqueue.
#[derive(Clone, Debug, PartialEq)]
pub struct NewMessage {
    /// Where it goes.
    pub topic: String,
    /// Messages of the tenant with the same key are delivered in enqueue order.
    pub partition_key: Option<String>,
    /// The body.
    pub payload: Value,
    /// Transport headers.
    pub headers: Value,
    /// 0 (lowest) to 10 (highest); default 5.
    pub priority: i16,
    /// Attempts before the message goes to dead letter: 1 to 25, default 10.
    pub max_attempts: i32,
}

impl NewMessage {
    /// A message for `topic` with default priority and attempts.
    pub fn new(topic: impl Into<String>, payload: Value) -> Self {
        Self {
            topic: topic.into(),
            partition_key: None,
            payload,
            headers: Value::Object(Default::default()),
            priority: 5,
            max_attempts: 10,
        }
    }

    /// Orders this message after earlier ones with the same key.
    pub fn partition(mut self, key: impl Into<String>) -> Self {
        self.partition_key = Some(key.into());
        self
    }

    /// Sets the priority (0-10).
    pub fn priority(mut self, priority: i16) -> Self {
        self.priority = priority;
        self
    }

    /// Sets the attempts before dead letter.
    pub fn max_attempts(mut self, attempts: i32) -> Self {
        self.max_attempts = attempts;
        self
    }
}

/// Writes `message` in the caller's transaction (tenant from its context).
pub async fn enqueue<C: GenericClient>(
    client: &C,
    message: &NewMessage,
) -> Result<OutboxMessage, Error> {
    Ok(outbox_message_enqueue()
        .bind(
            client,
            &message.topic,
            &message.partition_key,
            &message.payload,
            &message.headers,
            &message.priority,
            &message.max_attempts,
        )
        .one()
        .await?)
}

/// Puts dead letters back in line with fresh attempts: `ids`, or all when empty.
/// Returns how many.
pub async fn redrive<C: GenericClient>(client: &C, ids: &[i64]) -> Result<u64, Error> {
    Ok(outbox_message_redrive().bind(client, &ids).await?)
}

/// Why a [`Publisher`] could not deliver a message: any error, recorded as the
/// message's `last_error`.
pub type PublishError = Box<dyn std::error::Error + Send + Sync>;

/// Delivers messages somewhere.
pub trait Publisher: Send + Sync {
    /// Publishes one message; an `Err` is recorded as the message's last error.
    fn publish<'a>(&'a self, message: &'a OutboxMessage)
    -> BoxFuture<'a, Result<(), PublishError>>;
}

/// Publishes each message as `NOTIFY <channel>, '<message as JSON>'` on its own
/// connection from `pool`.
pub struct NotifyPublisher {
    pool: deadpool_postgres::Pool,
    channel: String,
}

impl NotifyPublisher {
    /// Notifies `channel` through connections from `pool`.
    pub fn new(pool: deadpool_postgres::Pool, channel: impl Into<String>) -> Self {
        Self {
            pool,
            channel: channel.into(),
        }
    }
}

impl Publisher for NotifyPublisher {
    fn publish<'a>(
        &'a self,
        message: &'a OutboxMessage,
    ) -> BoxFuture<'a, Result<(), PublishError>> {
        Box::pin(async move {
            let mut client = self.pool.get().await.map_err(Error::from)?;
            let payload = serde_json::json!({
                "message_id": message.message_id,
                "topic": message.topic,
                "partition_key": message.partition_key,
                "payload": message.payload,
                "headers": message.headers,
            })
            .to_string();
            // A transaction of its own, so that it also works through a transaction
            // pooler; the notification is sent when it commits.
            let tx = crate::pool::transaction(&mut client).await?;
            outbox_message_notify()
                .bind(&tx, &self.channel.as_str(), &payload.as_str())
                .one()
                .await
                .map_err(Error::from)?;
            crate::pool::commit(tx).await?;
            Ok(())
        })
    }
}

/// Records what it is given, and fails on demand: for tests.
#[derive(Default)]
pub struct TestPublisher {
    delivered: Mutex<Vec<OutboxMessage>>,
    fail_topics: Mutex<Vec<String>>,
}

impl TestPublisher {
    /// A publisher that accepts everything.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every message of `topic` fail.
    pub fn fail_topic(&self, topic: &str) {
        if let Ok(mut topics) = self.fail_topics.lock() {
            topics.push(topic.to_owned());
        }
    }

    /// Stops failing.
    pub fn heal(&self) {
        if let Ok(mut topics) = self.fail_topics.lock() {
            topics.clear();
        }
    }

    /// Everything published so far, in publication order.
    pub fn delivered(&self) -> Vec<OutboxMessage> {
        self.delivered.lock().map(|d| d.clone()).unwrap_or_default()
    }
}

impl Publisher for TestPublisher {
    fn publish<'a>(
        &'a self,
        message: &'a OutboxMessage,
    ) -> BoxFuture<'a, Result<(), PublishError>> {
        Box::pin(async move {
            let failing = self
                .fail_topics
                .lock()
                .map(|t| t.contains(&message.topic))
                .unwrap_or(false);
            if failing {
                return Err(format!("topic {} is failing", message.topic).into());
            }
            self.delivered
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(message.clone());
            Ok(())
        })
    }
}

/// Relay settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RelayConfig {
    /// Messages claimed per round.
    pub batch_size: i64,
    /// How long a claim is exclusive before another relay may take the message.
    pub lease: Duration,
    /// First retry delay; doubles with each attempt.
    pub base_backoff: Duration,
    /// Longest retry delay.
    pub max_backoff: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            batch_size: 100,
            lease: Duration::from_secs(30),
            base_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
        }
    }
}

/// What one relay round did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelayRound {
    /// Messages claimed.
    pub claimed: usize,
    /// Published and marked delivered.
    pub delivered: usize,
    /// Failed and scheduled for a retry.
    pub retried: usize,
    /// Failed for the last time: now dead letters.
    pub dead: usize,
}

/// Moves messages from the outbox to a [`Publisher`].
pub struct Relay {
    pool: deadpool_postgres::Pool,
    config: RelayConfig,
}

impl Relay {
    /// A relay over connections from `pool`.
    pub fn new(pool: deadpool_postgres::Pool, config: RelayConfig) -> Self {
        Self { pool, config }
    }

    /// Claims one batch, publishes it and records the outcome of each message.
    ///
    /// The claim commits in a transaction of its own before anything is published, and
    /// the outcomes in another after, so that no transaction stays open while the
    /// publisher works and every statement runs inside an explicit transaction (which
    /// a transaction pooler needs).
    pub async fn run_once(&self, publisher: &dyn Publisher) -> Result<RelayRound, Error> {
        let mut client = self.pool.get().await?;
        let tx = crate::pool::transaction(&mut client).await?;
        let batch = outbox_message_claim()
            .bind(
                &tx,
                &self.config.batch_size,
                &self.config.lease.as_secs_f64(),
            )
            .all()
            .await?;
        crate::pool::commit(tx).await?;
        if batch.is_empty() {
            return Ok(RelayRound::default());
        }
        let mut round = RelayRound {
            claimed: batch.len(),
            ..RelayRound::default()
        };
        let mut delivered = Vec::with_capacity(batch.len());
        let mut delivered_in = Vec::with_capacity(batch.len());
        let mut failed = Vec::new();
        for message in &batch {
            match publisher.publish(message).await {
                Ok(()) => {
                    delivered_in.push(message.organization_id);
                    delivered.push(message.id);
                }
                Err(error) => failed.push((message, error.to_string())),
            }
        }
        let tx = crate::pool::transaction(&mut client).await?;
        for (message, error) in failed {
            let outcome = outbox_message_mark_failed()
                .bind(
                    &tx,
                    &error.as_str(),
                    &self.config.max_backoff.as_secs_f64(),
                    &self.config.base_backoff.as_secs_f64(),
                    &message.organization_id,
                    &message.id,
                )
                .opt()
                .await?;
            match outcome.map(|o| o.status) {
                Some(crate::types::messaging::OutboxStatus::Dead) => round.dead += 1,
                _ => round.retried += 1,
            }
        }
        if !delivered.is_empty() {
            outbox_message_mark_delivered()
                .bind(&tx, &delivered_in.as_slice(), &delivered.as_slice())
                .await?;
        }
        crate::pool::commit(tx).await?;
        round.delivered = delivered.len();
        Ok(round)
    }

    /// Relays until `stop` resolves, and returns what it did in all: rounds follow one
    /// another while batches come back full, otherwise one runs every `idle`; `stop`
    /// is looked at between rounds, so a round in progress finishes. A round that
    /// fails (the server restarting, a connection cut) is tried again after a backoff
    /// that grows to `idle`, so the relay carries on by itself once the server is
    /// back; what it had claimed is claimed again when the lease ends.
    pub async fn run_until(
        &self,
        publisher: &dyn Publisher,
        idle: Duration,
        stop: impl std::future::Future<Output = ()>,
    ) -> RelayRound {
        let first_backoff = Duration::from_millis(50).min(idle);
        let mut total = RelayRound::default();
        let mut backoff = first_backoff;
        let mut stop = std::pin::pin!(stop);
        loop {
            let wait = match self.run_once(publisher).await {
                Ok(round) => {
                    backoff = first_backoff;
                    total.claimed += round.claimed;
                    total.delivered += round.delivered;
                    total.retried += round.retried;
                    total.dead += round.dead;
                    if i64::try_from(round.claimed).unwrap_or(i64::MAX) >= self.config.batch_size {
                        Duration::ZERO
                    } else {
                        idle
                    }
                }
                Err(_) => {
                    let wait = backoff;
                    backoff = (backoff * 2).min(idle);
                    wait
                }
            };
            tokio::select! {
                biased;
                () = &mut stop => return total,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
}
