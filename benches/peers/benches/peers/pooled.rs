//! Part 2: point selects through `groundwork::pool` against `pgbench -S -M prepared`.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use groundwork_testing::{DbRole, TestDb};

const SECONDS: u64 = 5;
const ACCOUNTS: i32 = 100_000;
const SELECT: &str = "SELECT abalance FROM pgbench_accounts WHERE aid = $1";

fn pgbench() -> String {
    let bin = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "/usr/lib/postgresql/15/bin".to_owned());
    let path = format!("{bin}/pgbench");
    if std::path::Path::new(&path).exists() {
        path
    } else {
        "pgbench".to_owned()
    }
}

/// Transactions per second through the pool: `tasks` tasks, each taking a connection
/// per select, as a request handler would.
async fn pooled_tps(url: &str, tasks: usize) -> f64 {
    let mut config = groundwork::pool::PoolConfig::new(url);
    config.max_size = tasks;
    let pool = config.build().unwrap();
    // Open and prepare every connection before the clock starts.
    let warm: Vec<_> = open_prepared(tasks, &pool).await;
    drop(warm);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let (pool, stop, done) = (pool.clone(), stop.clone(), done.clone());
            tokio::spawn(async move {
                let mut aid = 1 + (t as i32 * 7919) % ACCOUNTS;
                while !stop.load(Ordering::Relaxed) {
                    let client = pool.get().await.unwrap();
                    let statement = client.prepare_cached(SELECT).await.unwrap();
                    let row = client.query_one(&statement, &[&aid]).await.unwrap();
                    std::hint::black_box(row.get::<_, i32>(0));
                    done.fetch_add(1, Ordering::Relaxed);
                    aid = 1 + ((i64::from(aid) * 48271) % i64::from(ACCOUNTS)) as i32;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(SECONDS)).await;
    stop.store(true, Ordering::Relaxed);
    for handle in handles {
        handle.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

async fn open_prepared(n: usize, pool: &deadpool_postgres::Pool) -> Vec<deadpool_postgres::Client> {
    let mut clients = Vec::new();
    for _ in 0..n {
        let client = pool.get().await.unwrap();
        client.prepare_cached(SELECT).await.unwrap();
        clients.push(client);
    }
    clients
}

/// `pgbench -S -M prepared` with `clients` clients: its tps without connection time.
fn pgbench_tps(url: &str, clients: usize) -> f64 {
    let out = Command::new(pgbench())
        .args(["-S", "-M", "prepared", "-n"])
        .args([
            "-c",
            &clients.to_string(),
            "-j",
            &clients.min(2).to_string(),
        ])
        .args(["-T", &SECONDS.to_string(), url])
        .output()
        .expect("running pgbench");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pgbench failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .find_map(|line| {
            let rest = line.strip_prefix("tps = ")?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no tps in pgbench's output: {text}"))
}

/// Runs part 2 and prints its table; returns the lowest ratio.
pub async fn run(db: &TestDb) -> f64 {
    let url = db.url(DbRole::Owner).to_owned();
    let init = Command::new(pgbench())
        .args(["-i", "-q", "-s", "1", &url])
        .output()
        .expect("running pgbench -i");
    assert!(
        init.status.success(),
        "pgbench -i: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    println!(
        "\npooled point selects, {SECONDS} s each (transactions per second; ratio to pgbench)"
    );
    println!(
        "{:<8} {:>18} {:>18} {:>8}",
        "clients", "groundwork::pool", "pgbench -S", "ratio"
    );
    let mut lowest = f64::INFINITY;
    for clients in [2, 8, 16] {
        // Interleaved: pgbench, pool, pgbench, pool; the better of each pair.
        let mut ours = 0f64;
        let mut theirs = 0f64;
        for _ in 0..2 {
            theirs = theirs.max(tokio::task::block_in_place(|| pgbench_tps(&url, clients)));
            ours = ours.max(pooled_tps(&url, clients).await);
        }
        let ratio = ours / theirs;
        lowest = lowest.min(ratio);
        println!("{clients:<8} {ours:>18.0} {theirs:>18.0} {ratio:>8.3}");
    }
    lowest
}
