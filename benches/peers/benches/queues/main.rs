//! groundwork's job worker against the job queues users would pick instead, on one
//! durable throw-away server in one run (`cluster.rs`): graphile-worker 0.17 (Node;
//! its defaults, and its documented batching options), procrastinate and pgqueuer
//! (Python), each in a database of its own, installed by this bench under `target/`.
//!
//! For each: 20,000 no-op jobs are enqueued in batches of 1,000 (timed), the server
//! checkpoints, and a worker with concurrency 8 (where the system has such a setting)
//! runs until every job ran and is recorded as done: jobs per second from the worker's
//! start to the last completion, and the CPU time the client and the server spent on
//! it. Every system drains twice, in turn (procrastinate, at a few hundred jobs a
//! second, once), and the better drain counts: the first round also warms the new
//! server (its WAL files, caches). Then, for groundwork alone, pickup latency: single
//! jobs enqueued one at a time (each committed) to the idle worker, which LISTENs;
//! milliseconds from the commit's acknowledgement to the handler starting.
//!
//! Run with `cargo bench -p groundwork-bench --bench queues`; it ends with
//! `queues: groundwork_per_s=<n> graphile_worker_per_s=<n> procrastinate_per_s=<n> pgqueuer_per_s=<n> best_peer_ratio=<x> enqueue_batch_per_s=<n> pickup_p50_ms=<x>`,
//! where `graphile_worker_per_s` is the faster of its two configurations and
//! `best_peer_ratio` is groundwork over the fastest peer configuration.
//! `QUEUES_PARTS=groundwork` (or `peers`) runs one side; `DATABASE_URL` (a superuser's)
//! runs on that server instead of a new one, for profiling with `pg_stat_statements`.

mod cluster;
mod cpu;
mod groundwork_side;
mod peers;
#[path = "../support/python.rs"]
mod python;

use groundwork_testing::{DbRole, TestDb};
use peers::Peer;

const JOBS: usize = 20_000;
const BATCH: usize = 1_000;
const CONCURRENCY: usize = 8;
const PROBES: usize = 200;
/// Each system drains this many times (procrastinate once), in turn; the best counts.
const ROUNDS: usize = 2;

fn main() {
    // DATABASE_URL names another server to run on (one with pg_stat_statements, say);
    // its superuser's URL, as for the tests.
    let cluster = match std::env::var("DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => {
            let server = url.rsplit_once('/').map_or(url.as_str(), |(s, _)| s);
            Server::Url(server.to_owned())
        }
        _ => {
            let cluster = cluster::DurableCluster::start();
            // SAFETY: no other thread runs yet; TestDb finds its server through this
            // variable.
            unsafe { std::env::set_var("DATABASE_URL", cluster.url("postgres")) };
            Server::Durable(cluster)
        }
    };
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(run(&cluster));
}

enum Server {
    Durable(cluster::DurableCluster),
    Url(String),
}

impl Server {
    fn url(&self, database: &str) -> String {
        match self {
            Self::Durable(cluster) => cluster.url(database),
            Self::Url(server) => format!("{server}/{database}"),
        }
    }
}

async fn run(server: &Server) {
    // QUEUES_PARTS=groundwork,peers runs some of the parts (both by default).
    let parts = std::env::var("QUEUES_PARTS").unwrap_or_default();
    let runs = |part: &str| parts.is_empty() || parts.split(',').any(|p| p == part);
    let installed = tokio::task::block_in_place(peers::install);
    let db = TestDb::builder().pool_size(4).build().await;
    let owner = db.pool(DbRole::Owner).get().await.unwrap();
    for database in [
        "graphile_worker_bench",
        "procrastinate_bench",
        "pgqueuer_bench",
    ] {
        for sql in [
            format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"),
            format!("CREATE DATABASE {database}"),
        ] {
            owner.batch_execute(&sql).await.unwrap();
        }
    }
    let settings = owner
        .query_one(
            "SELECT current_setting('server_version'), current_setting('fsync'),
                    current_setting('synchronous_commit'), current_setting('full_page_writes'),
                    (SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer')",
            &[],
        )
        .await
        .unwrap();
    println!(
        "PostgreSQL {} (fsync={}, synchronous_commit={}, full_page_writes={}), {JOBS} no-op jobs, concurrency {CONCURRENCY}, {ROUNDS} rounds",
        settings.get::<_, String>(0),
        settings.get::<_, String>(1),
        settings.get::<_, String>(2),
        settings.get::<_, String>(3),
    );
    // The server's CPU time is read from /proc: a server on this machine only.
    let checkpointer: Option<i32> = settings.get(4);
    let postmaster = checkpointer.and_then(|pid| parent(pid as u32));
    drop(owner);

    let [tenant] = db.tenants().await;
    let mut ours: Vec<groundwork_side::Figures> = Vec::new();
    let mut theirs: Vec<(Peer, peers::Figures)> = Vec::new();
    for round in 1..=ROUNDS {
        println!(
            "\nround {round}: {:<26} {:>12} {:>12} {:>22}",
            "system", "enqueue/s", "drain/s", "CPU us/job client+server"
        );
        if runs("groundwork") {
            let probes = if round == ROUNDS { PROBES } else { 0 };
            let figures =
                groundwork_side::run(&db, tenant, JOBS, BATCH, CONCURRENCY, probes, postmaster)
                    .await;
            line(
                "groundwork",
                figures.enqueue_per_s,
                figures.drain_per_s,
                figures.cpu,
            );
            ours.push(figures);
        }
        // procrastinate drains at a few hundred jobs a second: once is enough.
        let peers = Peer::ALL
            .into_iter()
            .filter(|peer| runs("peers") && (round == ROUNDS || *peer != Peer::Procrastinate));
        for peer in peers {
            let url = server.url(peer.database());
            let enqueue_per_s = tokio::task::block_in_place(|| installed.enqueue(peer, &url, JOBS));
            groundwork_side::checkpoint(&db).await;
            let mut figures =
                tokio::task::block_in_place(|| installed.drain(peer, &url, JOBS, postmaster));
            figures.enqueue_per_s = enqueue_per_s;
            line(
                peer.name(),
                figures.enqueue_per_s,
                figures.drain_per_s,
                figures.cpu,
            );
            theirs.push((peer, figures));
        }
    }

    println!("\nbest of the rounds (drain), each peer's version and settings:");
    let best_ours = ours.iter().map(|f| f.drain_per_s).fold(f64::NAN, f64::max);
    let enqueue = ours
        .iter()
        .map(|f| f.enqueue_per_s)
        .fold(f64::NAN, f64::max);
    println!(
        "  {:<28} {:>8.0}/s  queue \"default\" with concurrency {CONCURRENCY}, defaults otherwise",
        "groundwork", best_ours
    );
    let drain = |peer: Peer| {
        theirs
            .iter()
            .filter(|(p, _)| *p == peer)
            .map(|(_, f)| f.drain_per_s)
            .fold(f64::NAN, f64::max)
    };
    for peer in Peer::ALL {
        if let Some((_, f)) = theirs.iter().find(|(p, _)| *p == peer) {
            println!(
                "  {:<28} {:>8.0}/s  {} {}",
                peer.name(),
                drain(peer),
                f.version,
                f.settings
            );
        }
    }
    let pickup = ours.last().map(|f| f.pickup_ms.clone()).unwrap_or_default();
    let quantile = |q: f64| {
        let at = ((pickup.len().max(1) - 1) as f64 * q).round() as usize;
        pickup.get(at).copied().unwrap_or(f64::NAN)
    };
    println!(
        "\npickup of single jobs on an idle worker (LISTEN), {PROBES} jobs: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        quantile(0.5),
        quantile(0.9),
        quantile(0.99),
        quantile(1.0)
    );
    let graphile = drain(Peer::GraphileDefault).max(drain(Peer::GraphileBatched));
    let best_peer = Peer::ALL.into_iter().map(drain).fold(f64::NAN, f64::max);
    println!(
        "graphile_worker: default_per_s={:.0} batched_per_s={:.0}",
        drain(Peer::GraphileDefault),
        drain(Peer::GraphileBatched)
    );
    println!(
        "queues: groundwork_per_s={best_ours:.0} graphile_worker_per_s={graphile:.0} procrastinate_per_s={:.0} pgqueuer_per_s={:.0} best_peer_ratio={:.2} enqueue_batch_per_s={enqueue:.0} pickup_p50_ms={:.2}",
        drain(Peer::Procrastinate),
        drain(Peer::Pgqueuer),
        best_ours / best_peer,
        quantile(0.5),
    );
}

fn line(system: &str, enqueue_per_s: f64, drain_per_s: f64, cpu: cpu::Cpu) {
    let per_job = |d: std::time::Duration| d.as_secs_f64() * 1e6 / JOBS as f64;
    println!(
        "         {system:<26} {enqueue_per_s:>12.0} {drain_per_s:>12.0} {:>13.1} + {:<7.1}",
        per_job(cpu.client),
        per_job(cpu.server)
    );
}

/// The parent of process `pid`, from /proc.
fn parent(pid: u32) -> Option<u32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    text.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}
