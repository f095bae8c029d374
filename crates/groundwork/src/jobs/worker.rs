//! The worker pool: fetch, run, record, heartbeat, wake, shut down.
//!
//! Per queue, one fetcher leases as many jobs as the queue has free slots in one call
//! and spawns a task per job; a semaphore of the queue's concurrency decides how many
//! run at once, in fetch order. The slots are the concurrency plus a prefetch that
//! follows how long the queue's jobs take: about 50 ms of work waits ahead of the
//! runners (none for jobs of a second or more, up to the configured most for jobs of
//! microseconds), so short jobs never wait for a round trip and long ones are not held
//! away from other workers. When the fetches bound the throughput (jobs shorter than
//! a fetch), a second fetch goes out while one is in flight, so that the server works
//! on one batch while the other's rows and commit travel. Outcomes go to
//! one recorder, which records whatever has arrived in one round trip (completions and
//! give-backs as one statement each, failures pipelined beside them), retrying through
//! connection failures. The heartbeat renews the leases of every job held (fetched and
//! not yet recorded) and stops jobs whose lease was lost. A LISTEN connection wakes the
//! fetchers; each also polls.

use std::collections::{HashMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use futures::FutureExt;
use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};
use serde_json::Value;
use tokio::sync::{Mutex, Notify, OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinHandle;

use super::context::{JobContext, JobError};
use super::enqueue::Job;
use super::periodic::Periodic;
use crate::Error;
use crate::listener::Listener;
use crate::outbox::{Publisher, Relay};
use crate::pool::in_transaction;
use crate::queries::messaging::jobs::{
    FetchedJob, job_complete, job_complete_many, job_delete_finished, job_fail, job_fetch,
    job_heartbeat_many, job_rate_limit_set, job_release_many,
};

/// Decodes a job's args and starts it: its timeout and its future.
type Handler = Arc<
    dyn Fn(
            Value,
            JobContext,
        ) -> Result<(Duration, BoxFuture<'static, Result<(), JobError>>), JobError>
        + Send
        + Sync,
>;

/// How a [`Worker`] runs.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// Names this worker in leases (1 to 200 characters); unique per process. Default:
    /// `$HOSTNAME` (or `worker`), the process id and a random suffix.
    pub worker_id: String,
    /// How long a fetched job is this worker's before another may take it back: 1
    /// second to 1 day. Renewed every `heartbeat_interval` while held.
    pub lease: Duration,
    /// How often the leases of held jobs are renewed: well under `lease`.
    pub heartbeat_interval: Duration,
    /// How often an idle queue is polled when no notification wakes it; also how soon
    /// a scheduled job or a retry becomes due is noticed.
    pub poll_interval: Duration,
    /// How long [`WorkerHandle::shutdown`] waits for running jobs.
    pub shutdown_timeout: Duration,
    /// A connection string for the LISTEN connection (any role; the worker's own
    /// login is usual). Without one, the worker polls only.
    pub listen_url: Option<String>,
    /// Finished jobs (completed, cancelled, discarded) older than this are deleted
    /// (`messaging.delete_finished_jobs`, every tenant's); `None` keeps them. Default:
    /// 7 days.
    pub retention: Option<Duration>,
    /// How often the worker deletes what outlived `retention`; every worker does, and
    /// they never delete a row twice. Default: 5 minutes.
    pub retention_interval: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "worker".to_owned());
        let mut random = [0u8; 4];
        let _ = getrandom::fill(&mut random);
        Self {
            worker_id: format!(
                "{}-{}-{}",
                host.chars().take(100).collect::<String>(),
                std::process::id(),
                hex::encode(random)
            ),
            lease: Duration::from_secs(30),
            heartbeat_interval: Duration::from_secs(10),
            poll_interval: Duration::from_secs(1),
            shutdown_timeout: Duration::from_secs(30),
            listen_url: None,
            retention: Some(Duration::from_secs(7 * 24 * 3600)),
            retention_interval: Duration::from_secs(300),
        }
    }
}

impl WorkerConfig {
    /// Wakes on `LISTEN messaging_jobs` over a connection to `url`.
    pub fn listen_url(mut self, url: impl Into<String>) -> Self {
        self.listen_url = Some(url.into());
        self
    }

    /// With another worker id.
    pub fn worker_id(mut self, id: impl Into<String>) -> Self {
        self.worker_id = id.into();
        self
    }

    /// With another lease, and heartbeats every third of it.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self.heartbeat_interval = lease / 3;
        self
    }

    /// With another polling interval.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Keeps finished jobs for `retention` (`None`: for ever), deleting older ones
    /// every `interval`.
    pub fn retention(mut self, retention: Option<Duration>, interval: Duration) -> Self {
        self.retention = retention;
        self.retention_interval = interval;
        self
    }

    /// With another shutdown deadline.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }
}

/// A queue a [`Worker`] serves.
///
/// Its rate limits, when given, are written to the database when the worker starts
/// (`messaging.set_job_rate_limit`) and hold for every worker of the queue; a worker
/// without them leaves the queue's limits as they are.
#[derive(Clone, Debug, PartialEq)]
pub struct QueueConfig {
    /// The queue's name.
    pub name: String,
    /// Jobs that run at once.
    pub concurrency: usize,
    /// The most jobs fetched ahead of free runners, so that short jobs do not wait
    /// for a round trip (their leases are renewed while they wait). How many are
    /// fetched ahead follows the jobs' run time: about 50 ms of work. Jobs shorter
    /// than a fetch may hold up to twice the concurrency and prefetch: a second batch
    /// is fetched while the first is in flight.
    pub prefetch: usize,
    /// Jobs started per second in the queue, by all workers together.
    pub rate_limit: Option<f64>,
    /// Jobs started per second for each tenant in the queue, by all workers together.
    pub tenant_rate_limit: Option<f64>,
}

impl QueueConfig {
    /// `name` with `concurrency` runners and a prefetch of at most 64 times as many
    /// (1,000 jobs in all at most): for jobs of microseconds, about 500 fetched at once
    /// with a concurrency of 8.
    pub fn new(name: impl Into<String>, concurrency: usize) -> Self {
        let concurrency = concurrency.clamp(1, 1000);
        Self {
            name: name.into(),
            concurrency,
            prefetch: (concurrency * 64).min(1000 - concurrency),
            rate_limit: None,
            tenant_rate_limit: None,
        }
    }

    /// At most `jobs_per_second` jobs of the queue start per second, across every
    /// worker (a token bucket in the database; bursts of the rate rounded up).
    pub fn rate_limit(mut self, jobs_per_second: f64) -> Self {
        self.rate_limit = Some(jobs_per_second);
        self
    }

    /// At most `jobs_per_second` jobs of the queue start per second for each tenant,
    /// across every worker.
    pub fn tenant_rate_limit(mut self, jobs_per_second: f64) -> Self {
        self.tenant_rate_limit = Some(jobs_per_second);
        self
    }

    /// With another prefetch.
    pub fn prefetch(mut self, prefetch: usize) -> Self {
        self.prefetch = prefetch.min(1000 - self.concurrency);
        self
    }
}

/// A worker pool, configured; [`start`](Self::start) runs it.
///
/// `worker_pool` connects as a login role in `groundwork_worker` (it needs a
/// connection per queue, plus two); `app_pool` as one in `groundwork_app`, for the
/// jobs' own work ([`JobContext::with_tenant`]) and for periodic enqueues.
pub struct Worker {
    worker_pool: Pool,
    app_pool: Pool,
    config: WorkerConfig,
    handlers: HashMap<String, Handler>,
    queues: Vec<QueueConfig>,
    periodic: Vec<Periodic>,
    relays: Vec<(Relay, Arc<dyn Publisher>)>,
}

impl Worker {
    /// A worker with no queues and no job kinds yet.
    pub fn new(worker_pool: Pool, app_pool: Pool, config: WorkerConfig) -> Self {
        Self {
            worker_pool,
            app_pool,
            config,
            handlers: HashMap::new(),
            queues: Vec::new(),
            periodic: Vec::new(),
            relays: Vec::new(),
        }
    }

    /// Runs jobs of kind `J::KIND`.
    pub fn register<J: Job>(mut self) -> Self {
        let handler: Handler = Arc::new(|args: Value, ctx: JobContext| {
            let job: J = serde_json::from_value(args).map_err(|e| Box::new(e) as JobError)?;
            let timeout = job.timeout();
            let run: BoxFuture<'static, Result<(), JobError>> = Box::pin(job.run(ctx));
            Ok((timeout, run))
        });
        self.handlers.insert(J::KIND.to_owned(), handler);
        self
    }

    /// Serves `name` with `concurrency` jobs at once (see [`QueueConfig::new`]).
    pub fn queue(self, name: impl Into<String>, concurrency: usize) -> Self {
        self.queue_config(QueueConfig::new(name, concurrency))
    }

    /// Serves a queue as configured.
    pub fn queue_config(mut self, queue: QueueConfig) -> Self {
        self.queues.retain(|q| q.name != queue.name);
        self.queues.push(queue);
        self
    }

    /// Enqueues `schedule`'s job once per period (see [`Periodic`]).
    pub fn periodic(mut self, schedule: Periodic) -> Self {
        self.periodic.push(schedule);
        self
    }

    /// Runs `relay` beside the queues until shutdown ([`Relay::run_until`], a round
    /// every `poll_interval` when the outbox is quiet), delivering to `publisher`. The
    /// relay's pool connects as a login role in `groundwork_relay`.
    pub fn outbox_relay(mut self, relay: Relay, publisher: Arc<dyn Publisher>) -> Self {
        self.relays.push((relay, publisher));
        self
    }

    /// Starts the tasks (on the current tokio runtime) and returns their handle.
    pub fn start(self) -> WorkerHandle {
        let (stop, stopping) = watch::channel(false);
        let (interrupt, interrupted) = watch::channel(false);
        let (heartbeat_stop, heartbeat_stopping) = watch::channel(false);
        let (outcomes, received) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            worker_pool: self.worker_pool,
            app_pool: self.app_pool.clone(),
            worker_id: Arc::from(self.config.worker_id.as_str()),
            config: self.config,
            handlers: self.handlers,
            held: Mutex::new(HashMap::new()),
            outcomes,
            stopping: stopping.clone(),
            interrupted,
            released: AtomicUsize::new(0),
            interrupted_jobs: AtomicUsize::new(0),
        });
        let wakes: HashMap<String, Arc<Notify>> = self
            .queues
            .iter()
            .map(|q| (q.name.clone(), Arc::new(Notify::new())))
            .collect();
        let mut fetchers = Vec::new();
        let mut slots = Vec::new();
        for queue in self.queues {
            let total = MAX_FETCHES * (queue.concurrency + queue.prefetch);
            let queue_slots = Arc::new(Semaphore::new(total));
            slots.push((queue_slots.clone(), total));
            let wake = wakes[&queue.name].clone();
            fetchers.push(tokio::spawn(fetch_loop(
                shared.clone(),
                wake,
                Arc::new(QueueState {
                    slots: queue_slots,
                    total,
                    running: Arc::new(Semaphore::new(queue.concurrency)),
                    run_time_ns: AtomicU64::new(0),
                    fetch_time_ns: AtomicU64::new(0),
                    done: Notify::new(),
                    config: queue,
                }),
            )));
        }
        for schedule in self.periodic {
            fetchers.push(tokio::spawn(schedule.run(
                self.app_pool.clone(),
                shared.config.poll_interval,
                stopping.clone(),
            )));
        }
        if let Some(retention) = shared.config.retention {
            fetchers.push(tokio::spawn(retention_loop(
                shared.clone(),
                retention,
                stopping.clone(),
            )));
        }
        for (relay, publisher) in self.relays {
            let (idle, mut stopping) = (shared.config.poll_interval, stopping.clone());
            fetchers.push(tokio::spawn(async move {
                relay
                    .run_until(publisher.as_ref(), idle, until_true(&mut stopping))
                    .await;
            }));
        }
        let listener = shared
            .config
            .listen_url
            .clone()
            .map(|url| tokio::spawn(listen_loop(url, wakes, stopping.clone())));
        let recorder = tokio::spawn(record_loop(shared.clone(), received));
        let heartbeat = tokio::spawn(heartbeat_loop(shared.clone(), heartbeat_stopping));
        WorkerHandle {
            shared,
            stop,
            interrupt,
            heartbeat_stop,
            fetchers,
            slots,
            listener,
            recorder: Some(recorder),
            heartbeat: Some(heartbeat),
        }
    }
}

/// What a graceful shutdown did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Jobs fetched but not started, given back to the queue.
    pub released: usize,
    /// Jobs still running at the deadline, recorded as failed attempts.
    pub interrupted: usize,
}

/// A running worker. [`shutdown`](Self::shutdown) stops it gracefully; dropping it
/// stops its tasks at once, like a killed process (leases expire and other workers
/// take the jobs back).
pub struct WorkerHandle {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    interrupt: watch::Sender<bool>,
    heartbeat_stop: watch::Sender<bool>,
    fetchers: Vec<JoinHandle<()>>,
    slots: Vec<(Arc<Semaphore>, usize)>,
    listener: Option<JoinHandle<()>>,
    recorder: Option<JoinHandle<()>>,
    heartbeat: Option<JoinHandle<()>>,
}

impl WorkerHandle {
    /// The id in this worker's leases.
    pub fn worker_id(&self) -> &str {
        &self.shared.worker_id
    }

    /// Stops fetching and scheduling, gives back jobs fetched but not started, waits up
    /// to the configured timeout for running jobs (recording those still running as
    /// failed attempts), records every outcome, then stops.
    pub async fn shutdown(mut self) -> ShutdownReport {
        let _ = self.stop.send(true);
        for fetcher in std::mem::take(&mut self.fetchers) {
            let _ = fetcher.await;
        }
        let slots = std::mem::take(&mut self.slots);
        let all_done = async {
            for (queue_slots, total) in &slots {
                let _ = queue_slots.acquire_many(*total as u32).await;
            }
        };
        if tokio::time::timeout(self.shared.config.shutdown_timeout, all_done)
            .await
            .is_err()
        {
            let _ = self.interrupt.send(true);
            for (queue_slots, total) in &slots {
                let _ = queue_slots.acquire_many(*total as u32).await;
            }
        }
        let _ = self.shared.outcomes.send(Outcome::Stop);
        if let Some(recorder) = self.recorder.take() {
            let _ = recorder.await;
        }
        let _ = self.heartbeat_stop.send(true);
        if let Some(heartbeat) = self.heartbeat.take() {
            let _ = heartbeat.await;
        }
        if let Some(listener) = self.listener.take() {
            listener.abort();
        }
        ShutdownReport {
            released: self.shared.released.load(Ordering::Relaxed),
            interrupted: self.shared.interrupted_jobs.load(Ordering::Relaxed),
        }
    }
}

impl Drop for WorkerHandle {
    fn drop(&mut self) {
        for task in self.fetchers.iter().chain(&self.listener) {
            task.abort();
        }
        for task in self.recorder.iter().chain(&self.heartbeat) {
            task.abort();
        }
        // Like a killed process: nothing more starts, running jobs stop, and nothing is
        // recorded; the leases expire and other workers take the jobs back.
        let _ = self.stop.send(true);
        let _ = self.interrupt.send(true);
    }
}

struct Shared {
    worker_pool: Pool,
    app_pool: Pool,
    worker_id: Arc<str>,
    config: WorkerConfig,
    handlers: HashMap<String, Handler>,
    /// Jobs leased to this worker whose outcome is not recorded yet, with the signal
    /// that stops one whose lease was lost.
    held: Mutex<HashMap<i64, Arc<Notify>>>,
    outcomes: mpsc::UnboundedSender<Outcome>,
    stopping: watch::Receiver<bool>,
    interrupted: watch::Receiver<bool>,
    released: AtomicUsize,
    interrupted_jobs: AtomicUsize,
}

enum Outcome {
    Completed(i64, Option<Value>),
    Failed(i64, String),
    /// Fetched, never started: give it back.
    Released(i64),
    /// The lease is no longer this worker's: nothing to record.
    Lost(i64),
    /// Everything before this is recorded; stop.
    Stop,
}

/// Resolves once `flag` is true (never, if its sender is gone without saying so).
async fn until_true(flag: &mut watch::Receiver<bool>) {
    if flag.wait_for(|set| *set).await.is_err() {
        futures::future::pending::<()>().await;
    }
}

/// Fetches of one queue in flight at once, at most.
const MAX_FETCHES: usize = 2;

/// A queue as its fetcher and jobs see it.
struct QueueState {
    config: QueueConfig,
    /// Fetched jobs not yet done hold one each.
    slots: Arc<Semaphore>,
    total: usize,
    /// Running jobs hold one each.
    running: Arc<Semaphore>,
    /// A moving average of the jobs' run time, in nanoseconds (0: none ran yet).
    run_time_ns: AtomicU64,
    /// A moving average of a fetch's round trip, in nanoseconds (0: none yet).
    fetch_time_ns: AtomicU64,
    /// Signalled when a job gives its slot back.
    done: Notify,
}

impl QueueState {
    /// How many jobs to fetch now (0: none yet), given the fetches in flight and the
    /// jobs they asked for: the free slots, less what the prefetch for the jobs' run
    /// time leaves out (about 50 ms of work ahead of the runners).
    ///
    /// With no fetch in flight: when fewer jobs wait than there are runners, now.
    /// Otherwise it depends on which is faster. If a fetch takes longer than running a
    /// full batch (short jobs), the fetches bound the throughput and each should be as
    /// large as it can be: it waits until the waiting jobs are down to fewer than the
    /// runners. If not, it fetches once half the slots are free and what waits would
    /// run out within two fetches, so that the next jobs arrive before the runners run
    /// dry. When the fetches bound the throughput, a second fetch of a full batch goes
    /// out while one is in flight, in the slots kept for it, so that the server works
    /// on one while the other's result and commit travel.
    fn wanted(&self, fetches: usize, asked: usize) -> usize {
        let run_time = self.run_time_ns.load(Ordering::Relaxed);
        let concurrency = self.config.concurrency;
        let prefetch = (concurrency as u64 * 50_000_000)
            .checked_div(run_time)
            .map_or(concurrency, |ahead| {
                usize::try_from(ahead).unwrap_or(usize::MAX)
            })
            .min(self.config.prefetch);
        let target = concurrency + prefetch;
        let in_use = self.total - self.slots.available_permits();
        let running = concurrency - self.running.available_permits();
        let waiting = in_use.saturating_sub(running + asked);
        // Nanoseconds the runners take for `jobs` jobs.
        let work = |jobs: usize| jobs as u64 * run_time / concurrency as u64;
        let fetch_time = self.fetch_time_ns.load(Ordering::Relaxed);
        let fetch_bound = work(target) < fetch_time;
        if fetches > 0 {
            return if fetches < MAX_FETCHES && fetch_bound && waiting < concurrency {
                (self.total - in_use).min(target)
            } else {
                0
            };
        }
        let free = target.saturating_sub(in_use);
        if free == 0 || waiting < concurrency {
            return free;
        }
        if !fetch_bound && free * 2 >= target && work(waiting) < 2 * fetch_time {
            free
        } else {
            0
        }
    }

    fn fetched_in(&self, took: Duration) {
        let sample = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX).max(1);
        let old = self.fetch_time_ns.load(Ordering::Relaxed);
        let new = if old == 0 {
            sample
        } else {
            (old * 7 + sample) / 8
        };
        self.fetch_time_ns.store(new, Ordering::Relaxed);
    }

    fn ran_for(&self, took: Duration) {
        let sample = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX).max(1);
        let old = self.run_time_ns.load(Ordering::Relaxed);
        let new = if old == 0 {
            sample
        } else {
            (old * 7 + sample) / 8
        };
        self.run_time_ns.store(new, Ordering::Relaxed);
    }
}

async fn fetch_loop(shared: Arc<Shared>, wake: Arc<Notify>, queue: Arc<QueueState>) {
    let slots = queue.slots.clone();
    let mut stopping = shared.stopping.clone();
    let mut backoff = Duration::from_millis(50);
    let (rate, tenant_rate) = (queue.config.rate_limit, queue.config.tenant_rate_limit);
    if rate.is_some() || tenant_rate.is_some() {
        loop {
            let set = in_transaction(&shared.worker_pool, async |tx| {
                job_rate_limit_set()
                    .bind(tx, &queue.config.name.as_str(), &rate, &tenant_rate)
                    .one()
                    .await?;
                Ok(())
            })
            .await;
            if set.is_ok() {
                break;
            }
            tokio::select! {
                () = until_true(&mut stopping) => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }
    let lease = shared.config.lease.as_secs_f64();
    // Each fetch in flight: the slots it holds for its jobs, and its result.
    let mut in_flight = FuturesUnordered::new();
    let mut asked_in_flight = 0;
    // No fetch starts before this (an empty queue, or a failure's backoff) unless woken.
    let mut idle_until: Option<Instant> = None;
    loop {
        let wanted = if idle_until.is_some() {
            0
        } else {
            queue.wanted(in_flight.len(), asked_in_flight)
        };
        if wanted > 0 {
            let mut permits = Vec::with_capacity(wanted);
            while permits.len() < wanted {
                match slots.clone().try_acquire_owned() {
                    Ok(permit) => permits.push(permit),
                    Err(_) => break,
                }
            }
            if !permits.is_empty() {
                let asked = permits.len();
                asked_in_flight += asked;
                let shared = shared.clone();
                let name = queue.config.name.clone();
                in_flight.push(async move {
                    let started = Instant::now();
                    let fetched = in_transaction(&shared.worker_pool, async |tx| {
                        Ok(job_fetch()
                            .bind(
                                tx,
                                &name.as_str(),
                                &shared.worker_id.as_ref(),
                                &(asked as i32),
                                &lease,
                            )
                            .all()
                            .await?)
                    })
                    .await;
                    (permits, fetched, started.elapsed())
                });
                continue;
            }
        }
        let idle = until_woken(&wake, idle_until);
        tokio::select! {
            biased;
            () = until_true(&mut stopping) => break,
            Some((mut permits, fetched, took)) = in_flight.next() => {
                let asked = permits.len();
                asked_in_flight -= asked;
                let jobs = match fetched {
                    Ok(jobs) => jobs,
                    Err(_) => {
                        idle_until = Some(Instant::now() + backoff);
                        backoff = (backoff * 2).min(Duration::from_secs(2));
                        continue;
                    }
                };
                backoff = Duration::from_millis(50);
                queue.fetched_in(took);
                dispatch(&shared, &queue, jobs, &mut permits).await;
                if permits.is_empty() {
                    // A full batch (perhaps the other fetch's, after this one found
                    // the queue empty): there is more to fetch now.
                    idle_until = None;
                    continue;
                }
                // Fewer jobs than asked: the queue is empty until woken or polled.
                if idle_until.is_none() {
                    idle_until = Some(Instant::now() + shared.config.poll_interval);
                }
            }
            () = queue.done.notified() => {}
            () = idle => idle_until = None,
        }
    }
    // Stopping: the jobs of fetches in flight are given back by their tasks.
    while let Some((mut permits, fetched, _)) = in_flight.next().await {
        if let Ok(jobs) = fetched {
            dispatch(&shared, &queue, jobs, &mut permits).await;
        }
    }
}

/// Resolves when `wake` is notified or at `until`; never without `until`.
async fn until_woken(wake: &Notify, until: Option<Instant>) {
    match until {
        Some(until) => {
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep_until(until.into()) => {}
            }
        }
        None => std::future::pending().await,
    }
}

/// Spawns a task for each fetched job, each with one of `permits`; those left over
/// stay in `permits`.
async fn dispatch(
    shared: &Arc<Shared>,
    queue: &Arc<QueueState>,
    jobs: Vec<FetchedJob>,
    permits: &mut Vec<OwnedSemaphorePermit>,
) {
    let mut signals = Vec::with_capacity(jobs.len());
    {
        let mut held = shared.held.lock().await;
        for job in &jobs {
            let lost = Arc::new(Notify::new());
            held.insert(job.id, lost.clone());
            signals.push(lost);
        }
    }
    let used = jobs.len().min(permits.len());
    for ((job, permit), lost) in jobs.into_iter().zip(permits.drain(..used)).zip(signals) {
        tokio::spawn(run_job(shared.clone(), job, permit, queue.clone(), lost));
    }
}

async fn run_job(
    shared: Arc<Shared>,
    job: FetchedJob,
    slot: OwnedSemaphorePermit,
    queue: Arc<QueueState>,
    lost: Arc<Notify>,
) {
    let mut stopping = shared.stopping.clone();
    let runner = tokio::select! {
        biased;
        () = until_true(&mut stopping) => None,
        permit = queue.running.clone().acquire_owned() => permit.ok(),
    };
    let outcome = match runner {
        None => {
            shared.released.fetch_add(1, Ordering::Relaxed);
            Outcome::Released(job.id)
        }
        Some(_runner) => {
            let started = Instant::now();
            let outcome = execute(&shared, job, &lost).await;
            queue.ran_for(started.elapsed());
            outcome
        }
    };
    let _ = shared.outcomes.send(outcome);
    drop(slot);
    queue.done.notify_one();
}

async fn execute(shared: &Shared, job: FetchedJob, lost: &Notify) -> Outcome {
    let id = job.id;
    let Some(handler) = shared.handlers.get(&job.kind) else {
        return Outcome::Failed(
            id,
            format!(
                "worker {} has no handler for job kind {}",
                shared.worker_id, job.kind
            ),
        );
    };
    let ctx = JobContext::new(
        id,
        job.organization_id,
        job.kind,
        job.attempt,
        job.max_attempts,
        shared.worker_id.clone(),
        shared.app_pool.clone(),
        shared.worker_pool.clone(),
    );
    let (timeout, run) = match handler(job.args, ctx.clone()) {
        Ok(started) => started,
        Err(e) => return Outcome::Failed(id, format!("the job's args do not decode: {e}")),
    };
    let mut interrupted = shared.interrupted.clone();
    tokio::select! {
        result = tokio::time::timeout(timeout, AssertUnwindSafe(run).catch_unwind()) => {
            match result {
                Err(_) => Outcome::Failed(id, format!("timed out after {timeout:?}")),
                Ok(Err(panic)) => Outcome::Failed(id, format!("panicked: {}", panic_message(&panic))),
                Ok(Ok(Err(error))) => Outcome::Failed(id, error.to_string()),
                Ok(Ok(Ok(()))) => Outcome::Completed(id, ctx.take_metrics().await),
            }
        }
        () = lost.notified() => Outcome::Lost(id),
        () = until_true(&mut interrupted) => {
            shared.interrupted_jobs.fetch_add(1, Ordering::Relaxed);
            Outcome::Failed(id, "interrupted: the worker shut down before the job finished".to_owned())
        }
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic without a message")
}

/// Records outcomes as they arrive: all that are waiting, in one round trip.
async fn record_loop(shared: Arc<Shared>, mut received: mpsc::UnboundedReceiver<Outcome>) {
    let mut stop = false;
    while !stop {
        let Some(first) = received.recv().await else {
            return;
        };
        let mut batch = vec![first];
        // Jobs that are about to finish send theirs once they run: yield to them while
        // that brings more, so that a batch of short jobs is recorded in one statement.
        loop {
            let before = batch.len();
            while batch.len() < 1000 {
                match received.try_recv() {
                    Ok(outcome) => batch.push(outcome),
                    Err(_) => break,
                }
            }
            if batch.len() == before || batch.len() >= 1000 {
                break;
            }
            tokio::task::yield_now().await;
        }
        let mut record = Record::default();
        for outcome in batch {
            match outcome {
                Outcome::Completed(id, None) => record.completed.push(id),
                Outcome::Completed(id, Some(metrics)) => record.with_metrics.push((id, metrics)),
                Outcome::Failed(id, error) => record.failed.push((id, error)),
                Outcome::Released(id) => record.released.push(id),
                Outcome::Lost(id) => record.lost.push(id),
                Outcome::Stop => stop = true,
            }
        }
        let started = Instant::now();
        let mut backoff = Duration::from_millis(50);
        // Through connection failures and server restarts: the leases outlast them.
        while let Err(_error) = record.write(&shared).await {
            let stopping = *shared.stopping.borrow();
            if stopping && started.elapsed() > shared.config.shutdown_timeout {
                break;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
        let mut held = shared.held.lock().await;
        for id in record.ids() {
            held.remove(&id);
        }
    }
}

#[derive(Default)]
struct Record {
    completed: Vec<i64>,
    with_metrics: Vec<(i64, Value)>,
    failed: Vec<(i64, String)>,
    released: Vec<i64>,
    lost: Vec<i64>,
}

impl Record {
    fn ids(&self) -> impl Iterator<Item = i64> + '_ {
        self.completed
            .iter()
            .copied()
            .chain(self.with_metrics.iter().map(|(id, _)| *id))
            .chain(self.failed.iter().map(|(id, _)| *id))
            .chain(self.released.iter().copied())
            .chain(self.lost.iter().copied())
    }

    /// One round trip: the statements are pipelined on one connection. Each is
    /// idempotent, so a retry after a failure records nothing twice.
    async fn write(&self, shared: &Shared) -> Result<(), Error> {
        if self.completed.is_empty()
            && self.with_metrics.is_empty()
            && self.failed.is_empty()
            && self.released.is_empty()
        {
            return Ok(());
        }
        let mut client = shared.worker_pool.get().await?;
        let tx = crate::pool::transaction(&mut client).await?;
        let client = &tx;
        let worker = shared.worker_id.as_ref();
        let complete = async {
            if !self.completed.is_empty() {
                job_complete_many()
                    .bind(client, &self.completed, &worker)
                    .all()
                    .await?;
            }
            Ok::<_, tokio_postgres::Error>(())
        };
        let release = async {
            if !self.released.is_empty() {
                job_release_many()
                    .bind(client, &self.released, &worker)
                    .all()
                    .await?;
            }
            Ok::<_, tokio_postgres::Error>(())
        };
        let with_metrics = futures::future::try_join_all(self.with_metrics.iter().map(
            |(id, metrics)| async move {
                job_complete()
                    .bind(client, id, &worker, &Some(metrics))
                    .one()
                    .await
            },
        ));
        let failed =
            futures::future::try_join_all(self.failed.iter().map(|(id, error)| async move {
                job_fail().bind(client, id, &worker, error).one().await
            }));
        futures::try_join!(complete, release, with_metrics, failed)?;
        crate::pool::commit(tx).await?;
        Ok(())
    }
}

/// Renews the leases of held jobs; stops those whose lease was lost.
async fn heartbeat_loop(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            () = until_true(&mut stop) => return,
            () = tokio::time::sleep(shared.config.heartbeat_interval) => {}
        }
        let ids: Vec<i64> = shared.held.lock().await.keys().copied().collect();
        if ids.is_empty() {
            continue;
        }
        let renewed = in_transaction(&shared.worker_pool, async |tx| {
            let mut renewed = HashSet::new();
            for chunk in ids.chunks(10_000) {
                renewed.extend(
                    job_heartbeat_many()
                        .bind(tx, &chunk, &shared.worker_id.as_ref())
                        .all()
                        .await?,
                );
            }
            Ok(renewed)
        })
        .await;
        let Ok(renewed) = renewed else { continue };
        let held = shared.held.lock().await;
        for id in ids.iter().filter(|id| !renewed.contains(id)) {
            if let Some(lost) = held.get(id) {
                lost.notify_one();
            }
        }
    }
}

/// Deletes finished jobs older than `retention` every `retention_interval`, a batch
/// after another while batches come back full.
async fn retention_loop(
    shared: Arc<Shared>,
    retention: Duration,
    mut stopping: watch::Receiver<bool>,
) {
    const BATCH: i32 = 10_000;
    let older_than = retention.as_secs_f64();
    loop {
        tokio::select! {
            () = until_true(&mut stopping) => return,
            () = tokio::time::sleep(shared.config.retention_interval) => {}
        }
        loop {
            let deleted = in_transaction(&shared.worker_pool, async |tx| {
                Ok(job_delete_finished()
                    .bind(tx, &older_than, &BATCH)
                    .one()
                    .await?)
            })
            .await;
            if *stopping.borrow() || !matches!(deleted, Ok(n) if n >= i64::from(BATCH)) {
                break;
            }
        }
    }
}

/// Wakes the queues named by `messaging_jobs` notifications, through the process's
/// shared listener for `url` ([`crate::listener`]), which reconnects by itself and
/// then wakes every queue (notifications may have been missed). Until the server can
/// be reached it tries again every half second; through a transaction pooler the
/// `LISTEN` is refused and the queues poll.
async fn listen_loop(
    url: String,
    wakes: HashMap<String, Arc<Notify>>,
    mut stopping: watch::Receiver<bool>,
) {
    let wakes = Arc::new(wakes);
    loop {
        let subscribed = match Listener::shared(&url).await {
            Ok(listener) => {
                let wakes = wakes.clone();
                listener
                    .subscribe("messaging_jobs", move |queue| match queue {
                        Some(queue) => {
                            if let Some(wake) = wakes.get(queue) {
                                wake.notify_one();
                            }
                        }
                        None => wakes.values().for_each(|wake| wake.notify_one()),
                    })
                    .await
            }
            Err(e) => Err(e),
        };
        match subscribed {
            Ok(_subscribed) => {
                wakes.values().for_each(|wake| wake.notify_one());
                return until_true(&mut stopping).await;
            }
            Err(Error::ListenNeedsDirectConnection { .. }) => return,
            Err(_) => {}
        }
        tokio::select! {
            () = until_true(&mut stopping) => return,
            () = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}
