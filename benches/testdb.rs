//! Provisioning a test database: cloning the migrated template (what `TestDb` does)
//! against creating an empty database and running every migration, on the same
//! server in the same run. Both sides end with an open connection to a database that
//! has the full schema.
//!
//! Run with `cargo bench --bench testdb`; the last line is
//! `testdb: clone_median_ms=<x> migrate_median_ms=<y> speedup=<y/x>`.

use std::time::{Duration, Instant};

use groundwork_migrate::{Migrator, UpOptions};
use groundwork_support::connect::{connect, with_database};
use groundwork_testing::{DEFAULT_MIGRATIONS, DbRole, TestDb};

const ROUNDS: usize = 40;

fn median(mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1000.0
}

fn percentile(samples: &[Duration], p: f64) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let server = TestDb::server_url().expect("a PostgreSQL server");
    let admin = connect(&server).await.expect("connect");
    let migrator = Migrator::from_dir(DEFAULT_MIGRATIONS).expect("migrations");
    // Warm-up: the server, the template and the first connections.
    drop(TestDb::new().await);

    let mut clone = Vec::with_capacity(ROUNDS);
    let mut migrate = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        // Alternate the order so that neither side always runs on a warmer server.
        for side in if round % 2 == 0 { [0, 1] } else { [1, 0] } {
            if side == 0 {
                let started = Instant::now();
                let db = TestDb::new().await;
                let client = db
                    .pool(DbRole::Owner)
                    .get()
                    .await
                    .expect("clone connection");
                clone.push(started.elapsed());
                drop(client);
                drop(db);
            } else {
                let name = format!("gw_bench_migrate_{round}");
                let started = Instant::now();
                admin
                    .batch_execute(&format!("CREATE DATABASE \"{name}\" TEMPLATE template0"))
                    .await
                    .expect("create");
                let client = connect(&with_database(&server, &name))
                    .await
                    .expect("connect");
                migrator
                    .up(&client, UpOptions::default())
                    .await
                    .expect("migrate");
                migrate.push(started.elapsed());
                drop(client);
                admin
                    .batch_execute(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
                    .await
                    .expect("drop");
            }
        }
    }
    println!(
        "{} migrations, {ROUNDS} rounds each, 2 cores; milliseconds",
        migrator.migrations().len()
    );
    println!("{:<28} {:>8} {:>8} {:>8}", "", "p10", "median", "p90");
    for (label, samples) in [
        ("clone template (TestDb)", &clone),
        ("create + migrate", &migrate),
    ] {
        println!(
            "{label:<28} {:>8.1} {:>8.1} {:>8.1}",
            percentile(samples, 0.1),
            percentile(samples, 0.5),
            percentile(samples, 0.9)
        );
    }
    let (clone_ms, migrate_ms) = (median(clone), median(migrate));
    println!(
        "testdb: clone_median_ms={clone_ms:.1} migrate_median_ms={migrate_ms:.1} speedup={:.2}",
        migrate_ms / clone_ms
    );
}
