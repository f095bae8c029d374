//! A primary and read replicas, with read-your-writes by WAL position.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use deadpool_postgres::{Pool, Transaction};
use tokio_postgres::SimpleQueryMessage;

use crate::Error;
use crate::tenant::{Tenant, with_tenant};

/// A position in the primary's write-ahead log, as `pg_current_wal_insert_lsn()`
/// gives it: a replica that has replayed up to it sees every transaction that had
/// committed on the primary when it was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(pub u64);

impl std::str::FromStr for Lsn {
    type Err = InvalidLsn;

    /// Parses PostgreSQL's text form, `16/B374D848`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (high, low) = s.split_once('/').ok_or_else(|| InvalidLsn(s.to_owned()))?;
        let part = |p: &str| u64::from_str_radix(p, 16).map_err(|_| InvalidLsn(s.to_owned()));
        Ok(Self((part(high)? << 32) | part(low)?))
    }
}

impl std::fmt::Display for Lsn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

/// A WAL position that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a WAL position")]
pub struct InvalidLsn(String);

/// Where [`ReplicatedPool::read`] ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// On replica number `n` (in the order given to [`ReplicatedPool::new`]).
    Replica(usize),
    /// On the primary: no replica had replayed the position in time, or none answered.
    Primary,
}

/// A primary pool and read-replica pools (hot standbys streaming from it).
///
/// Writes, subscriptions and the job queue use [`primary`](Self::primary): on a
/// standby the server refuses every write (SQLSTATE `25006`). A write through
/// [`write`](Self::write) returns the primary's WAL position after its commit; a
/// [`read`](Self::read) given that position runs on a replica once the replica has
/// replayed it, waiting at most [`replica_wait`](Self::replica_wait), and falls back
/// to the primary otherwise, so it always sees the write.
///
/// The event store's reads need a horizon computed on the primary (its in-flight
/// appends are visible only there): read events through the primary.
#[derive(Clone, Debug)]
pub struct ReplicatedPool {
    primary: Pool,
    replicas: Vec<Pool>,
    wait: Duration,
    next: std::sync::Arc<AtomicUsize>,
}

/// How often a replica's replay position is asked while a read waits for it.
const REPLAY_POLL: Duration = Duration::from_millis(1);

/// The primary's WAL position now: after a commit, at or past its commit record.
const INSERT_LSN: &str = "SELECT pg_current_wal_insert_lsn()::text";

/// Makes a replicated read's transaction read-only, on a replica or the primary.
const READ_ONLY: &str = "SET TRANSACTION READ ONLY";

/// How far a standby has replayed (NULL on a primary).
const REPLAY_LSN: &str = "SELECT pg_last_wal_replay_lsn()::text";

impl ReplicatedPool {
    /// `primary` and its `replicas`; a replicated read waits up to 1 s.
    pub fn new(primary: Pool, replicas: Vec<Pool>) -> Self {
        Self {
            primary,
            replicas,
            wait: Duration::from_secs(1),
            next: Default::default(),
        }
    }

    /// How long a read waits for a replica to replay a position before it runs on the
    /// primary instead.
    pub fn replica_wait(mut self, wait: Duration) -> Self {
        self.wait = wait;
        self
    }

    /// The primary's pool: writes, subscriptions, the job queue, event reads.
    pub fn primary(&self) -> &Pool {
        &self.primary
    }

    /// Runs `work` on the primary acting for `tenant` ([`with_tenant`]) and returns
    /// its value and the WAL position after its commit, for a later [`read`](Self::read).
    pub async fn write<T, F>(&self, tenant: Tenant, work: F) -> Result<(T, Lsn), Error>
    where
        F: AsyncFnOnce(&Transaction<'_>) -> Result<T, Error>,
    {
        let mut client = self.primary.get().await?;
        let value = with_tenant(&mut client, tenant, work).await?;
        let lsn = lsn_of(&client, INSERT_LSN).await?.unwrap_or(Lsn(0));
        Ok((value, lsn))
    }

    /// Runs `work` acting for `tenant` on a replica that has replayed `after` (any
    /// replica when `None`), else on the primary; says where it ran. The transaction
    /// is read-only wherever it runs, so a write in `work` fails the same way on
    /// either ([`Error::ReadOnly`]) instead of succeeding only when no replica was
    /// ready.
    pub async fn read<T, F>(
        &self,
        tenant: Tenant,
        after: Option<Lsn>,
        work: F,
    ) -> Result<(T, Route), Error>
    where
        F: AsyncFnOnce(&Transaction<'_>) -> Result<T, Error>,
    {
        let (route, mut client) = match self.replica_at(after).await {
            Some((index, client)) => (Route::Replica(index), client),
            None => (Route::Primary, self.primary.get().await?),
        };
        let value = with_tenant(&mut client, tenant, async |tx| {
            crate::tenant::send_ahead(tx, READ_ONLY)?;
            work(tx).await
        })
        .await?;
        Ok((value, route))
    }

    /// A connection to the next replica (round robin) once it has replayed `after`;
    /// `None` when no replica gets there within the wait.
    async fn replica_at(&self, after: Option<Lsn>) -> Option<(usize, deadpool_postgres::Client)> {
        if self.replicas.is_empty() {
            return None;
        }
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.replicas.len();
        let client = self.replicas[index].get().await.ok()?;
        let Some(after) = after else {
            return Some((index, client));
        };
        let deadline = Instant::now() + self.wait;
        loop {
            let replayed = lsn_of(&client, REPLAY_LSN).await.ok()??;
            if replayed >= after {
                return Some((index, client));
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(REPLAY_POLL).await;
        }
    }
}

/// The WAL position `statement` returns (a simple query: no named statement, so it
/// also works through a transaction pooler).
async fn lsn_of(client: &tokio_postgres::Client, statement: &str) -> Result<Option<Lsn>, Error> {
    for message in client.simple_query(statement).await? {
        if let SimpleQueryMessage::Row(row) = message {
            return Ok(row.get(0).and_then(|text| text.parse().ok()));
        }
    }
    Ok(None)
}
