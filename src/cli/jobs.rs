//! `groundwork jobs ...`: the job queue of every tenant, for an operator.
//!
//! The commands connect as the server's own user (the embedded cluster's superuser,
//! or the `--database-url` role), which sees every tenant's jobs. Retrying and
//! cancelling go through `messaging.retry_job` and `messaging.cancel_job`, acting for
//! the job's own tenant, so they follow the same rules as a service's calls.

use std::process::ExitCode;

use clap::Subcommand;
use groundwork_provision::Settings;

use super::output::{Stream, Style, paint};
use super::server;

/// The `jobs` subcommands.
#[derive(Debug, Subcommand)]
pub(super) enum JobsCommand {
    /// Jobs per queue and status, and how long the oldest due job has waited.
    Stats,
    /// The newest jobs, with their last error.
    List {
        /// Only jobs with this status (available, scheduled, running, retryable,
        /// completed, cancelled, discarded).
        #[arg(long)]
        status: Option<String>,
        /// Only jobs of this queue.
        #[arg(long)]
        queue: Option<String>,
        /// Only jobs of this organization (its id).
        #[arg(long)]
        organization: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Run jobs again as soon as possible (discarded, cancelled, completed or waiting).
    Retry {
        /// Job ids.
        #[arg(required = true)]
        ids: Vec<i64>,
    },
    /// Cancel jobs that have not finished (a running job's worker stops it).
    Cancel {
        /// Job ids.
        #[arg(required = true)]
        ids: Vec<i64>,
    },
}

pub(super) async fn run(
    command: JobsCommand,
    settings: &Settings,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let postgres = server(settings).await?;
    let url = postgres.url();
    let mut client = groundwork_support::connect::connect(url)
        .await
        .map_err(|e| format!("connecting to {url}: {e}"))?;
    let failed = |e: tokio_postgres::Error| -> Box<dyn std::error::Error> {
        match e.as_db_error() {
            Some(db) if matches!(db.code().code(), "42P01" | "3F000" | "42883") => format!(
                "the database has no job queue: run `groundwork migrate up` first ({})",
                db.message()
            )
            .into(),
            Some(db) => format!("{}: {}", db.code().code(), db.message()).into(),
            None => e.to_string().into(),
        }
    };
    match command {
        JobsCommand::Stats => {
            let rows = client.query(STATS, &[]).await.map_err(failed)?;
            if rows.is_empty() {
                say!("no jobs");
            }
            say!(
                "{:<24} {:<10} {:>10}  {}",
                "QUEUE",
                "STATUS",
                "JOBS",
                "OLDEST DUE WAITING"
            );
            for row in &rows {
                let (queue, status, jobs, waiting): (String, String, i64, Option<String>) =
                    (row.get(0), row.get(1), row.get(2), row.get(3));
                say!(
                    "{queue:<24} {status:<10} {jobs:>10}  {}",
                    waiting.unwrap_or_default()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        JobsCommand::List {
            status,
            queue,
            organization,
            limit,
        } => {
            let rows = client
                .query(LIST, &[&status, &queue, &organization, &limit])
                .await
                .map_err(failed)?;
            say!(
                "{:>10}  {:<36}  {:<16} {:<24} {:<10} {:>7}  {:<25}  LAST ERROR",
                "ID",
                "ORGANIZATION",
                "QUEUE",
                "KIND",
                "STATUS",
                "ATTEMPT",
                "RUN AT"
            );
            for row in &rows {
                let (id, organization, queue, kind, status, attempt, run_at, error): (
                    i64,
                    String,
                    String,
                    String,
                    String,
                    String,
                    String,
                    Option<String>,
                ) = (
                    row.get(0),
                    row.get(1),
                    row.get(2),
                    row.get(3),
                    row.get(4),
                    row.get(5),
                    row.get(6),
                    row.get(7),
                );
                say!(
                    "{id:>10}  {organization:<36}  {queue:<16} {kind:<24} {status:<10} {attempt:>7}  {run_at:<25}  {}",
                    error.unwrap_or_default()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        JobsCommand::Retry { ids } => act(&mut client, &ids, RETRY, "retried", failed).await,
        JobsCommand::Cancel { ids } => act(&mut client, &ids, CANCEL, "cancelled", failed).await,
    }
}

/// Runs `sql` (one job id in, whether it acted out) for each id, in a transaction
/// acting for the job's tenant; exit 1 if any did not act.
async fn act(
    client: &mut tokio_postgres::Client,
    ids: &[i64],
    sql: &str,
    done: &str,
    failed: impl Fn(tokio_postgres::Error) -> Box<dyn std::error::Error>,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let mut all = true;
    for id in ids {
        let tx = client.transaction().await.map_err(&failed)?;
        let organization: Option<String> = tx
            .query_opt(JOB_TENANT, &[id])
            .await
            .map_err(&failed)?
            .map(|row| row.get(0));
        let Some(organization) = organization else {
            all = false;
            eprintln!(
                "{} job {id}: no such job",
                paint(Stream::Stderr, Style::RED, "error:")
            );
            continue;
        };
        tx.execute(ACT_FOR, &[&organization])
            .await
            .map_err(&failed)?;
        let acted: bool = tx.query_one(sql, &[id]).await.map_err(&failed)?.get(0);
        tx.commit().await.map_err(&failed)?;
        if acted {
            say!("job {id}: {done}");
        } else {
            all = false;
            eprintln!(
                "{} job {id}: not {done} (its status does not allow it)",
                paint(Stream::Stderr, Style::RED, "error:")
            );
        }
    }
    Ok(if all {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

const STATS: &str = "
SELECT queue, status::text, count(*),
       CASE WHEN status IN ('available', 'scheduled', 'retryable')
            THEN (date_trunc('second', now() - min(run_at) FILTER (WHERE run_at <= now())))::text
       END
FROM messaging.jobs
GROUP BY queue, status
ORDER BY queue, status";

const LIST: &str = "
SELECT id, organization_id::text, queue, kind, status::text,
       attempt || '/' || max_attempts, to_char(run_at, 'YYYY-MM-DD HH24:MI:SS TZ'),
       left(errors->-1->>'error', 80)
FROM messaging.jobs
WHERE ($1::text IS NULL OR status::text = $1)
  AND ($2::text IS NULL OR queue = $2)
  AND ($3::text IS NULL OR organization_id = $3::uuid)
ORDER BY id DESC
LIMIT $4";

const JOB_TENANT: &str = "SELECT organization_id::text FROM messaging.jobs WHERE id = $1";

/// The job's tenant, for the rest of the transaction.
const ACT_FOR: &str = "SELECT set_config('app.current_org_id', $1, true)";

const RETRY: &str = "SELECT messaging.retry_job($1)";

const CANCEL: &str = "SELECT messaging.cancel_job($1)";
