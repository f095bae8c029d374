//! groundwork against the crates users would pick instead, side by side on one server
//! in one run: interleaved rounds, the median of rounds.
//!
//! 1. Queries on `identity.organizations` and `identity.organization_members` (10,000
//!    organizations, one with 200 members): get one row by key, list 100 rows, list
//!    10,000 rows, a two-table join of 100 rows, insert one row, insert 100 rows in one
//!    statement. Contestants, each on one connection with every statement prepared once:
//!    hand-written tokio-postgres (the floor), groundwork's generated functions (same
//!    SQL), sqlx (`query_as` with `FromRow` on a one-connection `PgPool`, same SQL) and
//!    diesel with diesel-async (a `table!` per table, on a one-connection deadpool).
//!    Reported as time per operation and its ratio to the floor.
//! 2. Pooled throughput: point selects through `groundwork::pool` with 2, 8 and 16
//!    tasks against `pgbench -S -M prepared` with as many clients, on the same server.
//!
//! 3. The course-subscription decision (DCB) on groundwork's event store, as the
//!    application role, and on the Python `eventsourcing` package's PostgreSQL DCB
//!    recorder, both driven from one Python client (`dcb.py`, in a virtual environment
//!    this bench creates): 1 and 8 writers, and appends alone; and from Rust on
//!    groundwork's event store and on disintegrate (disintegrate-postgres, its own
//!    database).
//!
//! Run with `cargo bench -p groundwork-bench --bench peers`; it ends with
//! `queries_vs_peers: ratio_1row=<x> ratio_100rows=<x> ratio_10k=<x> sqlx_ratio_100rows=<x> diesel_ratio_100rows=<x>`
//! and `dcb_vs_peers: groundwork_per_s=<n> disintegrate_per_s=<n> eventsourcing_per_s=<n> best_peer_ratio=<x>`.

mod dcb;
mod dcb_rust;
mod diesel_side;
mod pooled;
#[path = "../support/python.rs"]
mod python;
mod queries;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let db = groundwork_testing::TestDb::builder()
        .pool_size(20)
        .build()
        .await;
    // PEERS_PARTS=queries,pooled,dcb runs some of the parts (all by default).
    let parts = std::env::var("PEERS_PARTS").unwrap_or_default();
    let runs = |part: &str| parts.is_empty() || parts.split(',').any(|p| p == part);
    let line = if runs("queries") {
        Some(queries::run(&db).await)
    } else {
        None
    };
    if runs("pooled") {
        pooled::run(&db).await;
    }
    let dcb = if runs("dcb") {
        Some((dcb::run(&db).await, dcb_rust::run(&db).await))
    } else {
        None
    };
    if let Some(line) = line {
        println!("{line}");
    }
    let Some((python, rust)) = dcb else {
        return;
    };
    // Each peer against groundwork driven from the same client language: the ratio is
    // the lower of groundwork (Rust) over disintegrate and groundwork (Python) over
    // eventsourcing, one writer, each the median of its rounds' ratios.
    let ratio = rust.ratio_1.min(python.ratios.decide_1);
    println!(
        "dcb_vs_peers: groundwork_per_s={:.0} disintegrate_per_s={:.0} eventsourcing_per_s={:.0} best_peer_ratio={ratio:.2}",
        rust.groundwork_1, rust.disintegrate_1, python.eventsourcing.decide_1,
    );
}
