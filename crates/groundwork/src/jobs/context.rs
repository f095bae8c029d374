//! What a running job knows and may do.

use std::sync::Arc;

use deadpool_postgres::{Pool, Transaction};
use serde_json::Value;
use tokio::sync::Mutex;
use uuid::Uuid;

use crate::Error;
use crate::queries::messaging::jobs::job_heartbeat;
use crate::tenant::{Tenant, with_tenant};

/// Why an attempt failed: any error, recorded in the job's `errors`.
pub type JobError = Box<dyn std::error::Error + Send + Sync>;

/// A running job: its identity, and its tenant's context to work in.
#[derive(Clone)]
pub struct JobContext {
    inner: Arc<Inner>,
}

struct Inner {
    id: i64,
    organization_id: Uuid,
    kind: String,
    attempt: i32,
    max_attempts: i32,
    worker_id: Arc<str>,
    app: Pool,
    worker: Pool,
    metrics: Mutex<Option<Value>>,
}

impl JobContext {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        id: i64,
        organization_id: Uuid,
        kind: String,
        attempt: i32,
        max_attempts: i32,
        worker_id: Arc<str>,
        app: Pool,
        worker: Pool,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                id,
                organization_id,
                kind,
                attempt,
                max_attempts,
                worker_id,
                app,
                worker,
                metrics: Mutex::new(None),
            }),
        }
    }

    /// The job's id.
    pub fn id(&self) -> i64 {
        self.inner.id
    }

    /// The tenant the job belongs to.
    pub fn organization_id(&self) -> Uuid {
        self.inner.organization_id
    }

    /// The job's kind.
    pub fn kind(&self) -> &str {
        &self.inner.kind
    }

    /// This attempt's number, from 1.
    pub fn attempt(&self) -> i32 {
        self.inner.attempt
    }

    /// Attempts in all before the job is discarded.
    pub fn max_attempts(&self) -> i32 {
        self.inner.max_attempts
    }

    /// The tenant, as a context for [`crate::tenant`].
    pub fn tenant(&self) -> Tenant {
        Tenant::organization(self.inner.organization_id)
    }

    /// Runs `work` in a transaction of the application role acting for the job's
    /// tenant ([`crate::tenant::with_tenant`]): committed if it returns `Ok`.
    pub async fn with_tenant<T, F>(&self, work: F) -> Result<T, Error>
    where
        F: AsyncFnOnce(&Transaction<'_>) -> Result<T, Error>,
    {
        let mut client = self.inner.app.get().await?;
        with_tenant(&mut client, self.tenant(), work).await
    }

    /// A connection of the worker's own role (`groundwork_worker`, no tenant), for
    /// groundwork's own jobs whose work spans every tenant through the functions that
    /// role may call (retention: [`crate::ops::ApplyRetention`]).
    pub(crate) async fn worker_client(&self) -> Result<deadpool_postgres::Object, Error> {
        Ok(self.inner.worker.get().await?)
    }

    /// Records progress (0 to 100) and renews the lease; false when the job is no
    /// longer this worker's (cancelled, or taken back), and it should stop.
    pub async fn progress(&self, percent: i16) -> Result<bool, Error> {
        crate::pool::in_transaction(&self.inner.worker, async |tx| {
            Ok(job_heartbeat()
                .bind(
                    tx,
                    &self.inner.id,
                    &self.inner.worker_id.as_ref(),
                    &Some(percent),
                )
                .one()
                .await?)
        })
        .await
    }

    /// Metrics to keep with the job when it completes (a JSON object of at most 64
    /// KiB); the last call wins.
    pub async fn set_metrics(&self, metrics: Value) {
        *self.inner.metrics.lock().await = Some(metrics);
    }

    pub(super) async fn take_metrics(&self) -> Option<Value> {
        self.inner.metrics.lock().await.take()
    }
}
