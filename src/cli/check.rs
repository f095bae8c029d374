//! `groundwork check plans`: the queries of `queries/` explained at scale, on a
//! database made on `--database-url`'s server, else `GROUNDWORK_CODEGEN_URL`'s, else a
//! throw-away server; never `DATABASE_URL`'s.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use groundwork_lint::{Finding, PlanLimits, Rows, check_plans, fill_tables, read_queries};
use groundwork_migrate::UpOptions;
use groundwork_provision::{Postgres, Settings};
use groundwork_support::connect::{connect, with_database};

use super::migrate::Source;
use super::output::Progress;
use super::project;

#[derive(Debug, Subcommand)]
pub(super) enum CheckCommand {
    /// Explain every query of queries/ with its generic plan, as the application
    /// role with a tenant set, on a database filled with many rows; exit 1 on a
    /// sequential scan of a large table, a sort of a large input or a plan over the
    /// cost limit, unless the query is annotated `-- plan: allow-seq-scan because ...`
    /// (or allow-sort, allow-cost) above its `--!` line.
    Plans(PlansArgs),
}

#[derive(Debug, Args)]
pub(super) struct PlansArgs {
    #[command(flatten)]
    source: Source,
    /// Directory holding the query files [default: queries/ in the project root]
    #[arg(
        long,
        value_name = "DIR",
        default_value_os_t = project::default_path("queries"),
        hide_default_value = true,
        value_parser = project::user_path
    )]
    queries: PathBuf,
    /// Rows in each table.
    #[arg(long, value_name = "N", default_value_t = 200_000)]
    rows: i64,
    /// Rows in the tenant table (identity.organizations): the tenants the other
    /// tables' rows are spread over.
    #[arg(long, value_name = "N", default_value_t = 1_000)]
    tenants: i64,
    /// A table with at least this many rows is large.
    #[arg(long, value_name = "N", default_value_t = 10_000.0)]
    large_rows: f64,
    /// The most a plan may cost.
    #[arg(long, value_name = "COST", default_value_t = 100_000.0)]
    max_cost: f64,
    /// The role the queries are explained as, if it exists.
    #[arg(long, value_name = "ROLE", default_value = "groundwork_app")]
    role: String,
}

/// The table whose rows are the tenants.
const TENANT_TABLE: &str = "identity.organizations";

pub(super) async fn run(
    command: CheckCommand,
    settings: &Settings,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let CheckCommand::Plans(args) = command;
    let migrator = args.source.migrator()?;
    let root = args
        .queries
        .parent()
        .map(ToOwned::to_owned)
        .unwrap_or_default();
    let files =
        read_queries(&root).map_err(|e| format!("reading {}: {e}", args.queries.display()))?;
    let server = Postgres::ephemeral(settings).await?;
    let admin = connect(server.url()).await?;
    let name = format!("groundwork_plans_{}", std::process::id());
    let describe = |e: tokio_postgres::Error| groundwork_support::connect::describe(&e);
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await
        .map_err(describe)?;
    admin
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .await
        .map_err(describe)?;
    let result = async {
        let client = connect(&with_database(server.url(), &name))
            .await
            .map_err(describe)?;
        let progress = Progress::start(format!(
            "migrating and filling every table with {} rows",
            args.rows
        ));
        migrator.up(&client, UpOptions::default()).await?;
        let rows = Rows {
            default: args.rows,
            tables: BTreeMap::from([(TENANT_TABLE.to_owned(), args.tenants)]),
            relax_checks: true,
        };
        let filled = fill_tables(&client, &rows, &[]).await.map_err(describe)?;
        progress.finish();
        for table in filled.iter().filter(|t| t.failure.is_some()) {
            eprintln!(
                "groundwork: {} stayed empty: {}",
                table.table,
                table.failure.as_deref().unwrap_or_default()
            );
        }
        act_as_application(&client, &args.role)
            .await
            .map_err(describe)?;
        let limits = PlanLimits {
            large_rows: args.large_rows,
            max_cost: args.max_cost,
            ..PlanLimits::default()
        };
        Ok::<_, Box<dyn std::error::Error>>(
            check_plans(&client, &files, &limits)
                .await
                .map_err(describe)?,
        )
    }
    .await;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await?;
    let (findings, records, notes) = result?;
    for note in &notes {
        eprintln!("groundwork: {note}");
    }
    for record in &records {
        say!(
            "{} {}: cost {:.0}{}",
            record.file,
            record.query,
            record.cost,
            if record.seq_scans.is_empty() {
                String::new()
            } else {
                format!(", seq scan of {}", record.seq_scans.join(", "))
            }
        );
    }
    for finding in &findings {
        say!("{finding}");
    }
    say!(
        "{} queries explained with {} rows per table: {} problems",
        records.len(),
        args.rows,
        findings.len()
    );
    Ok(
        if findings
            .iter()
            .any(|f: &Finding| f.rule.starts_with("plan-"))
        {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        },
    )
}

/// `SET ROLE` to the application's role and a tenant (the first organization and a
/// user of it), as a service's transaction has them.
async fn act_as_application(
    client: &tokio_postgres::Client,
    role: &str,
) -> Result<(), tokio_postgres::Error> {
    let tenant = client
        .query_opt(
            "SELECT o.id::text, (SELECT u.id::text FROM identity.users u LIMIT 1)
             FROM identity.organizations o
             WHERE to_regclass('identity.organizations') IS NOT NULL
             LIMIT 1",
            &[],
        )
        .await
        .ok()
        .flatten();
    if let Some(row) = tenant {
        let org: String = row.get(0);
        let user: Option<String> = row.get(1);
        client
            .query(
                "SELECT set_config('app.current_org_id', $1, false),
                        set_config('app.current_user_id', $2, false)",
                &[&org, &user.unwrap_or_default()],
            )
            .await?;
    }
    let exists: bool = client
        .query_one(
            "SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = $1)",
            &[&role],
        )
        .await?
        .get(0);
    if exists {
        client
            .batch_execute(&format!("SET ROLE \"{}\"", role.replace('"', "\"\"")))
            .await?;
    }
    Ok(())
}
