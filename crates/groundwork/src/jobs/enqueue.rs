//! Typed jobs and enqueueing them in the caller's transaction.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::context::{JobContext, JobError};
use crate::Error;
use crate::client::async_::GenericClient;
use crate::queries::messaging::jobs::{job_cancel, job_enqueue, job_enqueue_many, job_retry};

/// A kind of job: its arguments are the value itself, stored as JSON.
///
/// `KIND` names it in the queue (a letter, then letters, digits, `_`, `.`, `:` or `-`,
/// at most 200 bytes) and must be registered with the [`Worker`](super::Worker) that
/// runs its queue.
pub trait Job: Serialize + DeserializeOwned + Send + 'static {
    /// The kind, as stored in `messaging.jobs.kind`.
    const KIND: &'static str;
    /// The queue it goes to (a lower-case letter, then lower-case letters, digits,
    /// `_`, `.` or `-`, at most 63 bytes).
    const QUEUE: &'static str = "default";
    /// Attempts in all before it is discarded: 1 to 100.
    const MAX_ATTEMPTS: i32 = 25;
    /// Lower runs first, within its tenant: -100 to 100.
    const PRIORITY: i16 = 0;

    /// How long one attempt may run before it counts as failed.
    fn timeout(&self) -> Duration {
        Duration::from_secs(300)
    }

    /// Does the work. An `Err` (or a panic, or the timeout) is a failed attempt.
    fn run(self, ctx: JobContext) -> impl Future<Output = Result<(), JobError>> + Send;
}

/// A job to enqueue, untyped: what [`enqueue_many`] takes, so that one batch may mix
/// kinds. [`NewJob::of`] makes one from a [`Job`].
#[derive(Clone, Debug, PartialEq)]
pub struct NewJob {
    /// The kind.
    pub kind: String,
    /// The arguments.
    pub args: Value,
    /// The queue.
    pub queue: String,
    /// Lower runs first, within the tenant: -100 to 100.
    pub priority: i16,
    /// When it may run first; `None` for now (the server's clock).
    pub run_at: Option<DateTime<Utc>>,
    /// A key unique per tenant: enqueueing it again returns the existing job.
    pub idempotency_key: Option<String>,
    /// Attempts in all: 1 to 100.
    pub max_attempts: i32,
}

impl NewJob {
    /// A job of `kind` with `args` and the defaults: queue `default`, priority 0, now,
    /// no key, 25 attempts.
    pub fn new(kind: impl Into<String>, args: Value) -> Self {
        Self {
            kind: kind.into(),
            args,
            queue: "default".to_owned(),
            priority: 0,
            run_at: None,
            idempotency_key: None,
            max_attempts: 25,
        }
    }

    /// `job` with its type's kind, queue, priority and attempts.
    pub fn of<J: Job>(job: &J) -> Result<Self, Error> {
        Ok(Self {
            kind: J::KIND.to_owned(),
            args: serde_json::to_value(job).map_err(Error::Encode)?,
            queue: J::QUEUE.to_owned(),
            priority: J::PRIORITY,
            run_at: None,
            idempotency_key: None,
            max_attempts: J::MAX_ATTEMPTS,
        })
    }

    /// In another queue.
    pub fn queue(mut self, queue: impl Into<String>) -> Self {
        self.queue = queue.into();
        self
    }

    /// With another priority (lower runs first).
    pub fn priority(mut self, priority: i16) -> Self {
        self.priority = priority;
        self
    }

    /// Not before `at`.
    pub fn run_at(mut self, at: DateTime<Utc>) -> Self {
        self.run_at = Some(at);
        self
    }

    /// Once per `key` and tenant.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// With another number of attempts.
    pub fn max_attempts(mut self, attempts: i32) -> Self {
        self.max_attempts = attempts;
        self
    }
}

/// Enqueues `job` in the caller's transaction, for its tenant; returns the job's id.
pub async fn enqueue<C: GenericClient, J: Job>(client: &C, job: &J) -> Result<i64, Error> {
    enqueue_new(client, &NewJob::of(job)?).await
}

/// Enqueues `job` in the caller's transaction, for its tenant; returns the job's id, or
/// the existing job's when the tenant already has its idempotency key.
pub async fn enqueue_new<C: GenericClient>(client: &C, job: &NewJob) -> Result<i64, Error> {
    let run_at = job.run_at.map(|at| at.fixed_offset());
    Ok(job_enqueue()
        .bind(
            client,
            &job.kind,
            &job.args,
            &job.queue,
            &job.priority,
            &run_at,
            &job.idempotency_key,
            &job.max_attempts,
        )
        .one()
        .await?)
}

/// Enqueues `jobs` in one statement in the caller's transaction (at most 10,000);
/// returns their ids in order. All or nothing: one invalid job refuses the batch.
pub async fn enqueue_many<C: GenericClient>(
    client: &C,
    jobs: &[NewJob],
) -> Result<Vec<i64>, Error> {
    let kinds: Vec<&str> = jobs.iter().map(|j| j.kind.as_str()).collect();
    let args: Vec<&Value> = jobs.iter().map(|j| &j.args).collect();
    let queues: Vec<&str> = jobs.iter().map(|j| j.queue.as_str()).collect();
    let priorities: Vec<i16> = jobs.iter().map(|j| j.priority).collect();
    let run_ats: Vec<Option<DateTime<chrono::FixedOffset>>> = jobs
        .iter()
        .map(|j| j.run_at.map(|at| at.fixed_offset()))
        .collect();
    let keys: Vec<Option<&str>> = jobs.iter().map(|j| j.idempotency_key.as_deref()).collect();
    let max_attempts: Vec<i32> = jobs.iter().map(|j| j.max_attempts).collect();
    Ok(job_enqueue_many()
        .bind(
            client,
            &kinds,
            &args,
            &queues,
            &priorities,
            &run_ats,
            &keys,
            &max_attempts,
        )
        .all()
        .await?)
}

/// Cancels one of the tenant's jobs that has not finished (a running job's worker
/// stops it); false when it finished already or is not the tenant's.
pub async fn cancel<C: GenericClient>(client: &C, id: i64) -> Result<bool, Error> {
    Ok(job_cancel().bind(client, &id).one().await?)
}

/// Runs one of the tenant's jobs again as soon as possible (a discarded, cancelled,
/// completed or waiting one); false when it is running or not the tenant's.
pub async fn retry<C: GenericClient>(client: &C, id: i64) -> Result<bool, Error> {
    Ok(job_retry().bind(client, &id).one().await?)
}
