//! `groundwork migrate lint`: static rules, then the trace on a throw-away database
//! made on `--database-url`'s server, else `GROUNDWORK_CODEGEN_URL`'s, else a
//! throw-away server; never `DATABASE_URL`'s.

use std::process::ExitCode;

use clap::{Args, ValueEnum};
use groundwork_lint::{Format, Report, TraceOptions, lint_static, queries_at, trace};
use groundwork_provision::{Postgres, Settings};

use super::migrate::Source;
use super::output::Progress;

/// `migrate lint`'s options.
#[derive(Debug, Args)]
pub(super) struct LintArgs {
    #[command(flatten)]
    source: Source,
    /// Fail on warnings too, not only on errors.
    #[arg(long, value_name = "WHAT", value_enum)]
    deny: Option<Deny>,
    /// Output: text (`file:line: severity rule: message` and a hint) or json.
    #[arg(long, value_enum, default_value_t = FormatArg::Text)]
    format: FormatArg,
    /// Rows put in each table before the migrations that follow its creation are
    /// traced.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    rows: i64,
    /// Static rules only: no database, no trace.
    #[arg(long)]
    no_trace: bool,
    /// Do not check that each down file restores the catalog.
    #[arg(long)]
    no_down_check: bool,
    /// The release whose queries must still prepare against the new schema (a rolling
    /// deploy runs them): a git revision of the repository holding the migrations
    /// directory, whose queries/ sits beside it. In CI, the commit before the change
    /// (HEAD~1 or the merge base).
    #[arg(long, value_name = "REV", default_value = "HEAD")]
    previous: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Deny {
    /// Warnings fail the run as errors do.
    Warnings,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum FormatArg {
    Text,
    Json,
}

pub(super) async fn run(
    args: LintArgs,
    settings: &Settings,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let migrator = args.source.migrator()?;
    let migrations = migrator.migrations();
    let mut report = Report {
        migrations: migrations.len(),
        findings: lint_static(migrations),
        ..Report::default()
    };
    if !args.no_trace {
        let root = args.source.dir()?.parent().map(ToOwned::to_owned);
        let previous = match root.map(|root| queries_at(&root, &args.previous)) {
            Some(Ok(files)) if !files.is_empty() => Some((args.previous.clone(), files)),
            Some(Ok(_)) => {
                report.notes.push(format!(
                    "rolling-deploy check skipped: {} has no query files",
                    args.previous
                ));
                None
            }
            Some(Err(why)) => {
                report
                    .notes
                    .push(format!("rolling-deploy check skipped: {why}"));
                None
            }
            None => None,
        };
        let progress = Progress::start("tracing the migrations on a populated database");
        let traced = async {
            let server = Postgres::ephemeral(settings).await?;
            let options = TraceOptions {
                rows: args.rows,
                check_down: !args.no_down_check,
                previous,
            };
            Ok::<_, Box<dyn std::error::Error>>(trace(server.url(), migrations, options).await?)
        }
        .await;
        progress.finish();
        let traced = traced?;
        report.findings.extend(traced.findings);
        report.locks = traced.locks;
        report.notes.extend(traced.notes);
    } else {
        report.notes.push("trace skipped: --no-trace".to_owned());
    }
    report.sort();
    let format = match args.format {
        FormatArg::Text => Format::Text,
        FormatArg::Json => Format::Json,
    };
    say!("{}", report.render(format).trim_end());
    Ok(if report.fails(args.deny.is_some()) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
