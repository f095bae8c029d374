//! `db health` and `db maintain`: the `ops` schema's health checks, and the upkeep that
//! keeps them ok (retention, then VACUUM and ANALYZE).
//!
//! Both connect as the server's own user (the embedded cluster's superuser, or the
//! `--database-url` role; for `db health` a login role in `groundwork_monitor` is
//! enough).

use std::process::ExitCode;
use std::time::Instant;

use clap::ValueEnum;
use groundwork_provision::{Postgres, Settings};
use tokio_postgres::Client;

use crate::cli::output::{Stream, Style, paint};
use crate::cli::server;

/// How `db health` prints the checks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub(crate) enum HealthFormat {
    /// Aligned columns, for a person.
    #[default]
    Table,
    /// One JSON object: the overall status and every check.
    Json,
    /// Prometheus' text exposition format (for node_exporter's textfile collector or a
    /// scrape endpoint), next to postgres_exporter's own metrics.
    Prometheus,
}

/// Every check.
const HEALTH: &str = "SELECT name, status, value::text, threshold::text, value::float8,
                             threshold::float8, hint
                      FROM ops.check_database_health()";

/// Tables whose statistics are stale or whose dead tuples call for a VACUUM, by the
/// autovacuum's default rules (50 rows plus 10 % changed since ANALYZE, 50 rows plus
/// 20 % dead), largest first.
const MAINTENANCE_DUE: &str = "
    SELECT format('%I.%I', schema_name, table_name), live_rows, dead_rows,
           modified_since_analyze,
           dead_rows > 50 + 0.2 * live_rows AS vacuum
    FROM ops.get_table_statistics()
    WHERE dead_rows > 50 + 0.2 * live_rows
       OR modified_since_analyze > 50 + 0.1 * live_rows
       OR (last_analyze IS NULL AND live_rows + dead_rows > 0)
    ORDER BY total_bytes DESC, 1";

/// One check.
struct Check {
    name: String,
    status: String,
    value: Option<String>,
    threshold: Option<String>,
    value_number: Option<f64>,
    threshold_number: Option<f64>,
    hint: Option<String>,
}

/// A check's status as a number: 0 ok, 1 warning, 2 critical (also the exit code).
fn severity(status: &str) -> u8 {
    match status {
        "critical" => 2,
        "warning" => 1,
        _ => 0,
    }
}

/// The error for a database without the ops schema, or the server's report.
fn failed(e: tokio_postgres::Error) -> Box<dyn std::error::Error> {
    match e.as_db_error() {
        Some(db) if matches!(db.code().code(), "42P01" | "3F000" | "42883") => format!(
            "the database has no ops schema: run `groundwork migrate up` first ({})",
            db.message()
        )
        .into(),
        Some(db) => format!("{}: {}", db.code().code(), db.message()).into(),
        None => e.to_string().into(),
    }
}

/// The server (kept running while the handle lives: the embedded cluster stops when it
/// is dropped, unless `db start` started it) and a connection to its database.
async fn connect(settings: &Settings) -> Result<(Postgres, Client), Box<dyn std::error::Error>> {
    let postgres = server(settings).await?;
    let url = postgres.url();
    let client = groundwork_support::connect::connect(url)
        .await
        .map_err(|e| format!("connecting to {url}: {e}"))?;
    Ok((postgres, client))
}

/// `db health`: prints every check; exits 0 when all are ok, 1 when one warns and 2
/// when one is critical.
pub(super) async fn health(
    settings: &Settings,
    format: HealthFormat,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let (_postgres, client) = connect(settings).await?;
    let checks: Vec<Check> = client
        .query(HEALTH, &[])
        .await
        .map_err(failed)?
        .iter()
        .map(|row| Check {
            name: row.get(0),
            status: row.get(1),
            value: row.get(2),
            threshold: row.get(3),
            value_number: row.get(4),
            threshold_number: row.get(5),
            hint: row.get(6),
        })
        .collect();
    let worst = checks
        .iter()
        .map(|c| severity(&c.status))
        .max()
        .unwrap_or(0);
    match format {
        HealthFormat::Table => print_table(&checks),
        HealthFormat::Json => print_json(&checks, worst),
        HealthFormat::Prometheus => print_prometheus(&checks),
    }
    Ok(ExitCode::from(worst))
}

fn print_table(checks: &[Check]) {
    say!(
        "{:<26} {:<9} {:>14} {:>14}  HINT",
        "CHECK",
        "STATUS",
        "VALUE",
        "THRESHOLD"
    );
    for c in checks {
        let style = match severity(&c.status) {
            2 => Style::RED,
            1 => Style::YELLOW,
            _ => Style::GREEN,
        };
        say!(
            "{:<26} {} {:>14} {:>14}  {}",
            c.name,
            paint(Stream::Stdout, style, format!("{:<9}", c.status)),
            c.value.as_deref().unwrap_or("-"),
            c.threshold.as_deref().unwrap_or("-"),
            c.hint.as_deref().unwrap_or_default()
        );
    }
}

fn print_json(checks: &[Check], worst: u8) {
    let status = match worst {
        2 => "critical",
        1 => "warning",
        _ => "ok",
    };
    let checks: Vec<serde_json::Value> = checks
        .iter()
        .map(|c| {
            serde_json::json!({
                "name": c.name,
                "status": c.status,
                "value": c.value_number,
                "threshold": c.threshold_number,
                "hint": c.hint,
            })
        })
        .collect();
    say!(
        "{}",
        serde_json::json!({ "status": status, "checks": checks })
    );
}

fn print_prometheus(checks: &[Check]) {
    let metric = |name: &str, help: &str, values: &mut dyn Iterator<Item = (&str, f64)>| {
        say!("# HELP {name} {help}");
        say!("# TYPE {name} gauge");
        for (check, value) in values {
            say!("{name}{{check=\"{check}\"}} {value}");
        }
    };
    metric(
        "groundwork_health_check_status",
        "Status of a groundwork health check: 0 ok, 1 warning, 2 critical.",
        &mut checks
            .iter()
            .map(|c| (c.name.as_str(), f64::from(severity(&c.status)))),
    );
    metric(
        "groundwork_health_check_value",
        "The value a groundwork health check measured (absent: nothing to measure).",
        &mut checks
            .iter()
            .filter_map(|c| Some((c.name.as_str(), c.value_number?))),
    );
    metric(
        "groundwork_health_check_threshold",
        "The threshold a groundwork health check met, else its warning threshold.",
        &mut checks
            .iter()
            .filter_map(|c| Some((c.name.as_str(), c.threshold_number?))),
    );
}

/// `db maintain`: the clean-ups first, each batch its own transaction, then VACUUM and
/// ANALYZE the tables that need it (the clean-ups' dead rows included), each its own
/// statement outside a transaction.
pub(super) async fn maintain(settings: &Settings) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let (_postgres, client) = connect(settings).await?;
    let started = Instant::now();

    let mut deleted: Vec<(String, i64)> = Vec::new();
    loop {
        let rows = client
            .query(
                "SELECT policy, deleted, batch FROM ops.apply_retention()",
                &[],
            )
            .await
            .map_err(failed)?;
        let mut full = false;
        for row in &rows {
            let (policy, n, batch): (String, i64, i32) = (row.get(0), row.get(1), row.get(2));
            full |= n >= i64::from(batch);
            match deleted.iter_mut().find(|(p, _)| *p == policy) {
                Some((_, total)) => *total += n,
                None => deleted.push((policy, n)),
            }
        }
        if !full {
            break;
        }
    }
    for (policy, n) in &deleted {
        say!("retention {policy}: {n} deleted");
    }
    // The expiries: each call handles at most 10,000 rows in its own transaction.
    for (what, cleanup) in [
        ("expired orders", "SELECT sales.cleanup_expired_orders()"),
        (
            "expired payments",
            "SELECT payments.cleanup_expired_payments()",
        ),
        (
            "expired reservations",
            "SELECT inventory.cleanup_expired_reservations()",
        ),
        ("expired carts", "SELECT sales.cleanup_expired_carts()"),
    ] {
        let mut released = 0_i64;
        loop {
            let n: i32 = client.query_one(cleanup, &[]).await.map_err(failed)?.get(0);
            released += i64::from(n);
            if n < 10_000 {
                break;
            }
        }
        say!("{what} cleaned up: {released}");
    }
    // The deletions' statistics, visible to the query below at once.
    client
        .batch_execute("SELECT pg_stat_force_next_flush()")
        .await
        .map_err(failed)?;

    let due = client.query(MAINTENANCE_DUE, &[]).await.map_err(failed)?;
    for row in &due {
        let (table, live, dead, modified, vacuum): (String, i64, i64, i64, bool) =
            (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
        let command = if vacuum {
            "VACUUM (ANALYZE)"
        } else {
            "ANALYZE"
        };
        let at = Instant::now();
        client
            .batch_execute(&format!("{command} {table}"))
            .await
            .map_err(|e| format!("{command} {table}: {}", failed(e)))?;
        say!(
            "{command} {table}: {live} live, {dead} dead, {modified} changed since ANALYZE ({:.2} s)",
            at.elapsed().as_secs_f64()
        );
    }
    say!(
        "maintained {} table(s) in {:.1} s",
        due.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
