//! The one advisory-lock helper of groundwork's tooling.

use std::future::Future;
use std::time::{Duration, Instant};

use tokio_postgres::Client;

/// The lock was not had within the time allowed.
#[derive(Clone, Copy, Debug, thiserror::Error)]
#[error("an advisory lock was held by another session for more than {0:?}")]
pub struct LockTimeout(pub Duration);

/// Runs `work` while `client`'s session holds the advisory lock `key`, released
/// afterwards whatever `work` returned. The lock is taken by polling
/// `pg_try_advisory_lock`, so a waiting session holds no snapshot and cannot deadlock
/// against what the holder does (`CREATE INDEX CONCURRENTLY`, `CREATE DATABASE`).
/// Gives up with [`LockTimeout`] after `timeout`.
pub async fn with_session_lock<T, E>(
    client: &Client,
    key: i64,
    timeout: Duration,
    work: impl Future<Output = Result<T, E>>,
) -> Result<T, E>
where
    E: From<tokio_postgres::Error> + From<LockTimeout>,
{
    let started = Instant::now();
    while !client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
        .await?
        .get::<_, bool>(0)
    {
        if started.elapsed() > timeout {
            return Err(LockTimeout(timeout).into());
        }
        // A little jitter, so that waiters do not poll in step.
        tokio::time::sleep(Duration::from_millis(
            20 + u64::from(started.elapsed().subsec_micros() % 30),
        ))
        .await;
    }
    let outcome = work.await;
    let unlocked = client
        .query_one("SELECT pg_advisory_unlock($1)", &[&key])
        .await;
    let value = outcome?;
    unlocked?;
    Ok(value)
}
