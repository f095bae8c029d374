//! `groundwork migrate ...`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use groundwork_migrate::{
    DownOptions, DownTarget, MigrateError, MigrationState, MigrationStatus, Migrator,
    StatementLimits, Step, UpOptions, migration_slug, new_migration_files,
    new_migration_files_with,
};
use groundwork_provision::Settings;

use super::output::{self, Answer, Progress, Stream, Style, paint};
use super::tenant_table::{self, TenantTable};
use super::{USAGE, lint, project, server};

/// The migrations directory option, shared by the commands that read migrations.
#[derive(Debug, Args)]
pub(super) struct Source {
    /// Directory holding the migration files; a relative path is relative to the
    /// current directory [default: migrations/ in the project root]
    #[arg(
        long,
        value_name = "DIR",
        default_value_os_t = project::default_path("migrations"),
        hide_default_value = true,
        value_parser = project::user_path,
    )]
    pub(super) source: PathBuf,
}

impl Source {
    /// The directory, absolute (for messages), if it exists; else why not.
    pub(super) fn dir(&self) -> Result<PathBuf, Box<dyn std::error::Error>> {
        let dir = project::shown(&self.source);
        if dir.is_dir() {
            return Ok(dir);
        }
        project::needs_missing_root(&self.source, "migrations")?;
        Err(format!(
            "no migrations directory at {}; create it with `groundwork migrate new NAME` \
             or pass --source DIR",
            dir.display()
        )
        .into())
    }

    pub(super) fn migrator(&self) -> Result<Migrator, Box<dyn std::error::Error>> {
        Ok(Migrator::from_dir(self.dir()?)?)
    }
}

/// The limits every migration statement runs under, shared by the commands that run
/// migrations.
#[derive(Debug, Args)]
pub(super) struct Limits {
    /// How long a statement may wait for a lock before its migration is rolled back
    /// and tried again (e.g. 5s, 500ms, 2min; 0: forever)
    #[arg(long, value_name = "DURATION", env = "GROUNDWORK_LOCK_TIMEOUT", default_value = "5s", value_parser = duration)]
    lock_timeout: Duration,
    /// How long a statement may run (0: forever)
    #[arg(long, value_name = "DURATION", env = "GROUNDWORK_STATEMENT_TIMEOUT", default_value = "30min", value_parser = duration)]
    statement_timeout: Duration,
    /// Attempts when a lock wait times out; the pause between them starts at 1 s and
    /// doubles
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    lock_attempts: u32,
}

impl Limits {
    fn statement_limits(&self) -> StatementLimits {
        StatementLimits {
            lock_timeout: self.lock_timeout,
            statement_timeout: self.statement_timeout,
            attempts: self.lock_attempts,
            ..StatementLimits::default()
        }
    }
}

/// `5s`, `500ms`, `2min`, `1h` or a bare number of milliseconds.
fn duration(value: &str) -> Result<Duration, String> {
    let value = value.trim();
    let digits = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(digits);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{value:?} is not a duration like 5s, 500ms or 2min"))?;
    Ok(match unit.trim() {
        "" | "ms" => Duration::from_millis(number),
        "s" => Duration::from_secs(number),
        "min" | "m" => Duration::from_secs(number * 60),
        "h" => Duration::from_secs(number * 3600),
        _ => {
            return Err(format!(
                "{value:?} is not a duration like 5s, 500ms or 2min"
            ));
        }
    })
}

#[derive(Debug, Subcommand)]
pub(super) enum MigrateCommand {
    /// Apply pending migrations, oldest first.
    Up {
        #[command(flatten)]
        source: Source,
        #[command(flatten)]
        limits: Limits,
        /// Stop after this version.
        #[arg(long, value_name = "VERSION")]
        to: Option<i64>,
        /// Print what would run without running it.
        #[arg(long)]
        dry_run: bool,
    },
    /// Revert applied migrations, newest first (default: the newest one).
    Down {
        #[command(flatten)]
        source: Source,
        #[command(flatten)]
        limits: Limits,
        /// Revert this many of the newest applied migrations.
        #[arg(long, value_name = "N", conflicts_with_all = ["to", "all"])]
        steps: Option<usize>,
        /// Revert every migration newer than this version.
        #[arg(long, value_name = "VERSION", conflicts_with = "all")]
        to: Option<i64>,
        /// Revert every applied migration; asks first (on a terminal) unless --yes.
        #[arg(long)]
        all: bool,
        /// Do not ask before --all; needed when stdin is not a terminal.
        #[arg(long, short)]
        yes: bool,
        /// Print what would run without running it.
        #[arg(long)]
        dry_run: bool,
        /// Allow reverting when GROUNDWORK_ENV=production.
        #[arg(long)]
        allow_production: bool,
    },
    /// Revert the newest applied migration and apply it again.
    ///
    /// For a migration being written, before anyone else has applied it: edit it, then
    /// redo it.
    Redo {
        #[command(flatten)]
        source: Source,
        #[command(flatten)]
        limits: Limits,
        /// Redo this many of the newest applied migrations.
        #[arg(long, value_name = "N", default_value_t = 1)]
        steps: usize,
        /// Allow reverting when GROUNDWORK_ENV=production.
        #[arg(long)]
        allow_production: bool,
    },
    /// List every migration with its state and when it was applied.
    ///
    /// Columns: VERSION, NAME, STATE and APPLIED AT. The states: applied; pending;
    /// changed (applied, but its file changed since); missing (applied, but its file is
    /// gone).
    Status {
        #[command(flatten)]
        source: Source,
    },
    /// Check the applied migrations against their files; exit 1 on drift.
    ///
    /// Drift: an applied migration edited or removed since, or a pending one older than
    /// the newest applied one.
    Verify {
        #[command(flatten)]
        source: Source,
    },
    /// Create a migration: `<UTC timestamp>_<name>.up.sql` and `.down.sql`.
    New {
        #[command(flatten)]
        source: Source,
        /// What the migration does, in a few words (letters and digits; the rest
        /// becomes `_`).
        #[arg(value_parser = migration_name)]
        name: String,
        /// Fill the files with a tenant table SCHEMA.TABLE: organization_id leading the
        /// keys, timestamps, row-level security, grants and owner (and the schema, when
        /// no migration creates it yet).
        #[arg(long, value_name = "SCHEMA.TABLE", value_parser = tenant_table::parse)]
        tenant_table: Option<TenantTable>,
    },
    /// Check every migration for changes that lock, rewrite or break a populated,
    /// running database; exit 1 on errors (and on warnings with --deny warnings).
    ///
    /// Static rules over each parsed statement, then a trace: the migrations replayed
    /// into a throw-away database (on --database-url's server, else a throw-away
    /// server) whose tables are filled with --rows rows, recording per existing table
    /// the strongest lock, rewrites, rows scanned under a lock that blocks writes,
    /// failing statements, and whether each down file restores the catalog.
    /// Silence one finding with `-- groundwork:lint allow RULE because WHY` before the
    /// statement. docs/MIGRATIONS.md lists the rules.
    Lint(lint::LintArgs),
}

impl MigrateCommand {
    /// Whether the command connects to a database (all but `new`).
    pub(super) fn uses_database(&self) -> bool {
        !matches!(self, Self::New { .. } | Self::Lint(_))
    }
}

/// A clap value parser for migration names.
fn migration_name(value: &str) -> Result<String, String> {
    match migration_slug(value) {
        Ok(_) => Ok(value.to_owned()),
        Err(MigrateError::InvalidName(_)) => {
            Err("a migration name needs at least one letter or digit (a-z, 0-9)".to_owned())
        }
        Err(other) => Err(other.to_string()),
    }
}

type Outcome = Result<ExitCode, Box<dyn std::error::Error>>;

pub(super) async fn run(command: MigrateCommand, settings: &Settings) -> Outcome {
    match command {
        MigrateCommand::New {
            source,
            name,
            tenant_table,
        } => new(&source, &name, tenant_table.as_ref()),
        MigrateCommand::Up {
            source,
            limits,
            to,
            dry_run,
        } => up(&source, &limits, UpOptions { to, dry_run }, settings).await,
        MigrateCommand::Down {
            source,
            limits,
            steps,
            to,
            all,
            yes,
            dry_run,
            allow_production,
        } => {
            let target = match (steps, to, all) {
                (_, _, true) => DownTarget::All,
                (_, Some(to), _) => DownTarget::To(to),
                (steps, None, false) => DownTarget::Steps(steps.unwrap_or(1)),
            };
            let mut options = DownOptions::from_env(target);
            options.dry_run = dry_run;
            options.allow_production = allow_production;
            down(&source, &limits, options, yes, settings).await
        }
        MigrateCommand::Redo {
            source,
            limits,
            steps,
            allow_production,
        } => {
            let mut options = DownOptions::from_env(DownTarget::Steps(steps));
            options.allow_production = allow_production;
            redo(&source, &limits, options, settings).await
        }
        MigrateCommand::Status { source } => status(&source, settings).await,
        MigrateCommand::Verify { source } => verify(&source, settings).await,
        MigrateCommand::Lint(args) => lint::run(args, settings).await,
    }
}

/// `migrate up`: the applied migrations, then how many and how long.
async fn up(source: &Source, limits: &Limits, options: UpOptions, settings: &Settings) -> Outcome {
    let migrator = source.migrator()?.with_limits(limits.statement_limits());
    let (_postgres, client) = connect(settings).await?;
    let started = Instant::now();
    let progress = Progress::start(if options.dry_run {
        "reading the applied migrations"
    } else {
        "applying migrations"
    });
    let steps = migrator.up(&client, options).await;
    progress.finish();
    report(Verb::Apply, &steps?, options.dry_run, started);
    Ok(ExitCode::SUCCESS)
}

/// `migrate down`; with `--all`, only once a person said yes (or `--yes` did).
async fn down(
    source: &Source,
    limits: &Limits,
    options: DownOptions,
    yes: bool,
    settings: &Settings,
) -> Outcome {
    if options.production && !options.allow_production {
        return Err(MigrateError::ProductionRefused.into());
    }
    let asks = options.target == DownTarget::All && !options.dry_run && !yes;
    if asks && !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        output::error(
            "`migrate down --all` asks before it reverts every migration, and stdin is not \
             a terminal: pass --yes to revert them all (or --dry-run to see which they are)",
        );
        return Ok(ExitCode::from(USAGE));
    }
    let migrator = source.migrator()?.with_limits(limits.statement_limits());
    let (postgres, client) = connect(settings).await?;
    if asks {
        let plan = migrator
            .down(
                &client,
                DownOptions {
                    dry_run: true,
                    ..options
                },
            )
            .await?;
        if plan.is_empty() {
            say!("nothing to revert");
            return Ok(ExitCode::SUCCESS);
        }
        let question = format!(
            "revert all {} of {}?",
            count(plan.len(), "applied migration"),
            describe(postgres.url())
        );
        let answer = tokio::task::spawn_blocking(move || output::confirm(&question))
            .await
            .unwrap_or(Answer::No);
        if answer != Answer::Yes {
            eprintln!("nothing reverted");
            return Ok(ExitCode::FAILURE);
        }
    }
    let started = Instant::now();
    let progress = Progress::start("reverting migrations");
    let reverted = migrator.down(&client, options).await;
    progress.finish();
    report(Verb::Revert, &reverted?, options.dry_run, started);
    Ok(ExitCode::SUCCESS)
}

/// `migrate redo`: down `options.target`'s steps, then up to the newest reverted.
async fn redo(
    source: &Source,
    limits: &Limits,
    options: DownOptions,
    settings: &Settings,
) -> Outcome {
    let migrator = source.migrator()?.with_limits(limits.statement_limits());
    let (_postgres, client) = connect(settings).await?;
    let started = Instant::now();
    let progress = Progress::start("reverting and applying again");
    let reverted = migrator.down(&client, options).await?;
    if reverted.is_empty() {
        progress.finish();
        say!("nothing to redo: no migration is applied");
        return Ok(ExitCode::SUCCESS);
    }
    let to = reverted.iter().map(|step| step.version).max();
    let applied = migrator.up(&client, UpOptions { to, dry_run: false }).await;
    progress.finish();
    steps_done(Verb::Revert, &reverted);
    let applied = applied?;
    steps_done(Verb::Apply, &applied);
    say!(
        "redid {} in {} ms",
        count(applied.len(), "migration"),
        started.elapsed().as_millis()
    );
    Ok(ExitCode::SUCCESS)
}

/// `migrate status`: the table.
async fn status(source: &Source, settings: &Settings) -> Outcome {
    let migrator = source.migrator()?;
    let (_postgres, client) = connect(settings).await?;
    let status = migrator.status(&client).await?;
    if status.is_empty() {
        say!(
            "no migrations in {}",
            project::shown(&source.source).display()
        );
    } else {
        print_status(&status);
    }
    Ok(ExitCode::SUCCESS)
}

/// `migrate verify`: each drift on stderr, and exit 1, if there is any.
async fn verify(source: &Source, settings: &Settings) -> Outcome {
    let migrator = source.migrator()?;
    let (_postgres, client) = connect(settings).await?;
    match migrator.verify(&client).await {
        Ok(()) => {
            say!("migrations verified: no drift");
            Ok(ExitCode::SUCCESS)
        }
        Err(MigrateError::Drift(drift)) => {
            for problem in &drift {
                eprintln!("{} {problem}", paint(Stream::Stderr, Style::RED, "drift:"));
            }
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e.into()),
    }
}

/// `migrate new`: the files, plain or for a tenant table.
fn new(source: &Source, name: &str, tenant_table: Option<&TenantTable>) -> Outcome {
    // Not a new migrations/ wherever the command happens to run.
    project::needs_missing_root(&source.source, "migrations")?;
    let dir = project::shown(&source.source);
    let (up, down) = match tenant_table {
        None => new_migration_files(&dir, name)?,
        Some(table) => {
            let exists =
                dir.is_dir() && table.schema_exists(Migrator::from_dir(&dir)?.migrations());
            new_migration_files_with(&dir, name, |stem| table.files(name, stem, exists))?
        }
    };
    say!("created {}\ncreated {}", up.display(), down.display());
    Ok(ExitCode::SUCCESS)
}

/// The server for the command and a connection to it; the server stops when the first
/// is dropped, if this command started it.
async fn connect(
    settings: &Settings,
) -> Result<(groundwork_provision::Postgres, tokio_postgres::Client), Box<dyn std::error::Error>> {
    let postgres = server(settings).await?;
    let url = postgres.url();
    let client = groundwork_support::connect::connect(url)
        .await
        .map_err(|e| format!("connecting to {url}: {e}"))?;
    Ok((postgres, client))
}

/// "database groundwork on 127.0.0.1:5432", without credentials.
fn describe(url: &str) -> String {
    let Ok(config) = url.parse::<tokio_postgres::Config>() else {
        return "the database".to_owned();
    };
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("postgres");
    format!(
        "database {} on {host}:{port}",
        config.get_dbname().unwrap_or(user)
    )
}

#[derive(Clone, Copy)]
enum Verb {
    Apply,
    Revert,
}

impl Verb {
    fn past(self) -> &'static str {
        match self {
            Self::Apply => "applied",
            Self::Revert => "reverted",
        }
    }

    fn infinitive(self) -> &'static str {
        match self {
            Self::Apply => "apply",
            Self::Revert => "revert",
        }
    }
}

/// `n thing` or `n things`.
fn count(n: usize, thing: &str) -> String {
    if n == 1 {
        format!("1 {thing}")
    } else {
        format!("{n} {thing}s")
    }
}

/// One line per migration, then the summary.
fn report(verb: Verb, steps: &[Step], dry_run: bool, started: Instant) {
    if steps.is_empty() {
        say!("nothing to {}", verb.infinitive());
        return;
    }
    if dry_run {
        for step in steps {
            say!("would be {}: {} {}", verb.past(), step.version, step.name);
        }
        say!(
            "{} would be {}",
            count(steps.len(), "migration"),
            verb.past()
        );
        return;
    }
    steps_done(verb, steps);
    say!(
        "{} {} in {} ms",
        paint(Stream::Stdout, Style::GREEN, verb.past()),
        count(steps.len(), "migration"),
        started.elapsed().as_millis()
    );
}

fn steps_done(verb: Verb, steps: &[Step]) {
    for step in steps {
        say!(
            "{} {} {} in {} ms",
            paint(Stream::Stdout, Style::GREEN, verb.past()),
            step.version,
            step.name,
            step.duration.as_millis()
        );
    }
}

/// The table of `migrate status`: a header, then one row per migration.
fn print_status(status: &[MigrationStatus]) {
    let rows: Vec<[String; 4]> = status
        .iter()
        .map(|line| {
            let (state, applied_at) = match &line.state {
                MigrationState::Applied { record, changed } => (
                    if *changed { "changed" } else { "applied" },
                    Some(record.applied_at),
                ),
                MigrationState::Missing(record) => ("missing", Some(record.applied_at)),
                MigrationState::Pending => ("pending", None),
            };
            [
                line.version.to_string(),
                line.name.clone(),
                state.to_owned(),
                applied_at
                    .map(|at| at.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                    .unwrap_or_default(),
            ]
        })
        .collect();
    let header = ["VERSION", "NAME", "STATE", "APPLIED AT"];
    let widths: Vec<usize> = (0..3)
        .map(|column| {
            rows.iter()
                .map(|row| row[column].chars().count())
                .chain([header[column].len()])
                .max()
                .unwrap_or_default()
        })
        .collect();
    let line = |cells: [&str; 4], styles: [Option<Style>; 4]| {
        let mut text = String::new();
        for (column, cell) in cells.iter().enumerate() {
            let padded = match widths.get(column) {
                Some(width) => format!("{cell:<width$}  "),
                None => (*cell).to_owned(),
            };
            match styles[column] {
                Some(style) => text.push_str(&paint(Stream::Stdout, style, padded)),
                None => text.push_str(&padded),
            }
        }
        text.trim_end().to_owned()
    };
    let bold = Some(Style::BOLD);
    say!("{}", line(header, [bold; 4]));
    for row in &rows {
        let state = match row[2].as_str() {
            "applied" => Style::GREEN,
            "pending" => Style::YELLOW,
            _ => Style::RED,
        };
        let cells = [
            row[0].as_str(),
            row[1].as_str(),
            row[2].as_str(),
            row[3].as_str(),
        ];
        say!("{}", line(cells, [None, None, Some(state), None]));
    }
}

#[cfg(test)]
mod tests {
    use super::duration;
    use std::time::Duration;

    #[test]
    fn durations_take_a_unit_or_milliseconds() {
        assert_eq!(duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("250"), Ok(Duration::from_millis(250)));
        assert_eq!(duration("2min"), Ok(Duration::from_secs(120)));
        assert_eq!(duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(duration("0"), Ok(Duration::ZERO));
        assert!(duration("5 weeks").is_err());
        assert!(duration("soon").is_err());
    }
}
