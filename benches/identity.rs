//! API-key authentication throughput through the pool, next to a bare `SELECT 1`
//! round trip through the same pool in the same run.
//!
//! Each of `WORKERS` tasks takes a pooled connection of the application role per
//! request, as a request handler would, and either authenticates one of 100 issued keys (hash, look up,
//! record the use: one UPDATE ... RETURNING in a SECURITY DEFINER function) or runs
//! `SELECT 1`. Run with `cargo bench --bench identity`; the last line is
//! `api_key_auth: keys_per_s=<x> select1_per_s=<y> ratio=<x/y>`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use groundwork::identity::{NewApiKey, authenticate_api_key, issue_api_key};
use groundwork::tenant::begin;
use groundwork_testing::{DbRole, TestDb};

const WORKERS: usize = 8;
const RUN: Duration = Duration::from_secs(4);

#[derive(Clone, Copy)]
enum Work {
    AuthenticateKey,
    SelectOne,
}

async fn measure(db: &TestDb, keys: Arc<Vec<String>>, work: Work) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + RUN;
    let mut tasks = Vec::new();
    for worker in 0..WORKERS {
        let pool = db.pool(DbRole::App).clone();
        let keys = keys.clone();
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = worker;
            while Instant::now() < deadline {
                let client = pool.get().await.expect("pooled connection");
                match work {
                    Work::AuthenticateKey => {
                        let key = &keys[i % keys.len()];
                        let principal = authenticate_api_key(&client, key).await.expect("auth");
                        assert!(principal.is_some());
                    }
                    Work::SelectOne => {
                        client.query_one("SELECT 1", &[]).await.expect("select 1");
                    }
                }
                done.fetch_add(1, Ordering::Relaxed);
                i += WORKERS;
            }
        }));
    }
    let started = Instant::now();
    for task in tasks {
        task.await.expect("worker");
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let db = TestDb::builder().pool_size(WORKERS).build().await;
    let [tenant] = db.tenants().await;
    let mut client = db.pool(DbRole::App).get().await.unwrap();
    let tx = begin(&mut client, tenant.tenant()).await.unwrap();
    let mut keys = Vec::new();
    for i in 0..100 {
        let issued = issue_api_key(&tx, &NewApiKey::new(format!("key {i}")).scopes(["read"]))
            .await
            .unwrap();
        keys.push(issued.plaintext);
    }
    tx.commit().await.unwrap();
    drop(client);
    let keys = Arc::new(keys);
    // Warm-up: fill the pool and the plan caches.
    measure(&db, keys.clone(), Work::SelectOne).await;
    let mut auth = Vec::new();
    let mut select = Vec::new();
    for _ in 0..2 {
        select.push(measure(&db, keys.clone(), Work::SelectOne).await);
        auth.push(measure(&db, keys.clone(), Work::AuthenticateKey).await);
    }
    let best = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    let (keys_per_s, select_per_s) = (best(&auth), best(&select));
    println!(
        "{WORKERS} workers, 2 cores, {}s per run, best of 2 runs",
        RUN.as_secs()
    );
    println!("api key authentication: {keys_per_s:>9.0} /s   runs {auth:.0?}");
    println!("SELECT 1 round trip:    {select_per_s:>9.0} /s   runs {select:.0?}");
    println!(
        "api_key_auth: keys_per_s={keys_per_s:.0} select1_per_s={select_per_s:.0} ratio={:.2}",
        keys_per_s / select_per_s
    );
}
