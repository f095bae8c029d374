//! The job queue's SQL API (`messaging.jobs`) on a real server, as services and workers
//! connect: the application role with a tenant set enqueues, cancels and retries; a
//! login role in `groundwork_worker`, with no tenant, fetches, heartbeats, completes
//! and fails. Every refusal is checked with its SQLSTATE and that nothing was written;
//! concurrency with real concurrent transactions.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use groundwork::Error;
use groundwork::queries::messaging::jobs::{job_cancel, job_enqueue, job_get};
use groundwork::tenant::{Tenant, begin};
use groundwork::types::messaging::JobStatus;
use groundwork_testing::{DbRole, TestDb, TestTenant};
use serde_json::{Value, json};
use tokio_postgres::error::SqlState;
use uuid::Uuid;

/// A job as a worker sees it after a fetch.
#[derive(Clone, Debug, PartialEq)]
struct Leased {
    id: i64,
    organization_id: Uuid,
    kind: String,
    args: Value,
    attempt: i32,
}

/// A database with `N` tenants and pools of `pool_size`.
async fn setup<const N: usize>(pool_size: usize) -> (Arc<TestDb>, [TestTenant; N]) {
    let db = TestDb::builder().pool_size(pool_size).build().await;
    let tenants = db.tenants().await;
    (Arc::new(db), tenants)
}

/// `messaging.enqueue_job(kind, args, queue, priority, run_at, key, max_attempts)` as the
/// application role acting for `tenant`, each argument as other languages pass it.
async fn enqueue(db: &TestDb, tenant: Tenant, call: &str) -> Result<i64, Error> {
    let sql = format!("SELECT messaging.enqueue_job({call})");
    db.with_tenant(DbRole::App, tenant, async |tx| {
        Ok(tx.query_one(&sql, &[]).await?.get(0))
    })
    .await
}

/// `n` jobs of `kind` with args `{"n": i}` in one batch; their ids.
async fn enqueue_batch(db: &TestDb, tenant: Tenant, kind: &str, n: i32) -> Vec<i64> {
    db.with_tenant(DbRole::App, tenant, async |tx| {
        Ok(tx
            .query(
                "SELECT id FROM messaging.enqueue_jobs(
                     ARRAY(SELECT $1::text FROM generate_series(1, $2)),
                     ARRAY(SELECT jsonb_build_object('n', g) FROM generate_series(1, $2) g)) id",
                &[&kind, &n],
            )
            .await?
            .iter()
            .map(|row| row.get(0))
            .collect())
    })
    .await
    .unwrap()
}

/// `sql` as the worker role, in a transaction of its own as the library's worker
/// runs its statements (so that it also works through a transaction pooler).
async fn worker_query(
    db: &TestDb,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<tokio_postgres::Row>, Error> {
    let mut client = db.pool(DbRole::Worker).get().await?;
    let tx = groundwork::pool::transaction(&mut client).await?;
    let rows = tx.query(sql, params).await?;
    groundwork::pool::commit(tx).await?;
    Ok(rows)
}

/// `messaging.fetch_jobs` as the worker role.
async fn fetch(
    db: &TestDb,
    queue: &str,
    worker: &str,
    max_jobs: i32,
    lease_seconds: f64,
) -> Result<Vec<Leased>, Error> {
    let rows = worker_query(
        db,
        "SELECT id, organization_id, kind, args, attempt
         FROM messaging.fetch_jobs($1, $2, $3, make_interval(secs => $4))",
        &[&queue, &worker, &max_jobs, &lease_seconds],
    )
    .await?;
    Ok(rows
        .iter()
        .map(|row| Leased {
            id: row.get(0),
            organization_id: row.get(1),
            kind: row.get(2),
            args: row.get(3),
            attempt: row.get(4),
        })
        .collect())
}

/// One of the worker functions (`complete_job`, `fail_job`, `heartbeat_job`) that
/// returns whether the lease was still the worker's.
async fn worker_call(db: &TestDb, sql: &str) -> Result<bool, Error> {
    Ok(worker_query(db, sql, &[]).await?[0].get(0))
}

/// `messaging.complete_jobs` as the worker role: the ids it completed.
async fn complete_all(db: &TestDb, worker: &str, ids: &[i64]) -> Vec<i64> {
    worker_query(
        db,
        "SELECT id FROM messaging.complete_jobs($1, $2) id",
        &[&ids, &worker],
    )
    .await
    .unwrap()
    .iter()
    .map(|row| row.get(0))
    .collect()
}

/// A job's state as the owner sees it (for checking what was written).
#[derive(Debug)]
struct State {
    status: String,
    attempt: i32,
    errors: Value,
    lease_owner: Option<String>,
    /// Seconds from now to run_at.
    due_in: f64,
    finished: bool,
    progress: i16,
}

async fn state(db: &TestDb, id: i64) -> State {
    let row = db
        .pool(DbRole::Owner)
        .get()
        .await
        .unwrap()
        .query_one(
            "SELECT status::text, attempt, errors, lease_owner,
                    extract(epoch FROM run_at - clock_timestamp())::float8,
                    finished_at IS NOT NULL, progress
             FROM messaging.jobs WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    State {
        status: row.get(0),
        attempt: row.get(1),
        errors: row.get(2),
        lease_owner: row.get(3),
        due_in: row.get(4),
        finished: row.get(5),
        progress: row.get(6),
    }
}

fn sqlstate(result: Result<impl std::fmt::Debug, Error>) -> String {
    let err = result.expect_err("refused");
    err.code()
        .map(|c| c.code().to_owned())
        .unwrap_or_else(|| format!("no SQLSTATE: {err:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_concurrent_workers_complete_every_job_exactly_once() {
    let (db, [a, b]) = setup::<2>(12).await;
    let mut enqueued = enqueue_batch(&db, a.tenant(), "work", 1500).await;
    enqueued.extend(enqueue_batch(&db, b.tenant(), "work", 500).await);
    let mut workers = Vec::new();
    for w in 0..4 {
        let db = db.clone();
        workers.push(tokio::spawn(async move {
            let worker = format!("worker-{w}");
            let (mut fetched, mut completed) = (Vec::<i64>::new(), Vec::<i64>::new());
            loop {
                let batch = fetch(&db, "default", &worker, 25, 30.0).await.unwrap();
                if batch.is_empty() {
                    break;
                }
                let ids: Vec<i64> = batch.iter().map(|j| j.id).collect();
                assert!(batch.iter().all(|j| j.attempt == 1), "{batch:?}");
                fetched.extend(&ids);
                completed.extend(complete_all(&db, &worker, &ids).await);
            }
            (fetched, completed)
        }));
    }
    let (mut fetched, mut completed) = (Vec::new(), Vec::new());
    for worker in workers {
        let (f, c) = worker.await.unwrap();
        fetched.extend(f);
        completed.extend(c);
    }
    assert_eq!(fetched.len(), 2000, "each job fetched once");
    assert_eq!(completed.len(), 2000, "each job completed once");
    let unique: HashSet<i64> = completed.iter().copied().collect();
    assert_eq!(unique, enqueued.iter().copied().collect());
    assert_eq!(
        db.count("messaging.jobs WHERE status = 'completed' AND attempt = 1 AND progress = 100")
            .await,
        2000
    );
    // Completing again changes nothing.
    assert!(complete_all(&db, "worker-0", &completed).await.is_empty());
}

#[tokio::test]
async fn a_killed_workers_jobs_are_rescued_after_the_lease_and_it_cannot_finish_them() {
    let (db, [a]) = setup::<1>(4).await;
    let ids = enqueue_batch(&db, a.tenant(), "work", 3).await;
    let last = enqueue(
        &db,
        a.tenant(),
        "'once', '{}', 'default', 0::smallint, now(), NULL, 1",
    )
    .await
    .unwrap();
    // The killed worker took everything with a one-second lease and never came back.
    let taken = fetch(&db, "default", "killed", 10, 1.0).await.unwrap();
    assert_eq!(taken.len(), 4);
    assert!(
        fetch(&db, "default", "rescuer", 10, 30.0)
            .await
            .unwrap()
            .is_empty(),
        "the lease is honoured"
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let rescued = fetch(&db, "default", "rescuer", 10, 30.0).await.unwrap();
    let rescued_ids: HashSet<i64> = rescued.iter().map(|j| j.id).collect();
    assert_eq!(rescued_ids, ids.iter().copied().collect());
    assert!(
        rescued.iter().all(|j| j.attempt == 2),
        "the lost attempt counts: {rescued:?}"
    );
    // The job with one attempt used it up.
    let once = state(&db, last).await;
    assert_eq!(once.status, "discarded");
    assert!(once.finished);
    assert_eq!(once.errors[0]["error"], "lease expired");
    assert_eq!(once.errors[0]["worker_id"], "killed");

    // The stale worker can neither complete, fail nor heartbeat them.
    for id in &ids {
        for call in [
            format!("SELECT messaging.complete_job({id}, 'killed')"),
            format!("SELECT messaging.fail_job({id}, 'killed', 'late')"),
            format!("SELECT messaging.heartbeat_job({id}, 'killed', 50::smallint)"),
        ] {
            assert!(!worker_call(&db, &call).await.unwrap(), "{call}");
        }
    }
    assert!(complete_all(&db, "killed", &ids).await.is_empty());
    for id in &ids {
        let job = state(&db, *id).await;
        assert_eq!(job.status, "running");
        assert_eq!(job.lease_owner.as_deref(), Some("rescuer"));
        assert_eq!(job.progress, 0);
        assert_eq!(job.errors.as_array().unwrap().len(), 1, "{:?}", job.errors);
    }
    assert_eq!(complete_all(&db, "rescuer", &ids).await.len(), 3);
}

#[tokio::test]
async fn heartbeats_keep_a_one_second_lease_and_record_progress() {
    let (db, [a]) = setup::<1>(4).await;
    let id = enqueue(&db, a.tenant(), "'long', '{}'").await.unwrap();
    assert_eq!(fetch(&db, "default", "w", 1, 1.0).await.unwrap().len(), 1);
    for progress in [30, 60, 90] {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let call = format!("SELECT messaging.heartbeat_job({id}, 'w', {progress}::smallint)");
        assert!(worker_call(&db, &call).await.unwrap());
        assert!(
            fetch(&db, "default", "other", 1, 1.0)
                .await
                .unwrap()
                .is_empty()
        );
    }
    assert_eq!(state(&db, id).await.progress, 90);
    let renewed: Vec<i64> = worker_query(
        &db,
        "SELECT id FROM messaging.heartbeat_jobs($1, 'w') id",
        &[&vec![id]],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect();
    assert_eq!(renewed, [id]);
    let call = format!("SELECT messaging.complete_job({id}, 'w', '{{\"rows\": 7}}')");
    assert!(worker_call(&db, &call).await.unwrap());
    let metrics: Value = db
        .pool(DbRole::Owner)
        .get()
        .await
        .unwrap()
        .query_one("SELECT metrics FROM messaging.jobs WHERE id = $1", &[&id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(metrics, json!({"rows": 7}));
}

#[tokio::test]
async fn failures_back_off_exponentially_with_jitter_then_discard() {
    let (db, [a]) = setup::<1>(4).await;
    let id = enqueue(
        &db,
        a.tenant(),
        "'flaky', '{}', 'default', 0::smallint, now(), NULL, 3",
    )
    .await
    .unwrap();
    let mut delays = Vec::new();
    for attempt in 1..=3 {
        let batch = loop {
            let batch = fetch(&db, "default", "w", 5, 30.0).await.unwrap();
            if !batch.is_empty() {
                break batch;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(batch.len(), 1);
        assert_eq!(
            batch[0].attempt, attempt,
            "a due retry is fetched by fetch_jobs"
        );
        let call = format!("SELECT messaging.fail_job({id}, 'w', 'boom {attempt}')");
        assert!(worker_call(&db, &call).await.unwrap());
        let job = state(&db, id).await;
        if attempt < 3 {
            assert_eq!(job.status, "retryable");
            assert!(!job.finished);
            delays.push(job.due_in);
            // Not before its time.
            assert!(
                fetch(&db, "default", "w", 5, 30.0)
                    .await
                    .unwrap()
                    .is_empty()
            );
        } else {
            assert_eq!(job.status, "discarded", "the third attempt was the last");
            assert!(job.finished);
            let errors: Vec<(i64, &str)> = job
                .errors
                .as_array()
                .unwrap()
                .iter()
                .map(|e| (e["attempt"].as_i64().unwrap(), e["error"].as_str().unwrap()))
                .collect();
            assert_eq!(errors, [(1, "boom 1"), (2, "boom 2"), (3, "boom 3")]);
        }
    }
    // 2^(attempt - 1) seconds, give or take 20%.
    assert!((0.5..=1.2).contains(&delays[0]), "{delays:?}");
    assert!((1.3..=2.4).contains(&delays[1]), "{delays:?}");
    assert!(
        fetch(&db, "default", "w", 5, 30.0)
            .await
            .unwrap()
            .is_empty()
    );
    // A discarded job can be retried by its tenant.
    let retried = db
        .with_tenant(DbRole::App, a.tenant(), async |tx| {
            Ok(tx
                .query_one("SELECT messaging.retry_job($1)", &[&id])
                .await?
                .get::<_, bool>(0))
        })
        .await
        .unwrap();
    assert!(retried);
    assert_eq!(
        fetch(&db, "default", "w", 5, 30.0).await.unwrap()[0].attempt,
        4
    );
}

#[tokio::test]
async fn scheduled_jobs_wait_for_their_time_and_queues_are_apart() {
    let (db, [a]) = setup::<1>(4).await;
    let later = enqueue(
        &db,
        a.tenant(),
        "'report', '{}', 'default', 0::smallint, now() + interval '700 milliseconds'",
    )
    .await
    .unwrap();
    let mail = enqueue(&db, a.tenant(), "'mail', '{}', 'mail'")
        .await
        .unwrap();
    assert_eq!(state(&db, later).await.status, "scheduled");
    assert_eq!(state(&db, mail).await.status, "available");
    assert!(
        fetch(&db, "default", "w", 5, 30.0)
            .await
            .unwrap()
            .is_empty()
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    let due = fetch(&db, "default", "w", 5, 30.0).await.unwrap();
    assert_eq!(due.iter().map(|j| j.id).collect::<Vec<_>>(), [later]);
    let mails = fetch(&db, "mail", "w", 5, 30.0).await.unwrap();
    assert_eq!(mails.len(), 1);
    assert_eq!((mails[0].id, mails[0].kind.as_str()), (mail, "mail"));
    assert_eq!(mails[0].organization_id, a.organization_id);
    assert_eq!(mails[0].args, json!({}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_enqueues_with_one_key_make_one_job_per_tenant() {
    let (db, [a, b]) = setup::<2>(24).await;
    let barrier = Arc::new(tokio::sync::Barrier::new(20));
    let mut calls = Vec::new();
    for n in 0..20 {
        let (db, barrier) = (db.clone(), barrier.clone());
        calls.push(tokio::spawn(async move {
            let mut client = db.pool(DbRole::App).get().await.unwrap();
            let tx = begin(&mut client, a.tenant()).await.unwrap();
            barrier.wait().await;
            let id = job_enqueue()
                .bind(
                    &tx,
                    &"charge",
                    &json!({"call": n}),
                    &"default",
                    &0,
                    &None::<chrono::DateTime<chrono::FixedOffset>>,
                    &Some("charge-42"),
                    &25,
                )
                .one()
                .await
                .unwrap();
            // Hold the key a moment, so that the others wait for this commit.
            tokio::time::sleep(Duration::from_millis(20)).await;
            tx.commit().await.unwrap();
            id
        }));
    }
    let mut ids = HashSet::new();
    for call in calls {
        ids.insert(call.await.unwrap());
    }
    assert_eq!(ids.len(), 1, "every caller got the same job: {ids:?}");
    assert_eq!(
        db.count("messaging.jobs WHERE idempotency_key = 'charge-42'")
            .await,
        1
    );
    // The key is per tenant; in a batch, a repeated key is the same job.
    let b_id = enqueue(
        &db,
        b.tenant(),
        "'charge', '{}', 'default', 0::smallint, now(), 'charge-42'",
    )
    .await
    .unwrap();
    assert!(!ids.contains(&b_id));
    let batch: Vec<i64> = db
        .with_tenant(DbRole::App, a.tenant(), async |tx| {
            Ok(tx
                .query(
                    "SELECT id FROM messaging.enqueue_jobs(ARRAY['x', 'x', 'x'],
                         ARRAY['{}', '{}', '{}']::jsonb[], NULL, NULL, NULL,
                         ARRAY['charge-42', 'new', 'new']) id",
                    &[],
                )
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect())
        })
        .await
        .unwrap();
    assert_eq!(batch[0], *ids.iter().next().unwrap());
    assert_eq!(batch[1], batch[2]);
    assert_eq!(db.count("messaging.jobs").await, 3);
}

#[tokio::test]
async fn cancelled_jobs_do_not_run_and_a_running_ones_worker_loses_it() {
    let (db, [a, b]) = setup::<2>(4).await;
    let cancel = |tenant: Tenant, id: i64| {
        let db = db.clone();
        async move {
            db.with_tenant(DbRole::App, tenant, async |tx| {
                Ok(job_cancel().bind(tx, &id).one().await?)
            })
            .await
            .unwrap()
        }
    };
    let waiting = enqueue(&db, a.tenant(), "'w', '{}'").await.unwrap();
    assert!(!cancel(b.tenant(), waiting).await, "not B's to cancel");
    assert_eq!(state(&db, waiting).await.status, "available");
    assert!(cancel(a.tenant(), waiting).await);
    assert!(!cancel(a.tenant(), waiting).await, "cancelled already");
    let job = state(&db, waiting).await;
    assert_eq!((job.status.as_str(), job.finished), ("cancelled", true));
    assert!(
        fetch(&db, "default", "w", 5, 30.0)
            .await
            .unwrap()
            .is_empty()
    );

    let running = enqueue(&db, a.tenant(), "'r', '{}'").await.unwrap();
    assert_eq!(fetch(&db, "default", "w", 5, 30.0).await.unwrap().len(), 1);
    assert!(cancel(a.tenant(), running).await);
    for call in [
        format!("SELECT messaging.heartbeat_job({running}, 'w')"),
        format!("SELECT messaging.complete_job({running}, 'w')"),
        format!("SELECT messaging.fail_job({running}, 'w', 'x')"),
    ] {
        assert!(!worker_call(&db, &call).await.unwrap(), "{call}");
    }
    assert_eq!(state(&db, running).await.status, "cancelled");

    let done = enqueue(&db, a.tenant(), "'d', '{}'").await.unwrap();
    fetch(&db, "default", "w", 5, 30.0).await.unwrap();
    assert_eq!(complete_all(&db, "w", &[done]).await, [done]);
    assert!(!cancel(a.tenant(), done).await, "finished");
    let status = db
        .with_tenant(DbRole::App, a.tenant(), async |tx| {
            Ok(job_get().bind(tx, &done).one().await?.status)
        })
        .await
        .unwrap();
    assert_eq!(status, JobStatus::Completed);
}

#[tokio::test]
async fn fetches_are_fair_across_tenants_and_by_priority_within_one() {
    let (db, [a, b]) = setup::<2>(4).await;
    enqueue_batch(&db, a.tenant(), "bulk", 2000).await;
    let urgent = enqueue(&db, a.tenant(), "'urgent', '{}', 'default', (-5)::smallint")
        .await
        .unwrap();
    let small: HashSet<i64> = enqueue_batch(&db, b.tenant(), "small", 10)
        .await
        .into_iter()
        .collect();
    let mut started_in_batch = HashMap::new();
    let mut first_batch = Vec::new();
    for batch_number in 1..=5 {
        let batch = fetch(&db, "default", "w", 10, 30.0).await.unwrap();
        assert_eq!(batch.len(), 10);
        if batch_number == 1 {
            first_batch = batch.clone();
        }
        for job in &batch {
            if small.contains(&job.id) {
                started_in_batch.insert(job.id, batch_number);
            }
        }
        let ids: Vec<i64> = batch.iter().map(|j| j.id).collect();
        complete_all(&db, "w", &ids).await;
    }
    assert_eq!(
        started_in_batch.len(),
        10,
        "B's ten jobs start within the first five batches behind A's 2,000: {started_in_batch:?}"
    );
    // Round robin: the first batch alternates between the tenants, and A's first job
    // is its most urgent one.
    let owners: Vec<Uuid> = first_batch.iter().map(|j| j.organization_id).collect();
    assert_eq!(
        owners.iter().filter(|o| **o == b.organization_id).count(),
        5
    );
    assert_eq!(owners[0], a.organization_id, "A has waited longest");
    assert_eq!(first_batch[0].id, urgent);
    assert_eq!(owners[1], b.organization_id);
}

#[tokio::test]
async fn every_refusal_has_its_sqlstate_and_writes_nothing() {
    let (db, [a]) = setup::<1>(4).await;
    let t = a.tenant();
    let long = "x".repeat(201);
    let big = format!("jsonb_build_object('s', repeat('x', {}))", 300 * 1024);
    let cases: Vec<(String, &str)> = vec![
        ("NULL, '{}'".into(), "22004"),
        ("'k', NULL".into(), "22004"),
        ("'1k', '{}'".into(), "22023"),
        ("'k k', '{}'".into(), "22023"),
        (format!("'{long}', '{{}}'"), "54000"),
        (format!("'k', {big}"), "54000"),
        ("'k', '{}', 'Bad Queue'".into(), "22023"),
        ("'k', '{}', ''".into(), "22023"),
        (format!("'k', '{{}}', '{}'", "q".repeat(64)), "54000"),
        ("'k', '{}', 'default', 101::smallint".into(), "22023"),
        ("'k', '{}', 'default', (-101)::smallint".into(), "22023"),
        (
            "'k', '{}', 'default', 0::smallint, 'infinity'".into(),
            "22023",
        ),
        (
            "'k', '{}', 'default', 0::smallint, now(), ''".into(),
            "22023",
        ),
        (
            format!(
                "'k', '{{}}', 'default', 0::smallint, now(), '{}'",
                "k".repeat(256)
            ),
            "54000",
        ),
        (
            "'k', '{}', 'default', 0::smallint, now(), NULL, 0".into(),
            "22023",
        ),
        (
            "'k', '{}', 'default', 0::smallint, now(), NULL, 101".into(),
            "22023",
        ),
    ];
    for (call, code) in &cases {
        assert_eq!(&sqlstate(enqueue(&db, t, call).await), code, "{call}");
    }
    // Without a tenant; as the read-only role; as the worker.
    assert_eq!(
        sqlstate(enqueue(&db, Tenant::default(), "'k', '{}'").await),
        "42501"
    );
    let readonly = db
        .with_tenant(DbRole::Readonly, t, async |tx| {
            Ok(tx
                .batch_execute("SELECT messaging.enqueue_job('k', '{}')")
                .await?)
        })
        .await;
    assert_eq!(sqlstate(readonly), "42501");
    // Batches: one bad job refuses all, named by its position; shapes and size.
    let batch = |sql: &'static str| {
        let db = db.clone();
        async move {
            db.with_tenant(DbRole::App, t, async |tx| Ok(tx.batch_execute(sql).await?))
                .await
        }
    };
    let err =
        batch("SELECT messaging.enqueue_jobs(ARRAY['ok', 'not ok'], ARRAY['{}', '{}']::jsonb[])")
            .await
            .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::INVALID_PARAMETER_VALUE));
    assert!(err.to_string().contains("job 2 of 2"), "{err}");
    assert_eq!(
        sqlstate(
            batch("SELECT messaging.enqueue_jobs(ARRAY['a', 'b'], ARRAY['{}']::jsonb[])").await
        ),
        "22023"
    );
    assert_eq!(
        sqlstate(
            batch(
                "SELECT messaging.enqueue_jobs(ARRAY(SELECT 'a' FROM generate_series(1, 10001)),
                     ARRAY(SELECT '{}'::jsonb FROM generate_series(1, 10001)))"
            )
            .await
        ),
        "54000"
    );
    assert_eq!(db.count("messaging.jobs").await, 0, "nothing was written");

    // The worker's functions.
    let id = enqueue(&db, t, "'k', '{}'").await.unwrap();
    for (queue, worker, max_jobs, lease, code) in [
        ("default", "w", 0, 30.0, "22023"),
        ("default", "w", 1001, 30.0, "54000"),
        ("default", "w", 10, 0.5, "22023"),
        ("default", "w", 10, 86401.0, "22023"),
        ("default", "", 10, 30.0, "22023"),
        ("default", long.as_str(), 10, 30.0, "54000"),
        ("Default", "w", 10, 30.0, "22023"),
    ] {
        let result = fetch(&db, queue, worker, max_jobs, lease).await;
        assert_eq!(
            sqlstate(result),
            code,
            "{queue} {worker} {max_jobs} {lease}"
        );
    }
    let null_worker = worker_query(
        &db,
        "SELECT * FROM messaging.fetch_jobs('default', NULL, 10)",
        &[],
    )
    .await;
    assert_eq!(sqlstate(null_worker), "22004");
    let job = state(&db, id).await;
    assert_eq!((job.status.as_str(), job.attempt), ("available", 0));

    assert_eq!(fetch(&db, "default", "w", 10, 30.0).await.unwrap().len(), 1);
    for (call, code) in [
        (
            format!("SELECT messaging.complete_job({id}, 'w', '[]')"),
            "22023",
        ),
        (
            format!(
                "SELECT messaging.complete_job({id}, 'w', jsonb_build_object('s', repeat('x', 70000)))"
            ),
            "54000",
        ),
        (
            format!("SELECT messaging.fail_job({id}, 'w', NULL)"),
            "22004",
        ),
        (
            "SELECT messaging.fail_job(NULL, 'w', 'x')".to_owned(),
            "22004",
        ),
        (
            format!("SELECT messaging.heartbeat_job({id}, 'w', 101::smallint)"),
            "22023",
        ),
        (
            format!("SELECT messaging.heartbeat_job({id}, NULL)"),
            "22004",
        ),
    ] {
        assert_eq!(sqlstate(worker_call(&db, &call).await), code, "{call}");
    }
    let job = state(&db, id).await;
    assert_eq!(
        (job.status.as_str(), job.attempt, job.progress),
        ("running", 1, 0)
    );
    assert_eq!(job.errors, json!([]));
}

#[tokio::test]
async fn tenants_see_only_their_jobs_and_the_worker_reads_no_tenant_table() {
    let (db, [a, b]) = setup::<2>(4).await;
    let a_job = enqueue(&db, a.tenant(), "'a', '{\"secret\": 1}'")
        .await
        .unwrap();
    let b_job = enqueue(&db, b.tenant(), "'b', '{}'").await.unwrap();
    let seen = |tenant: Tenant, role: DbRole| {
        let db = db.clone();
        async move {
            db.with_tenant(role, tenant, async |tx| {
                Ok(tx
                    .query("SELECT id FROM messaging.jobs ORDER BY id", &[])
                    .await?
                    .iter()
                    .map(|r| r.get::<_, i64>(0))
                    .collect::<Vec<_>>())
            })
            .await
            .unwrap()
        }
    };
    assert_eq!(seen(a.tenant(), DbRole::App).await, [a_job]);
    assert_eq!(seen(b.tenant(), DbRole::Readonly).await, [b_job]);
    assert!(seen(Tenant::default(), DbRole::App).await.is_empty());
    let b_seen_by_a = db
        .with_tenant(DbRole::App, a.tenant(), async |tx| {
            Ok(job_get().bind(tx, &b_job).opt().await?)
        })
        .await
        .unwrap();
    assert!(b_seen_by_a.is_none());

    // A cannot write jobs directly, nor act as a worker; retry and cancel of B's
    // jobs find nothing.
    for sql in [
        "INSERT INTO messaging.jobs (kind, args) VALUES ('x', '{}')".to_owned(),
        format!("UPDATE messaging.jobs SET status = 'completed' WHERE id = {a_job}"),
        format!("DELETE FROM messaging.jobs WHERE id = {a_job}"),
        "SELECT * FROM messaging.fetch_jobs('default', 'w', 10)".to_owned(),
        format!("SELECT messaging.complete_job({a_job}, 'w')"),
        "SELECT messaging.delete_finished_jobs()".to_owned(),
    ] {
        let result = db
            .with_tenant(DbRole::App, a.tenant(), async |tx| {
                Ok(tx.batch_execute(&sql).await?)
            })
            .await;
        assert_eq!(sqlstate(result), "42501", "{sql}");
    }
    let moved = db
        .with_tenant(DbRole::App, a.tenant(), async |tx| {
            let cancel: bool = tx
                .query_one("SELECT messaging.cancel_job($1)", &[&b_job])
                .await?
                .get(0);
            let retry: bool = tx
                .query_one("SELECT messaging.retry_job($1)", &[&b_job])
                .await?
                .get(0);
            Ok((cancel, retry))
        })
        .await
        .unwrap();
    assert_eq!(moved, (false, false));
    assert_eq!(state(&db, b_job).await.status, "available");

    // The worker reads no tenant table and cannot enqueue.
    let worker = db.pool(DbRole::Worker).get().await.unwrap();
    for sql in [
        "SELECT count(*) FROM messaging.jobs",
        "SELECT count(*) FROM messaging.outbox_messages",
        "SELECT count(*) FROM identity.organizations",
        "SELECT count(*) FROM identity.users",
        "SELECT messaging.enqueue_job('k', '{}')",
        "SELECT messaging.cancel_job(1)",
    ] {
        let result = worker.batch_execute(sql).await.map_err(Error::from);
        assert_eq!(sqlstate(result), "42501", "{sql}");
    }
    assert_eq!(db.count("messaging.jobs").await, 2);
}

#[tokio::test]
async fn enqueueing_notifies_the_queue_without_tenant_data() {
    let (db, [a]) = setup::<1>(4).await;
    let (listener, mut connection) =
        tokio_postgres::connect(db.url(DbRole::Worker), tokio_postgres::NoTls)
            .await
            .unwrap();
    let (sender, mut heard) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        use futures::StreamExt;
        let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(Ok(message)) = messages.next().await {
            if let tokio_postgres::AsyncMessage::Notification(n) = message {
                let _ = sender.send(n);
            }
        }
    });
    listener
        .batch_execute("LISTEN messaging_jobs")
        .await
        .unwrap();
    enqueue(&db, a.tenant(), "'k', '{\"who\": \"x\"}', 'mail'")
        .await
        .unwrap();
    let notification = tokio::time::timeout(Duration::from_secs(5), heard.recv())
        .await
        .expect("the worker hears of the job")
        .unwrap();
    assert_eq!(notification.channel(), "messaging_jobs");
    assert_eq!(
        notification.payload(),
        "mail",
        "the queue's name, nothing else"
    );
    // A job for later wakes nobody.
    enqueue(
        &db,
        a.tenant(),
        "'k', '{}', 'mail', 0::smallint, now() + interval '1 hour'",
    )
    .await
    .unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(300), heard.recv())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn finished_jobs_are_deleted_after_their_retention() {
    let (db, [a]) = setup::<1>(4).await;
    let ids = enqueue_batch(&db, a.tenant(), "k", 3).await;
    let keyed = enqueue(
        &db,
        a.tenant(),
        "'k', '{}', 'default', 0::smallint, now(), 'once'",
    )
    .await
    .unwrap();
    fetch(&db, "default", "w", 2, 30.0).await.unwrap();
    let done = complete_all(&db, "w", &ids).await;
    assert_eq!(done.len(), 2, "two were fetched");
    let kept: i64 = worker_query(&db, "SELECT messaging.delete_finished_jobs()", &[])
        .await
        .unwrap()[0]
        .get(0);
    assert_eq!(kept, 0, "finished less than seven days ago");
    let deleted: i64 = worker_query(
        &db,
        "SELECT messaging.delete_finished_jobs('0 seconds', 1)",
        &[],
    )
    .await
    .unwrap()[0]
        .get(0);
    assert_eq!(deleted, 1, "at most max_rows");
    let deleted: i64 = worker_query(
        &db,
        "SELECT messaging.delete_finished_jobs('0 seconds')",
        &[],
    )
    .await
    .unwrap()[0]
        .get(0);
    assert_eq!(deleted, 1);
    assert_eq!(db.count("messaging.jobs").await, 2, "unfinished jobs stay");
    let err = worker_query(&db, "SELECT messaging.delete_finished_jobs('-1 day')", &[]).await;
    assert_eq!(sqlstate(err), "22023");
    assert!(keyed > 0);
}

#[tokio::test]
async fn rate_limits_hold_across_workers_for_the_queue_and_each_tenant() {
    let (db, [a, b]) = setup::<2>(4).await;
    enqueue_batch(&db, a.tenant(), "k", 10).await;
    enqueue_batch(&db, b.tenant(), "k", 10).await;
    let worker = db.pool(DbRole::Worker).get().await.unwrap();
    // Three jobs a second in the queue, one per tenant.
    worker
        .batch_execute("SELECT messaging.set_job_rate_limit('default', 3, 1)")
        .await
        .unwrap();
    let first = fetch(&db, "default", "w1", 10, 30.0).await.unwrap();
    let owners: HashSet<Uuid> = first.iter().map(|j| j.organization_id).collect();
    assert_eq!(first.len(), 2, "one per tenant");
    assert_eq!(owners.len(), 2);
    assert!(
        fetch(&db, "default", "w2", 10, 30.0)
            .await
            .unwrap()
            .is_empty(),
        "another worker gets nothing: the buckets are in the database"
    );
    tokio::time::sleep(Duration::from_millis(1050)).await;
    assert_eq!(
        fetch(&db, "default", "w2", 10, 30.0).await.unwrap().len(),
        2
    );

    // The queue's own limit: two a second, whatever the tenants.
    worker
        .batch_execute("SELECT messaging.set_job_rate_limit('default', 2)")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1050)).await;
    assert_eq!(
        fetch(&db, "default", "w1", 10, 30.0).await.unwrap().len(),
        2
    );
    assert!(
        fetch(&db, "default", "w1", 10, 30.0)
            .await
            .unwrap()
            .is_empty()
    );
    // Removed, the rest comes at once.
    worker
        .batch_execute("SELECT messaging.set_job_rate_limit('default', NULL)")
        .await
        .unwrap();
    assert_eq!(
        fetch(&db, "default", "w1", 100, 30.0).await.unwrap().len(),
        14
    );
    for (sql, code) in [
        ("SELECT messaging.set_job_rate_limit('default', 0)", "22023"),
        (
            "SELECT messaging.set_job_rate_limit('default', NULL, -1)",
            "22023",
        ),
        ("SELECT messaging.set_job_rate_limit('Bad', 1)", "22023"),
        ("SELECT messaging.set_job_rate_limit(NULL, 1)", "22004"),
    ] {
        let result = worker.batch_execute(sql).await.map_err(Error::from);
        assert_eq!(sqlstate(result), code, "{sql}");
    }
    // The application role cannot set limits or read the buckets.
    let app = db
        .with_tenant(DbRole::App, a.tenant(), async |tx| {
            Ok(tx
                .batch_execute("SELECT messaging.set_job_rate_limit('default', 1000)")
                .await?)
        })
        .await;
    assert_eq!(sqlstate(app), "42501");
    assert_eq!(db.count("messaging.job_rate_limits").await, 0);
}

#[tokio::test]
async fn with_more_tenants_than_jobs_asked_for_the_longest_waiting_go_first() {
    let (db, [a, b, c]) = setup::<3>(4).await;
    // C's job waits longest, then A's, then B's.
    let c_job = enqueue(
        &db,
        c.tenant(),
        "'k', '{}', 'default', 0::smallint, now() - interval '3 minutes'",
    )
    .await
    .unwrap();
    let a_job = enqueue(
        &db,
        a.tenant(),
        "'k', '{}', 'default', 0::smallint, now() - interval '2 minutes'",
    )
    .await
    .unwrap();
    let b_job = enqueue(
        &db,
        b.tenant(),
        "'k', '{}', 'default', 0::smallint, now() - interval '1 minute'",
    )
    .await
    .unwrap();
    enqueue_batch(&db, a.tenant(), "k", 5).await;
    let ids = |batch: Vec<Leased>| batch.iter().map(|j| j.id).collect::<Vec<_>>();
    assert_eq!(
        ids(fetch(&db, "default", "w", 2, 30.0).await.unwrap()),
        [c_job, a_job]
    );
    let next = fetch(&db, "default", "w", 2, 30.0).await.unwrap();
    assert_eq!(next[0].id, b_job, "B waited longest now");
    assert_eq!(next[1].organization_id, a.organization_id);
}
