//! Periodic jobs: a job enqueued once per period of a cron expression.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use tokio::sync::watch;
use uuid::Uuid;

use super::enqueue::{NewJob, enqueue_new};
use crate::Error;
use crate::tenant::{Tenant, with_tenant};

/// A cron expression that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("cron expression {expression:?}: {reason}")]
pub struct InvalidSchedule {
    /// The expression as given.
    pub expression: String,
    /// What is wrong with it.
    pub reason: String,
}

/// A job for one tenant, enqueued once per period of a cron expression.
///
/// Every worker that has the schedule enqueues the next period's job ahead of time,
/// with `run_at` at the period's start and the idempotency key
/// `periodic:<name>:<period start in Unix seconds>`: however many workers run, the
/// tenant gets one job per period, and a period whose job is in the queue is not lost
/// when every worker restarts.
///
/// Expressions have five fields (minute, hour, day of month, month, day of week) or
/// six or seven with seconds first and a year last, in UTC, as the `cron` crate reads
/// them: `*`, lists, ranges and steps (`*/15`), month and day names (`JAN`, `MON-FRI`);
/// numbered days of the week run from 1 (Sunday) to 7, so prefer names.
#[derive(Clone, Debug)]
pub struct Periodic {
    name: String,
    schedule: cron::Schedule,
    organization_id: Uuid,
    job: NewJob,
}

impl Periodic {
    /// `job` for `organization_id` per period of `expression`; `name` (1 to 200
    /// characters) tells schedules apart in the idempotency key.
    pub fn new(
        name: impl Into<String>,
        expression: &str,
        organization_id: Uuid,
        job: NewJob,
    ) -> Result<Self, InvalidSchedule> {
        let name = name.into();
        let invalid = |reason: String| InvalidSchedule {
            expression: expression.to_owned(),
            reason,
        };
        if name.is_empty() || name.chars().count() > 200 {
            return Err(invalid(format!(
                "the schedule's name {name:?} must be 1 to 200 characters"
            )));
        }
        let with_seconds = if expression.split_whitespace().count() == 5 {
            format!("0 {expression}")
        } else {
            expression.to_owned()
        };
        let schedule =
            cron::Schedule::from_str(&with_seconds).map_err(|e| invalid(e.to_string()))?;
        Ok(Self {
            name,
            schedule,
            organization_id,
            job,
        })
    }

    /// The schedule's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The first period that starts after `at`.
    pub fn next_after(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.schedule.after(&at).next()
    }

    /// Enqueues the job of the period starting at `period`, unless the tenant has it
    /// already; returns its id.
    pub async fn enqueue_period(&self, app: &Pool, period: DateTime<Utc>) -> Result<i64, Error> {
        let job = self.job.clone().run_at(period).idempotency_key(format!(
            "periodic:{}:{}",
            self.name,
            period.timestamp()
        ));
        let mut client = app.get().await?;
        with_tenant(
            &mut client,
            Tenant::organization(self.organization_id),
            async |tx| enqueue_new(tx, &job).await,
        )
        .await
    }

    /// Keeps the next period's job enqueued until `stopping`.
    pub(super) async fn run(self, app: Pool, retry: Duration, mut stopping: watch::Receiver<bool>) {
        loop {
            let Some(next) = self.next_after(Utc::now()) else {
                return;
            };
            let wait = match self.enqueue_period(&app, next).await {
                Ok(_) => (next - Utc::now()).to_std().unwrap_or_default(),
                Err(_) => retry,
            };
            let stopped = tokio::select! {
                result = stopping.wait_for(|stop| *stop) => result.is_ok(),
                () = tokio::time::sleep(wait) => false,
            };
            if stopped {
                return;
            }
        }
    }
}
