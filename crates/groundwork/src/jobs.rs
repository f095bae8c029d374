//! The job queue (`messaging.jobs`) from Rust: typed jobs, enqueueing in the caller's
//! transaction, and a worker pool (the `jobs` feature).
//!
//! A service enqueues a job in the same transaction as its business writes, acting for
//! its tenant ([`enqueue`], [`enqueue_many`] for batches), so the job exists exactly
//! when the change does. A [`Worker`] connects twice: as a login role in
//! `groundwork_worker`, which fetches, heartbeats, completes and fails jobs of every
//! tenant through the queue's SQL functions and reads no tenant table; and as a login
//! role in `groundwork_app`, through which each job runs acting for its own tenant
//! ([`JobContext::with_tenant`], a [`tenant::begin`](crate::tenant::begin)
//! transaction).
//!
//! The worker fetches in batches (round-robin across tenants, by priority within
//! one), runs up to each queue's concurrency at once, records completions in batches
//! (one round trip per batch), renews the leases of what it holds, and wakes on
//! `LISTEN messaging_jobs` with polling as the fallback. A job that returns an error,
//! panics or outlives its [`Job::timeout`] is a failed attempt: the database retries
//! it with exponential backoff and jitter, and discards it after its max attempts. A
//! job whose lease the worker lost (it was cancelled, or taken back after the lease
//! expired) is stopped. [`WorkerHandle::shutdown`] stops fetching, gives back jobs
//! fetched but not started, and waits for running ones to finish (those still running
//! at the deadline are recorded as failed attempts).
//!
//! Delivery is at least once: a worker that dies after a job's transaction committed
//! and before its completion was recorded leaves the job to run again when its lease
//! ends. Make handlers idempotent (an idempotency key, or a check of what was done).
//!
//! [`Periodic`] schedules enqueue a job per period of a cron expression, once across
//! any number of workers (the period is the job's idempotency key). A worker also
//! deletes finished jobs after their retention ([`WorkerConfig::retention`], 7 days by
//! default), and may run the outbox relay beside its queues
//! ([`Worker::outbox_relay`]). Every loop of a worker outlives a lost connection or a
//! server restart: it retries, and the LISTEN connection reconnects.
//!
//! ```no_run
//! use groundwork::jobs::{Job, JobContext, JobError, Worker, WorkerConfig, enqueue};
//! use groundwork::tenant::{Tenant, with_tenant};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct SendWelcome {
//!     user_id: uuid::Uuid,
//! }
//!
//! impl Job for SendWelcome {
//!     const KIND: &'static str = "send_welcome";
//!
//!     async fn run(self, ctx: JobContext) -> Result<(), JobError> {
//!         // Runs acting for the job's tenant, as the application role.
//!         ctx.with_tenant(async |tx| {
//!             tx.execute("SELECT 1", &[]).await?;
//!             Ok(())
//!         })
//!         .await?;
//!         Ok(())
//!     }
//! }
//!
//! # async fn example(app: deadpool_postgres::Pool, worker_pool: deadpool_postgres::Pool,
//! #                  worker_url: String, tenant: Tenant) -> Result<(), groundwork::Error> {
//! // In a request: the job commits with the business change.
//! let mut client = app.get().await?;
//! with_tenant(&mut client, tenant, async |tx| {
//!     enqueue(tx, &SendWelcome { user_id: uuid::Uuid::new_v4() }).await?;
//!     Ok(())
//! })
//! .await?;
//!
//! // In the worker process.
//! let worker = Worker::new(worker_pool, app, WorkerConfig::default().listen_url(worker_url))
//!     .register::<SendWelcome>()
//!     .queue("default", 8)
//!     .start();
//! // ... until asked to stop:
//! worker.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod context;
mod enqueue;
mod periodic;
mod worker;

pub use context::{JobContext, JobError};
pub use enqueue::{Job, NewJob, cancel, enqueue, enqueue_many, enqueue_new, retry};
pub use periodic::{InvalidSchedule, Periodic};
pub use worker::{QueueConfig, ShutdownReport, Worker, WorkerConfig, WorkerHandle};
