//! `groundwork migrate lint` over this repository's migrations: the static rules
//! alone, and the full run with the trace (every table filled with `ROWS` rows before
//! the migrations after it, each down file checked), against the baseline of applying
//! the same migrations to an empty database in the same run.
//!
//! Run with `cargo bench --bench lint`; the last line is
//! `lint: migrations=<n> seconds=<s> per_migration_ms=<ms>` for the run with the trace.

use std::time::Instant;

use groundwork_lint::{TraceOptions, lint_static, trace};
use groundwork_migrate::{Migrator, UpOptions};
use groundwork_support::connect::{connect, with_database};
use groundwork_testing::{DEFAULT_MIGRATIONS, TestDb};

/// Rows per table, as `groundwork migrate lint` fills them by default.
const ROWS: i64 = 10_000;

#[tokio::main]
async fn main() {
    let server = tokio::task::spawn_blocking(TestDb::server_url)
        .await
        .expect("server thread")
        .expect("a PostgreSQL server");
    let migrator = Migrator::from_dir(DEFAULT_MIGRATIONS).expect("migrations");
    let migrations = migrator.migrations();

    let started = Instant::now();
    let findings = lint_static(migrations);
    let static_ms = started.elapsed().as_secs_f64() * 1000.0;

    // The baseline: the same migrations applied to an empty database.
    let admin = connect(&server).await.expect("connect");
    admin
        .batch_execute("DROP DATABASE IF EXISTS bench_lint_baseline WITH (FORCE)")
        .await
        .expect("drop");
    admin
        .batch_execute("CREATE DATABASE bench_lint_baseline")
        .await
        .expect("create");
    let started = Instant::now();
    let client = connect(&with_database(&server, "bench_lint_baseline"))
        .await
        .expect("connect");
    migrator
        .up(&client, UpOptions::default())
        .await
        .expect("migrate");
    let baseline = started.elapsed().as_secs_f64();
    drop(client);
    admin
        .batch_execute("DROP DATABASE bench_lint_baseline WITH (FORCE)")
        .await
        .expect("drop");

    let started = Instant::now();
    let options = TraceOptions {
        rows: ROWS,
        ..TraceOptions::default()
    };
    let traced = trace(&server, migrations, options).await.expect("trace");
    let seconds = started.elapsed().as_secs_f64();

    println!(
        "static rules: {} migrations in {static_ms:.1} ms, {} findings",
        migrations.len(),
        findings.len()
    );
    println!(
        "baseline (migrate up on an empty database): {baseline:.2} s; trace with {ROWS} rows \
         per table and down checks: {seconds:.2} s ({:.1}x), {} findings, {} lock records",
        seconds / baseline,
        traced.findings.len(),
        traced.locks.len()
    );
    println!(
        "lint: migrations={} seconds={seconds:.2} per_migration_ms={:.0}",
        migrations.len(),
        seconds * 1000.0 / migrations.len() as f64
    );
}
