//! Point selects through PgBouncer in transaction mode against the same selects on
//! direct connections, in the same run.
//!
//! Each operation is what a service's request does: take a connection from the
//! pool, `tenant::with_tenant` (BEGIN with the tenant context), one generated point
//! select (`organization_get`), COMMIT. 8 tasks run it in a loop, as the application
//! role: on 8 direct connections, then through a PgBouncer with 3 server connections
//! (`PoolMode::Transaction`, so each transaction prepares its statement). Each
//! configuration runs ROUNDS times for RUN, interleaved; the median counts. The line
//! `scaling: pooled_per_s=... direct_per_s=... ratio=... replica_read_lag_p95_ms=...`
//! sums it up.
//!
//! The ceiling: the same point select as one message per transaction (`BEGIN`, the
//! tenant, the select and `COMMIT` in one simple query, one round trip, raw
//! tokio-postgres with no library around it), direct and through the same PgBouncer,
//! interleaved with the rounds above. No client can spend fewer round trips, so its
//! ratio bounds what any client library reaches through this pooler on this machine
//! (`scaling ceiling: ...`).
//!
//! The replica's lag: a throw-away primary and a hot standby made with
//! `pg_basebackup -R` (`groundwork_provision::StandbyPair`); 8 writers insert rows of
//! about 200 bytes of JSON on the primary as fast as they can while a probe, every
//! 5 ms, commits a row, takes `pg_current_wal_insert_lsn()` and polls the standby's
//! `pg_last_wal_replay_lsn()` until it has passed it: the time from the commit's
//! return until a read on the standby would see it. Run with
//! `cargo bench --bench scaling`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use groundwork::pool::Lsn;
use groundwork::pool::{PoolConfig, PoolMode};
use groundwork::queries::identity::organizations::organization_get;
use groundwork::tenant::{Tenant, with_tenant};
use groundwork_provision::StandbyPair;
use groundwork_testing::{DbRole, TestDb, start_pgbouncer};
use tokio_postgres::{NoTls, SimpleQueryMessage};

// The median the benchmarks share.
#[path = "support/stats.rs"]
mod stats;
use stats::median;

const RUN: Duration = Duration::from_secs(2);
const ROUNDS: usize = 5;
const TASKS: usize = 8;
const SERVER_CONNECTIONS: u16 = 3;

/// Operations per second of `TASKS` tasks on `pool` for `RUN`.
async fn measure(pool: &Pool, tenant: Tenant) -> f64 {
    let org = tenant.organization_id.unwrap_or_default();
    let ops = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + RUN;
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let pool = pool.clone();
        let ops = ops.clone();
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let mut client = pool.get().await.unwrap();
                with_tenant(&mut client, tenant, async |tx| {
                    Ok(organization_get().bind(tx, &org).one().await?)
                })
                .await
                .unwrap();
                ops.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    ops.load(Ordering::Relaxed) as f64 / RUN.as_secs_f64()
}

/// Transactions per second of `TASKS` tasks, each on its own connection to `url`,
/// sending each transaction as one message.
async fn measure_one_message(url: &str, tenant: Tenant) -> f64 {
    let org = tenant.organization_id.unwrap_or_default();
    let user = tenant.user_id.unwrap_or_default();
    let transaction = format!(
        "BEGIN; SELECT set_config('app.current_org_id', '{org}', true), \
         set_config('app.current_user_id', '{user}', true); \
         SELECT id, name FROM identity.organizations WHERE id = '{org}'; COMMIT"
    );
    let ops = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for _ in 0..TASKS {
        clients.push(connect(url).await);
    }
    let deadline = Instant::now() + RUN;
    let mut tasks = Vec::new();
    for client in clients {
        let (ops, transaction) = (ops.clone(), transaction.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let rows = client.simple_query(&transaction).await.unwrap();
                assert!(rows.iter().any(|m| matches!(m, SimpleQueryMessage::Row(_))));
                ops.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    ops.load(Ordering::Relaxed) as f64 / RUN.as_secs_f64()
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

async fn lsn(client: &tokio_postgres::Client, sql: &str) -> Option<Lsn> {
    client
        .simple_query(sql)
        .await
        .unwrap()
        .iter()
        .find_map(|message| match message {
            SimpleQueryMessage::Row(row) => row.get(0)?.parse().ok(),
            _ => None,
        })
}

/// Waits until the standby has replayed `target`.
async fn replayed(standby: &tokio_postgres::Client, target: Lsn) {
    while lsn(standby, "SELECT pg_last_wal_replay_lsn()::text")
        .await
        .is_none_or(|replayed| replayed < target)
    {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

const INSERT_LSN: &str = "SELECT pg_current_wal_insert_lsn()::text";

/// The standby's replay lag (milliseconds, sorted) under `TASKS` writers, and the
/// writers' rows per second.
async fn replica_lag() -> (Vec<f64>, f64) {
    let pair = tokio::task::spawn_blocking(StandbyPair::start)
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("starting a primary and a standby: {e}"));
    let primary_url = pair.primary_url("postgres");
    let primary = connect(&primary_url).await;
    let standby = connect(&pair.standby_url("postgres")).await;
    primary
        .batch_execute("CREATE TABLE public.lag_probe (id bigserial PRIMARY KEY, payload jsonb)")
        .await
        .unwrap();
    replayed(&standby, lsn(&primary, INSERT_LSN).await.unwrap()).await;
    let deadline = Instant::now() + Duration::from_secs(3);
    let rows = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for _ in 0..TASKS {
        let (url, rows) = (primary_url.clone(), rows.clone());
        writers.push(tokio::spawn(async move {
            let client = connect(&url).await;
            let insert = client
                .prepare("INSERT INTO public.lag_probe (payload) VALUES ($1)")
                .await
                .unwrap();
            let payload =
                serde_json::json!({"kind": "Tick", "tags": ["a", "b"], "data": "x".repeat(150)});
            while Instant::now() < deadline {
                client.execute(&insert, &[&payload]).await.unwrap();
                rows.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let mut lags = Vec::new();
    while Instant::now() < deadline {
        primary
            .batch_execute("INSERT INTO public.lag_probe (payload) VALUES ('{}')")
            .await
            .unwrap();
        let committed = Instant::now();
        let target = lsn(&primary, INSERT_LSN).await.unwrap();
        replayed(&standby, target).await;
        lags.push(committed.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for writer in writers {
        writer.await.unwrap();
    }
    lags.sort_by(f64::total_cmp);
    (lags, rows.load(Ordering::Relaxed) as f64 / 3.0)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let db = TestDb::builder().pool_size(TASKS).build().await;
    let [tenant] = db.tenants().await;
    let bouncer = tokio::task::spawn_blocking(|| start_pgbouncer(SERVER_CONNECTIONS))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("starting pgbouncer: {e}"));
    let direct = {
        let mut config = PoolConfig::new(db.url(DbRole::App));
        config.max_size = TASKS;
        config.build().unwrap()
    };
    let pooled = {
        let mut config =
            PoolConfig::new(db.url_through(DbRole::App, &bouncer)).mode(PoolMode::Transaction);
        config.max_size = TASKS;
        config.build().unwrap()
    };
    // Warm-up: connections opened, types looked up, plans cached.
    measure(&direct, tenant.tenant()).await;
    measure(&pooled, tenant.tenant()).await;
    let (direct_url, pooled_url) = (
        db.url(DbRole::App).to_owned(),
        db.url_through(DbRole::App, &bouncer),
    );
    let (mut direct_rounds, mut pooled_rounds) = (Vec::new(), Vec::new());
    let (mut raw_direct_rounds, mut raw_pooled_rounds) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        direct_rounds.push(measure(&direct, tenant.tenant()).await);
        pooled_rounds.push(measure(&pooled, tenant.tenant()).await);
        raw_direct_rounds.push(measure_one_message(&direct_url, tenant.tenant()).await);
        raw_pooled_rounds.push(measure_one_message(&pooled_url, tenant.tenant()).await);
    }
    let (direct_per_s, pooled_per_s) = (median(direct_rounds), median(pooled_rounds));
    let (raw_direct_per_s, raw_pooled_per_s) =
        (median(raw_direct_rounds), median(raw_pooled_rounds));
    println!(
        "point selects, {TASKS} tasks: direct (8 connections) {direct_per_s:.0}/s, \
         through pgbouncer ({SERVER_CONNECTIONS} server connections) {pooled_per_s:.0}/s"
    );
    println!(
        "scaling ceiling: one_message_direct_per_s={raw_direct_per_s:.0} \
         one_message_pooled_per_s={raw_pooled_per_s:.0} ratio={:.2}",
        raw_pooled_per_s / raw_direct_per_s
    );
    pooled.close();
    direct.close();
    drop(bouncer);
    let (lags, rows_per_s) = replica_lag().await;
    let p95 = lags[lags.len() * 95 / 100];
    println!(
        "replica lag under {rows_per_s:.0} inserts/s ({} probes): p50 {:.2} ms, p95 {p95:.2} ms",
        lags.len(),
        lags[lags.len() / 2]
    );
    println!(
        "scaling: pooled_per_s={pooled_per_s:.0} direct_per_s={direct_per_s:.0} \
         ratio={:.2} replica_read_lag_p95_ms={p95:.2}",
        pooled_per_s / direct_per_s
    );
}
