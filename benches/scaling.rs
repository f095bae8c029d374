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
//! sums it up; the replica's lag is not measured by this benchmark yet (`n/a`). Run
//! with `cargo bench --bench scaling`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use groundwork::pool::{PoolConfig, PoolMode};
use groundwork::queries::identity::organizations::organization_get;
use groundwork::tenant::{Tenant, with_tenant};
use groundwork_testing::{DbRole, TestDb, start_pgbouncer};

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

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
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
    let (mut direct_rounds, mut pooled_rounds) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        direct_rounds.push(measure(&direct, tenant.tenant()).await);
        pooled_rounds.push(measure(&pooled, tenant.tenant()).await);
    }
    let (direct_per_s, pooled_per_s) = (median(direct_rounds), median(pooled_rounds));
    println!(
        "point selects, {TASKS} tasks: direct (8 connections) {direct_per_s:.0}/s, \
         through pgbouncer ({SERVER_CONNECTIONS} server connections) {pooled_per_s:.0}/s"
    );
    println!(
        "scaling: pooled_per_s={pooled_per_s:.0} direct_per_s={direct_per_s:.0} \
         ratio={:.2} replica_read_lag_p95_ms=n/a",
        pooled_per_s / direct_per_s
    );
    pooled.close();
    direct.close();
    drop(bouncer);
}
