//! Part 3: the course-subscription decision on groundwork's event store and on the
//! Python `eventsourcing` package's PostgreSQL DCB recorder, from one Python client
//! (`benches/peers/dcb.py`) in a virtual environment made here.

use std::process::Command;

use groundwork_testing::{DbRole, TestDb};
use serde_json::Value;

use crate::python::{peers_dir, python};
use crate::queries::median;

/// Figures of one store: decisions per second with 1 and 8 writers, appends alone.
#[derive(Debug, Default, Clone, Copy)]
pub struct Figures {
    pub decide_1: f64,
    pub decide_8: f64,
    pub append_1: f64,
}

/// Both stores' figures, and groundwork's ratios to eventsourcing: each the median of
/// the rounds' ratios (two windows run back to back), so that a slow spell of the
/// machine weighs on both sides of one ratio rather than on one store's median.
pub struct Results {
    pub groundwork: Figures,
    pub eventsourcing: Figures,
    pub ratios: Figures,
}

fn figures(value: &Value) -> Figures {
    let per_s = |w: &str| value[w]["per_s"].as_f64().unwrap_or(f64::NAN);
    Figures {
        decide_1: per_s("decide_1"),
        decide_8: per_s("decide_8"),
        append_1: per_s("append_1"),
    }
}

/// Runs part 3 and prints its table.
pub async fn run(db: &TestDb) -> Results {
    let python = tokio::task::block_in_place(python);
    let owner = db.pool(DbRole::Owner).get().await.unwrap();
    for sql in [
        "DROP DATABASE IF EXISTS eventsourcing_bench",
        "CREATE DATABASE eventsourcing_bench",
    ] {
        owner.batch_execute(sql).await.unwrap();
    }
    let server = db.url(DbRole::Owner).rsplit_once('/').unwrap().0.to_owned();
    let [tenant] = db.tenants().await;
    let out = tokio::task::block_in_place(|| {
        Command::new(&python)
            .arg(peers_dir().join("dcb.py"))
            .arg(format!("{server}/eventsourcing_bench"))
            .arg(db.url(DbRole::App))
            .arg(format!("{},{}", tenant.organization_id, tenant.user_id))
            .arg(db.url(DbRole::Owner))
            .output()
            .expect("running dcb.py")
    });
    assert!(
        out.status.success(),
        "dcb.py failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ratio = |w: &str| {
        let rounds = |store: &str| -> Vec<f64> {
            report[store][w]["rounds"]
                .as_array()
                .map(|r| r.iter().filter_map(Value::as_f64).collect())
                .unwrap_or_default()
        };
        let ratios: Vec<f64> = rounds("groundwork")
            .iter()
            .zip(rounds("eventsourcing"))
            .map(|(ours, theirs)| ours / theirs)
            .collect();
        if ratios.is_empty() {
            f64::NAN
        } else {
            median(ratios)
        }
    };
    let results = Results {
        groundwork: figures(&report["groundwork"]),
        eventsourcing: figures(&report["eventsourcing"]),
        ratios: Figures {
            decide_1: ratio("decide_1"),
            decide_8: ratio("decide_8"),
            append_1: ratio("append_1"),
        },
    };
    println!(
        "\nDCB course subscription, Python client (psycopg's {} implementation; per second, median of {} interleaved rounds of 3200 operations; ratio: groundwork over eventsourcing, the median of the rounds' ratios)",
        report["psycopg"].as_str().unwrap_or("unknown"),
        report["groundwork"]["decide_1"]["rounds"]
            .as_array()
            .map_or(0, Vec::len)
    );
    println!(
        "{:<28} {:>14} {:>14} {:>8}",
        "workload", "groundwork", "eventsourcing", "ratio"
    );
    for (label, ours, theirs, ratio) in [
        (
            "decision, 1 writer",
            results.groundwork.decide_1,
            results.eventsourcing.decide_1,
            results.ratios.decide_1,
        ),
        (
            "decision, 8 writers",
            results.groundwork.decide_8,
            results.eventsourcing.decide_8,
            results.ratios.decide_8,
        ),
        (
            "append alone, 1 writer",
            results.groundwork.append_1,
            results.eventsourcing.append_1,
            results.ratios.append_1,
        ),
    ] {
        println!("{label:<28} {ours:>14.0} {theirs:>14.0} {ratio:>8.2}");
    }
    results
}
