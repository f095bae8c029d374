//! groundwork's side: batch enqueue, the drain, and pickup latency, with the worker
//! configured as a service runs it (fetching as a login role in `groundwork_worker`,
//! jobs' own work as one in `groundwork_app`, woken by LISTEN).
//!
//! The jobs are no-ops that do not touch the database, like the peers' no-op: the
//! handler does not open a tenant transaction ([`groundwork::jobs::JobContext::with_tenant`])
//! because nothing in it would use one.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use groundwork::jobs::{Job, JobContext, JobError, NewJob, Worker, WorkerConfig, enqueue_many};
use groundwork::pool::PoolConfig;
use groundwork::tenant::with_tenant;
use groundwork_testing::{DbRole, TestDb, TestTenant};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, mpsc};

use crate::cpu::{self, Cpu};

/// The drain's job: counts that it ran.
#[derive(Serialize, Deserialize)]
struct Noop {
    n: i64,
}

static RAN: AtomicUsize = AtomicUsize::new(0);
static ALL_RAN: Notify = Notify::const_new();
static TARGET: AtomicUsize = AtomicUsize::new(usize::MAX);

impl Job for Noop {
    const KIND: &'static str = "noop";

    async fn run(self, _ctx: JobContext) -> Result<(), JobError> {
        if RAN.fetch_add(1, Ordering::Relaxed) + 1 == TARGET.load(Ordering::Relaxed) {
            ALL_RAN.notify_one();
        }
        Ok(())
    }
}

/// The pickup probe: says when it started.
#[derive(Serialize, Deserialize)]
struct Probe {
    n: i64,
}

static STARTED: Mutex<Option<mpsc::UnboundedSender<(i64, Instant)>>> = Mutex::new(None);

impl Job for Probe {
    const KIND: &'static str = "probe";

    async fn run(self, _ctx: JobContext) -> Result<(), JobError> {
        let now = Instant::now();
        if let Some(started) = &*STARTED.lock().unwrap() {
            let _ = started.send((self.n, now));
        }
        Ok(())
    }
}

pub struct Figures {
    pub enqueue_per_s: f64,
    pub drain_per_s: f64,
    /// CPU time of the drain, client and server.
    pub cpu: Cpu,
    /// Milliseconds from an enqueue's commit to its handler starting, sorted.
    pub pickup_ms: Vec<f64>,
}

/// Enqueues `jobs` no-op jobs in batches of `batch` (one transaction each, as the
/// application role acting for a tenant), drains them with `concurrency` runners, then
/// times `probes` single jobs from commit to start on the idle worker. Its pools are
/// new, as a freshly started service's would be.
pub async fn run(
    db: &TestDb,
    tenant: TestTenant,
    jobs: usize,
    batch: usize,
    concurrency: usize,
    probes: usize,
    postmaster: Option<u32>,
) -> Figures {
    let pool = |role: DbRole| {
        let mut config = PoolConfig::new(db.url(role));
        config.max_size = concurrency + 4;
        config.build().unwrap()
    };
    let (app, workers) = (pool(DbRole::App), pool(DbRole::Worker));
    let started = Instant::now();
    for first in (0..jobs).step_by(batch) {
        let new: Vec<NewJob> = (first..(first + batch).min(jobs))
            .map(|n| NewJob::of(&Noop { n: n as i64 }).unwrap())
            .collect();
        let mut client = app.get().await.unwrap();
        with_tenant(&mut client, tenant.tenant(), async |tx| {
            enqueue_many(tx, &new).await
        })
        .await
        .unwrap();
    }
    let enqueue_per_s = jobs as f64 / started.elapsed().as_secs_f64();
    checkpoint(db).await;

    let (started_tx, mut started_rx) = mpsc::unbounded_channel();
    *STARTED.lock().unwrap() = Some(started_tx);
    RAN.store(0, Ordering::Relaxed);
    TARGET.store(jobs, Ordering::Relaxed);
    let all_ran = ALL_RAN.notified();
    let owner = db.pool(DbRole::Owner).get().await.unwrap();
    let cpu_before = cpu::now(postmaster);
    let started = Instant::now();
    let worker = Worker::new(
        workers,
        app.clone(),
        WorkerConfig::default().listen_url(db.url(DbRole::Worker)),
    )
    .register::<Noop>()
    .register::<Probe>()
    .queue("default", concurrency)
    .start();
    all_ran.await;
    // Every job ran; wait for the last completions to be recorded.
    while owner
        .query_one(
            "SELECT EXISTS (SELECT FROM messaging.jobs WHERE queue = 'default' AND status = 'running')",
            &[],
        )
        .await
        .unwrap()
        .get::<_, bool>(0)
    {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let drain_per_s = jobs as f64 / started.elapsed().as_secs_f64();
    let cpu = cpu::now(postmaster) - cpu_before;
    let left: i64 = owner
        .query_one(
            "SELECT count(*) FROM messaging.jobs WHERE status <> 'completed'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "jobs left unfinished after the drain");

    // The worker is idle now, waiting on LISTEN (and polling every second).
    let mut pickup_ms = Vec::with_capacity(probes);
    let mut client = app.get().await.unwrap();
    for n in 0..probes as i64 {
        tokio::time::sleep(Duration::from_millis(20 + (n % 7) as u64)).await;
        let probe = NewJob::of(&Probe { n }).unwrap();
        with_tenant(&mut client, tenant.tenant(), async |tx| {
            enqueue_many(tx, std::slice::from_ref(&probe)).await
        })
        .await
        .unwrap();
        let committed = Instant::now();
        let (ran, at) = tokio::time::timeout(Duration::from_secs(10), started_rx.recv())
            .await
            .expect("a probe did not start within 10 s")
            .unwrap();
        assert_eq!(ran, n);
        // A probe may start before the commit's acknowledgement reaches the client.
        pickup_ms.push(at.saturating_duration_since(committed).as_secs_f64() * 1000.0);
    }
    let report = worker.shutdown().await;
    assert_eq!(report.interrupted, 0);
    pickup_ms.sort_by(f64::total_cmp);
    Figures {
        enqueue_per_s,
        drain_per_s,
        cpu,
        pickup_ms,
    }
}

/// Writes dirty pages out before a drain, so that no drain pays for an earlier one's.
pub async fn checkpoint(db: &TestDb) {
    db.pool(DbRole::Owner)
        .get()
        .await
        .unwrap()
        .batch_execute("CHECKPOINT")
        .await
        .unwrap();
}
