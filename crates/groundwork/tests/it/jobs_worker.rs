//! The Rust worker (`groundwork::jobs`) on a real server: typed jobs enqueued in a
//! tenant transaction, run by a pool connected as a login role in `groundwork_worker`
//! (fetching) and one in `groundwork_app` (each job's own work, acting for its tenant);
//! failures, panics and timeouts, graceful shutdown, a killed worker, periodic jobs,
//! and a server restart in the middle of a drain.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use groundwork::jobs::{
    Job, JobContext, JobError, NewJob, Periodic, QueueConfig, Worker, WorkerConfig, enqueue,
    enqueue_many,
};
use groundwork::outbox::{self, NewMessage, Relay, RelayConfig, TestPublisher};
use groundwork::pool::PoolConfig;
use groundwork::tenant::Tenant;
use groundwork_testing::{DbRole, TestDb, TestTenant};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::common;

/// Records each run in `public.runs`, acting for the job's tenant: the tenant the
/// database saw, the job and its attempt.
#[derive(Serialize, Deserialize)]
struct Record {
    n: i64,
    /// Milliseconds to take.
    sleep_ms: u64,
}

impl Job for Record {
    const KIND: &'static str = "record";

    async fn run(self, ctx: JobContext) -> Result<(), JobError> {
        tokio::time::sleep(Duration::from_millis(self.sleep_ms)).await;
        let (id, attempt) = (ctx.id(), ctx.attempt());
        ctx.with_tenant(async |tx| {
            tx.execute(
                "INSERT INTO public.runs (job_id, n, attempt, tenant)
                 VALUES ($1, $2, $3, current_setting('app.current_org_id')::uuid)",
                &[&id, &self.n, &attempt],
            )
            .await?;
            Ok(())
        })
        .await?;
        ctx.set_metrics(json!({"n": self.n})).await;
        Ok(())
    }
}

/// A [`Record`] that also announces itself through the outbox, in the same tenant
/// transaction: `{"n": n}` on topic `announced`.
#[derive(Serialize, Deserialize)]
struct Announce {
    n: i64,
}

impl Job for Announce {
    const KIND: &'static str = "announce";

    async fn run(self, ctx: JobContext) -> Result<(), JobError> {
        let (id, attempt) = (ctx.id(), ctx.attempt());
        ctx.with_tenant(async |tx| {
            tx.execute(
                "INSERT INTO public.runs (job_id, n, attempt, tenant)
                 VALUES ($1, $2, $3, current_setting('app.current_org_id')::uuid)",
                &[&id, &self.n, &attempt],
            )
            .await?;
            outbox::enqueue(tx, &NewMessage::new("announced", json!({"n": self.n}))).await?;
            Ok(())
        })
        .await?;
        Ok(())
    }
}

/// Fails in the three ways a job can.
#[derive(Serialize, Deserialize)]
enum Trouble {
    Error,
    Panic,
    Hang,
}

impl Job for Trouble {
    const KIND: &'static str = "trouble";
    const MAX_ATTEMPTS: i32 = 1;

    fn timeout(&self) -> Duration {
        Duration::from_millis(300)
    }

    async fn run(self, _ctx: JobContext) -> Result<(), JobError> {
        match self {
            Trouble::Error => Err("the printer is on fire".into()),
            Trouble::Panic => panic!("the job fell over"),
            Trouble::Hang => {
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok(())
            }
        }
    }
}

const RUNS: &str = "(job_id bigint NOT NULL, n bigint NOT NULL, attempt integer NOT NULL,
                    tenant uuid NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())";

async fn setup<const N: usize>() -> (Arc<TestDb>, [TestTenant; N]) {
    let db = TestDb::builder().pool_size(16).build().await;
    common::scratch_table(&db, "runs", RUNS).await;
    let tenants = db.tenants().await;
    (Arc::new(db), tenants)
}

fn worker(db: &TestDb, config: WorkerConfig) -> Worker {
    Worker::new(
        db.pool(DbRole::Worker).clone(),
        db.pool(DbRole::App).clone(),
        config.listen_url(db.url(DbRole::Worker)),
    )
    .register::<Record>()
    .register::<Trouble>()
}

/// Enqueues `Record` jobs `from..to` for `tenant` in one batch, through the Rust API.
async fn enqueue_records(db: &TestDb, tenant: Tenant, range: std::ops::Range<i64>, sleep_ms: u64) {
    let jobs: Vec<NewJob> = range
        .map(|n| NewJob::of(&Record { n, sleep_ms }).unwrap())
        .collect();
    db.with_tenant(DbRole::App, tenant, async |tx| {
        enqueue_many(tx, &jobs).await
    })
    .await
    .unwrap();
}

/// Waits until `condition` (counted by the owner) holds at least `least` rows.
async fn wait_for_at_least(db: &TestDb, condition: &str, least: i64, within: Duration) {
    let deadline = Instant::now() + within;
    while db.count(condition).await < least {
        assert!(
            Instant::now() < deadline,
            "{condition}: fewer than {least} rows"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until `condition` (counted by the owner) holds `expected` rows.
async fn wait_for(db: &TestDb, condition: &str, expected: i64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let count = db.count(condition).await;
        if count == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{condition}: {count} rows, not {expected}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_runs_each_job_once_acting_for_its_tenant() {
    let (db, [a, b]) = setup::<2>().await;
    enqueue_records(&db, a.tenant(), 0..150, 0).await;
    enqueue_records(&db, b.tenant(), 150..200, 0).await;
    let handle = worker(&db, WorkerConfig::default())
        .queue("default", 4)
        .start();
    wait_for(
        &db,
        "messaging.jobs WHERE status = 'completed'",
        200,
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(handle.shutdown().await.released, 0);
    // Each job ran once, in its own tenant's context, and kept its metrics.
    assert_eq!(db.count("public.runs").await, 200);
    assert_eq!(
        db.count(
            "public.runs r JOIN messaging.jobs j ON j.id = r.job_id
             WHERE r.tenant = j.organization_id AND (j.args->>'n')::bigint = r.n
               AND j.metrics = jsonb_build_object('n', r.n) AND r.attempt = 1"
        )
        .await,
        200
    );
    assert_eq!(
        db.count("(SELECT DISTINCT job_id FROM public.runs) d")
            .await,
        200
    );

    // Enqueued in a transaction that rolls back, a job never exists.
    let mut client = db.pool(DbRole::App).get().await.unwrap();
    let tx = groundwork::tenant::begin(&mut client, a.tenant())
        .await
        .unwrap();
    enqueue(&tx, &Record { n: -1, sleep_ms: 0 }).await.unwrap();
    drop(tx);
    assert_eq!(db.count("messaging.jobs").await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_panics_and_timeouts_are_failed_attempts() {
    let (db, [a]) = setup::<1>().await;
    let ids = db
        .with_tenant(DbRole::App, a.tenant(), async |tx| {
            let mut ids = Vec::new();
            for trouble in [Trouble::Error, Trouble::Panic, Trouble::Hang] {
                ids.push(enqueue(tx, &trouble).await?);
            }
            let unknown = NewJob::new("nobody_runs_this", json!({})).max_attempts(1);
            ids.push(groundwork::jobs::enqueue_new(tx, &unknown).await?);
            let undecodable = NewJob::new("record", json!({"n": "not a number"})).max_attempts(1);
            ids.push(groundwork::jobs::enqueue_new(tx, &undecodable).await?);
            Ok(ids)
        })
        .await
        .unwrap();
    let handle = worker(&db, WorkerConfig::default())
        .queue("default", 4)
        .start();
    wait_for(
        &db,
        "messaging.jobs WHERE status = 'discarded'",
        5,
        Duration::from_secs(20),
    )
    .await;
    handle.shutdown().await;
    let owner = db.pool(DbRole::Owner).get().await.unwrap();
    let mut errors = HashMap::new();
    for row in owner
        .query("SELECT id, errors->0->>'error' FROM messaging.jobs", &[])
        .await
        .unwrap()
    {
        errors.insert(row.get::<_, i64>(0), row.get::<_, String>(1));
    }
    assert_eq!(errors[&ids[0]], "the printer is on fire");
    assert_eq!(errors[&ids[1]], "panicked: the job fell over");
    assert_eq!(errors[&ids[2]], "timed out after 300ms");
    assert!(errors[&ids[3]].contains("no handler for job kind nobody_runs_this"));
    assert!(
        errors[&ids[4]].starts_with("the job's args do not decode"),
        "{}",
        errors[&ids[4]]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_finishes_running_jobs_and_gives_back_the_rest() {
    let (db, [a]) = setup::<1>().await;
    enqueue_records(&db, a.tenant(), 0..30, 300).await;
    let handle = worker(&db, WorkerConfig::default())
        .queue_config(QueueConfig::new("default", 2).prefetch(10))
        .start();
    // Two run; until the worker knows how long they take, two more wait ahead.
    wait_for_at_least(
        &db,
        "messaging.jobs WHERE status = 'running'",
        4,
        Duration::from_secs(10),
    )
    .await;
    let report = handle.shutdown().await;
    // The two that ran finished; those fetched ahead went back untouched.
    assert_eq!(report.interrupted, 0);
    assert!(report.released >= 1, "{report:?}");
    assert_eq!(db.count("messaging.jobs WHERE status = 'running'").await, 0);
    let completed = db.count("messaging.jobs WHERE status = 'completed'").await;
    assert_eq!(db.count("public.runs").await, completed);
    assert_eq!(
        db.count("messaging.jobs WHERE status = 'available' AND attempt = 0")
            .await,
        30 - completed
    );
    // Another worker drains the rest: nothing lost, nothing run twice.
    let handle = worker(&db, WorkerConfig::default())
        .queue("default", 8)
        .start();
    wait_for(
        &db,
        "messaging.jobs WHERE status = 'completed'",
        30,
        Duration::from_secs(20),
    )
    .await;
    handle.shutdown().await;
    assert_eq!(db.count("public.runs").await, 30);
    assert_eq!(db.count("(SELECT DISTINCT n FROM public.runs) d").await, 30);

    // A job still running at the deadline is a failed attempt, retried later.
    enqueue_records(&db, a.tenant(), 30..31, 5000).await;
    let handle = worker(
        &db,
        WorkerConfig::default().shutdown_timeout(Duration::from_millis(200)),
    )
    .queue("default", 1)
    .start();
    wait_for(
        &db,
        "messaging.jobs WHERE status = 'running'",
        1,
        Duration::from_secs(10),
    )
    .await;
    // The row says the job was fetched; a job fetched but not yet started when the
    // shutdown begins is given back instead. Give the worker time to start it (it
    // takes 5 s to run).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let report = handle.shutdown().await;
    assert_eq!(report.interrupted, 1, "{report:?}");
    assert_eq!(
        db.count(
            "messaging.jobs WHERE status = 'retryable'
               AND errors->0->>'error' LIKE 'interrupted%'"
        )
        .await,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_workers_jobs_are_taken_back_and_completed_once() {
    let (db, [a]) = setup::<1>().await;
    // Jobs long enough (40 of 250 ms, 4 at a time) that the killed worker surely holds
    // some when it is killed, however slowly the machine polls.
    enqueue_records(&db, a.tenant(), 0..40, 250).await;
    let lease = Duration::from_secs(1);
    let killed = worker(&db, WorkerConfig::default().lease(lease))
        .queue("default", 4)
        .start();
    wait_for_at_least(
        &db,
        "messaging.jobs WHERE status = 'completed'",
        8,
        Duration::from_secs(10),
    )
    .await;
    wait_for_at_least(
        &db,
        "messaging.jobs WHERE status = 'running'",
        1,
        Duration::from_secs(10),
    )
    .await;
    let killed_id = killed.worker_id().to_owned();
    drop(killed);
    let rescuer = worker(&db, WorkerConfig::default().lease(lease))
        .queue("default", 4)
        .start();
    wait_for(
        &db,
        "messaging.jobs WHERE status = 'completed'",
        40,
        Duration::from_secs(30),
    )
    .await;
    rescuer.shutdown().await;
    assert_eq!(db.count("(SELECT DISTINCT n FROM public.runs) d").await, 40);
    // What the killed worker held came back with its lost attempt counted.
    let rescued = db
        .count(&format!(
            "messaging.jobs WHERE attempt >= 2 AND errors->0->>'worker_id' = '{killed_id}'"
        ))
        .await;
    assert!(rescued >= 1, "{rescued} rescued");
}

/// Where [`a_killed_worker_process_loses_and_repeats_nothing`] tells its child process
/// how to connect: the worker's URL, the application's URL and the worker id, one per
/// line.
const WORKER_PROCESS_ENV: &str = "GROUNDWORK_TEST_WORKER_PROCESS";

/// The worker process [`a_killed_worker_process_loses_and_repeats_nothing`] starts
/// (this test binary again, running only this test) and kills; on its own it does
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the child process of a_killed_worker_process_loses_and_repeats_nothing"]
async fn worker_process() {
    let Ok(setting) = std::env::var(WORKER_PROCESS_ENV) else {
        return;
    };
    let [worker_url, app_url, id] =
        <[&str; 3]>::try_from(setting.lines().collect::<Vec<_>>()).expect("three lines");
    let pool = |url: &str| PoolConfig::new(url).build().unwrap();
    let _running = Worker::new(
        pool(worker_url),
        pool(app_url),
        WorkerConfig::default()
            .worker_id(id)
            .lease(Duration::from_secs(1))
            .listen_url(worker_url),
    )
    .register::<Record>()
    .queue("default", 4)
    .start();
    // Until killed.
    futures::future::pending::<()>().await;
}

/// Kills a child process on drop, whatever happened to the test.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_process_loses_and_repeats_nothing() {
    let (db, [a]) = setup::<1>().await;
    enqueue_records(&db, a.tenant(), 0..40, 100).await;
    let killed_id = format!("killed-{}", Uuid::new_v4().simple());
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "jobs_worker::worker_process",
            "--ignored",
            "--test-threads=1",
        ])
        .env(
            WORKER_PROCESS_ENV,
            format!(
                "{}\n{}\n{killed_id}",
                db.url(DbRole::Worker),
                db.url(DbRole::App)
            ),
        )
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Killed(child);
    wait_for_at_least(
        &db,
        "messaging.jobs WHERE status = 'completed'",
        8,
        Duration::from_secs(30),
    )
    .await;
    wait_for_at_least(
        &db,
        &format!("messaging.jobs WHERE status = 'running' AND lease_owner = '{killed_id}'"),
        4,
        Duration::from_secs(10),
    )
    .await;
    // SIGKILL: no shutdown, no give-back; the server sees the connections drop.
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let held = db
        .count(&format!(
            "messaging.jobs WHERE status = 'running' AND lease_owner = '{killed_id}'"
        ))
        .await;
    assert!(held >= 1, "the killed process held {held} jobs");
    let rescuer = worker(&db, WorkerConfig::default().lease(Duration::from_secs(1)))
        .queue("default", 4)
        .start();
    wait_for(
        &db,
        "messaging.jobs WHERE status = 'completed'",
        40,
        Duration::from_secs(30),
    )
    .await;
    rescuer.shutdown().await;
    // Every job ran; one that ran twice did so only as a later attempt (its first run
    // committed in the killed process before the completion was recorded).
    assert_eq!(db.count("(SELECT DISTINCT n FROM public.runs) d").await, 40);
    assert_eq!(
        db.count(
            "(SELECT job_id FROM public.runs GROUP BY job_id
              HAVING count(*) > count(DISTINCT attempt)) twice"
        )
        .await,
        0
    );
    // What the killed process held came back with its lost attempt counted.
    assert_eq!(
        db.count(&format!(
            "messaging.jobs WHERE attempt >= 2 AND errors->0->>'worker_id' = '{killed_id}'"
        ))
        .await,
        held
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_jobs_are_enqueued_once_per_period_across_workers() {
    let (db, [a]) = setup::<1>().await;
    assert!(
        Periodic::new(
            "bad",
            "every minute",
            a.organization_id,
            NewJob::new("x", json!({}))
        )
        .is_err()
    );
    let schedule = || {
        Periodic::new(
            "tick",
            "* * * * * *",
            a.organization_id,
            NewJob::of(&Record { n: 7, sleep_ms: 0 }).unwrap(),
        )
        .unwrap()
    };
    let workers: Vec<_> = (0..3)
        .map(|_| {
            worker(&db, WorkerConfig::default())
                .queue("default", 2)
                .periodic(schedule())
                .start()
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(3500)).await;
    for handle in workers {
        handle.shutdown().await;
    }
    let periods = db
        .count("messaging.jobs WHERE idempotency_key LIKE 'periodic:tick:%'")
        .await;
    assert!((3..=5).contains(&periods), "{periods} periods in 3.5 s");
    // One job per period, however many workers; the due ones ran once each.
    let runs = db.count("public.runs").await;
    let done = db.count("messaging.jobs WHERE status = 'completed'").await;
    assert_eq!(runs, done);
    assert!(done >= 2, "{done}");
}

/// A durable cluster of the test's own, in a directory removed (and a server stopped)
/// when this is dropped.
struct OwnCluster {
    cluster: groundwork_provision::PersistentCluster,
    dir: std::path::PathBuf,
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let _ = self.cluster.stop();
        let _ = std::fs::remove_dir_all(self.cluster.dir());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_in_the_middle_of_a_drain_loses_and_repeats_nothing() {
    use std::os::unix::fs::PermissionsExt;
    let base = std::env::var("GROUNDWORK_TMPDIR").unwrap_or_else(|_| "/dev/shm".to_owned());
    let dir = Path::new(&base).join(format!("gw-jobs-restart-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    // A cluster this test may restart needs PostgreSQL's programs on this machine.
    let cluster = match groundwork_provision::PersistentCluster::new(dir.join("cluster")) {
        Ok(cluster) => cluster,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            eprintln!("skipped: no local PostgreSQL to restart: {e}");
            return;
        }
    };
    let own = OwnCluster { cluster, dir };
    let port = own.cluster.start().unwrap().port;
    let url = |user: &str, database: &str| format!("postgres://{user}@127.0.0.1:{port}/{database}");
    let admin = groundwork_testing_connect(&url("postgres", "postgres")).await;
    admin.batch_execute("CREATE DATABASE jobs").await.unwrap();
    let owner = groundwork_testing_connect(&url("postgres", "jobs")).await;
    let migrations =
        groundwork_migrate::Migration::load_dir(Path::new(groundwork_testing::DEFAULT_MIGRATIONS))
            .unwrap();
    groundwork_migrate::Migrator::new(migrations)
        .up(&owner, groundwork_migrate::UpOptions::default())
        .await
        .unwrap();
    let organization_id = Uuid::new_v4();
    owner
        .batch_execute(&format!(
            "CREATE ROLE restart_app LOGIN IN ROLE groundwork_app;
             CREATE ROLE restart_worker LOGIN IN ROLE groundwork_worker;
             CREATE ROLE restart_relay LOGIN IN ROLE groundwork_relay;
             CREATE TABLE public.runs {RUNS};
             GRANT INSERT ON public.runs TO groundwork_app;
             INSERT INTO identity.organizations (id, name, slug)
             VALUES ('{organization_id}', 'Restart', 'restart');"
        ))
        .await
        .unwrap();
    drop(owner);
    let pool = |user: &str| {
        let mut config = PoolConfig::new(url(user, "jobs"));
        config.max_size = 8;
        config.build().unwrap()
    };
    let (app, workers, relays) = (
        pool("restart_app"),
        pool("restart_worker"),
        pool("restart_relay"),
    );
    let jobs: Vec<NewJob> = (0..3000)
        .map(|n| NewJob::of(&Announce { n }).unwrap())
        .collect();
    {
        let mut client = app.get().await.unwrap();
        groundwork::tenant::with_tenant(
            &mut client,
            Tenant::organization(organization_id),
            async |tx| enqueue_many(tx, &jobs).await,
        )
        .await
        .unwrap();
    }
    // Each worker process also runs an outbox relay, as a service's would.
    let publisher = Arc::new(TestPublisher::new());
    let relay_config = RelayConfig {
        lease: Duration::from_secs(2),
        ..RelayConfig::default()
    };
    let start = |id: &str| {
        Worker::new(
            workers.clone(),
            app.clone(),
            WorkerConfig::default()
                .worker_id(id)
                .poll_interval(Duration::from_millis(200))
                .listen_url(url("restart_worker", "jobs")),
        )
        .register::<Announce>()
        .queue("default", 4)
        .outbox_relay(Relay::new(relays.clone(), relay_config), publisher.clone())
        .start()
    };
    let handles = [start("restart-a"), start("restart-b")];
    let count = |sql: &'static str| {
        let url = url("postgres", "jobs");
        async move {
            let Ok((client, connection)) =
                tokio_postgres::connect(&url, tokio_postgres::NoTls).await
            else {
                return None;
            };
            tokio::spawn(connection);
            client
                .query_one(sql, &[])
                .await
                .ok()
                .map(|r| r.get::<_, i64>(0))
        }
    };
    let completed = "SELECT count(*) FROM messaging.jobs WHERE status = 'completed'";
    while count(completed).await.unwrap_or(0) < 800 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // pg_ctl stop -m fast, then start: every connection is cut mid-drain.
    let cluster = own.cluster.clone();
    tokio::task::spawn_blocking(move || {
        cluster.stop().unwrap();
        cluster.start().unwrap();
    })
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    let undelivered = "SELECT count(*) FROM messaging.outbox_messages WHERE status <> 'delivered'";
    while count(completed).await != Some(3000) || count(undelivered).await != Some(0) {
        assert!(
            Instant::now() < deadline,
            "the drain or the relay did not finish after the restart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for handle in handles {
        handle.shutdown().await;
    }
    // No job lost; a job ran twice only if it ran again as a later attempt.
    assert_eq!(
        count("SELECT count(DISTINCT n) FROM public.runs").await,
        Some(3000)
    );
    assert_eq!(
        count(
            "SELECT count(*) FROM (SELECT job_id FROM public.runs GROUP BY job_id
                                   HAVING count(*) > 1 AND max(attempt) = 1) twice"
        )
        .await,
        Some(0)
    );
    assert_eq!(
        count("SELECT count(*) FROM messaging.jobs WHERE status <> 'completed'").await,
        Some(0)
    );
    // Every run's message was published, at least once, by the relays that carried on.
    assert_eq!(
        count("SELECT count(*) FROM messaging.outbox_messages").await,
        count("SELECT count(*) FROM public.runs").await
    );
    let published: std::collections::HashSet<i64> = publisher
        .delivered()
        .iter()
        .map(|m| m.payload["n"].as_i64().unwrap())
        .collect();
    assert_eq!(published.len(), 3000);
    drop(own);
}

async fn groundwork_testing_connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
    tokio::spawn(connection);
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_holds_across_workers() {
    let (db, [a]) = setup::<1>().await;
    enqueue_records(&db, a.tenant(), 0..40, 0).await;
    let queue = QueueConfig::new("default", 4).rate_limit(5.0);
    let workers: Vec<_> = (0..2)
        .map(|_| {
            worker(
                &db,
                WorkerConfig::default().poll_interval(Duration::from_millis(50)),
            )
            .queue_config(queue.clone())
            .start()
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for handle in workers {
        handle.shutdown().await;
    }
    // A burst of five, then five a second, for both workers together.
    let started = db.count("messaging.jobs WHERE attempt > 0").await;
    assert!((8..=14).contains(&started), "{started} started in 1.5 s");
    assert_eq!(db.count("public.runs").await, started);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_deletes_finished_jobs_after_their_retention() {
    let (db, [a, b]) = setup::<2>().await;
    enqueue_records(&db, a.tenant(), 0..20, 0).await;
    enqueue_records(&db, b.tenant(), 20..25, 0).await;
    let scheduled = NewJob::of(&Record { n: 99, sleep_ms: 0 })
        .unwrap()
        .run_at(chrono::Utc::now() + chrono::Duration::hours(1));
    db.with_tenant(DbRole::App, a.tenant(), async |tx| {
        groundwork::jobs::enqueue_new(tx, &scheduled).await
    })
    .await
    .unwrap();
    let handle = worker(
        &db,
        WorkerConfig::default()
            .retention(Some(Duration::from_millis(300)), Duration::from_millis(100)),
    )
    .queue("default", 4)
    .start();
    // Every tenant's finished jobs go; the one still to run stays.
    wait_for(&db, "messaging.jobs", 1, Duration::from_secs(20)).await;
    handle.shutdown().await;
    assert_eq!(db.count("public.runs").await, 25);
    assert_eq!(
        db.count("messaging.jobs WHERE status = 'scheduled'").await,
        1
    );
}
