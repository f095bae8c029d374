//! Operating the database (the `ops` schema): health checks for a monitoring role, and
//! retention of what groundwork's own tables accumulate.
//!
//! Health is SQL for any agent: `SELECT * FROM ops.check_database_health()` as a login
//! role in `groundwork_monitor` (a member of `pg_monitor` that reads no tenant data),
//! with thresholds in `ops.health_thresholds`; `groundwork db health` prints it as a
//! table, JSON or Prometheus metrics.
//!
//! Retention is `ops.retention_policies` (finished jobs, delivered outbox messages,
//! expired sessions, expired idempotency keys: how long each is kept and how many rows
//! a batch deletes), applied by [`apply_retention`] on a connection in
//! `groundwork_worker` (or as the owner), a short transaction per batch. To run it
//! periodically, schedule the job `ApplyRetention` (feature `jobs`) on a
//! `groundwork::jobs::Periodic` for the operator's organization: the job belongs to
//! that tenant, and its work, which spans every tenant, runs on the worker's own
//! connection.
//!
//! ```rust,ignore
//! use groundwork::jobs::{NewJob, Periodic};
//! use groundwork::ops::ApplyRetention;
//!
//! let retention = Periodic::new("ops.retention", "*/15 * * * *", operator_org,
//!                               NewJob::of(&ApplyRetention::default())?)?;
//! let worker = Worker::new(config).register::<ApplyRetention>().periodic(retention);
//! ```

use std::collections::BTreeMap;

use crate::Error;
use crate::client::async_::GenericClient;
use crate::queries::ops::retention_policies::retention_apply;

/// The batches after which [`apply_retention`] stops even if a policy still deletes
/// full batches, so that one run never goes on for ever.
pub const MAX_RETENTION_ROUNDS: usize = 1000;

/// Applies every enabled retention policy in batches until none deletes a full batch
/// (or after [`MAX_RETENTION_ROUNDS`] rounds); returns the rows deleted per policy.
///
/// Each batch is one statement, so on a client outside a transaction each commits on
/// its own and holds its locks briefly. Needs a connection in `groundwork_worker` or
/// the owner.
pub async fn apply_retention(client: &impl GenericClient) -> Result<BTreeMap<String, i64>, Error> {
    let mut deleted: BTreeMap<String, i64> = BTreeMap::new();
    for _ in 0..MAX_RETENTION_ROUNDS {
        let batches = retention_apply().bind(client).all().await?;
        let mut full = false;
        for batch in batches {
            full |= batch.deleted >= i64::from(batch.batch);
            *deleted.entry(batch.policy).or_default() += batch.deleted;
        }
        if !full {
            break;
        }
    }
    Ok(deleted)
}

/// The job that runs [`apply_retention`] on the worker's connection; its metrics are
/// the rows deleted per policy.
#[cfg(feature = "jobs")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ApplyRetention {}

#[cfg(feature = "jobs")]
impl crate::jobs::Job for ApplyRetention {
    const KIND: &'static str = "ops.apply_retention";

    async fn run(self, ctx: crate::jobs::JobContext) -> Result<(), crate::jobs::JobError> {
        let mut client = ctx.worker_client().await?;
        let tx = crate::pool::transaction(&mut client).await?;
        let deleted = apply_retention(&tx).await?;
        crate::pool::commit(tx).await?;
        ctx.set_metrics(serde_json::json!(deleted)).await;
        Ok(())
    }
}
