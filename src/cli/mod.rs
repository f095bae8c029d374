//! Command-line arguments and their dispatch.

/// Prints a line to stdout. A reader that went away (`groundwork migrate status |
/// head -1`) is not an error: the command still finishes and stops what it started.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod check;
mod codegen;
mod completions;
mod db;
mod jobs;
mod lint;
mod migrate;
pub(crate) mod output;
pub(crate) mod project;
mod schema;
mod tenant_table;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use groundwork_provision::{Postgres, Settings, Strategy, UrlSource};

use migrate::{MigrateCommand, Source};
use output::{ColorChoice, Progress};

/// Exit code of a command line that is wrong, as clap's own errors have it.
pub(crate) const USAGE: u8 = 2;

/// What `--help` says after the options: where commands run, and the exit codes.
const AFTER_HELP: &str = "\
Run from anywhere inside a project: its root is the nearest directory upwards with a
groundwork.toml file, else with a migrations/ directory. Variables not set in the
environment are read from the root's .env file, then the current directory's.

Exit codes:
  0  success
  1  failure: a database, file or migration error, drift found by `migrate verify`,
     stale files found by `--check`, a confirmation answered no
  2  usage: an unknown command or option, a bad value, or `migrate down --all`
     without --yes when stdin is not a terminal
  3  `db status`: the embedded cluster is stopped

`db health` exits with the worst check's status: 0 ok, 1 warning, 2 critical.";

/// The PostgreSQL foundation for Rust services.
#[derive(Debug, Parser)]
#[command(name = "groundwork", version, about, after_help = AFTER_HELP)]
pub struct Cli {
    /// Use this server. Default: DATABASE_URL, else the embedded cluster; for codegen,
    /// schema dump, migrate lint and check plans, GROUNDWORK_CODEGEN_URL, else a
    /// throw-away server (never DATABASE_URL).
    #[arg(long, global = true)]
    database_url: Option<String>,
    /// Colour the output: auto (on a terminal, unless NO_COLOR is set), always or
    /// never.
    #[arg(
        long,
        global = true,
        value_name = "WHEN",
        value_enum,
        default_value_t = ColorChoice::Auto,
        hide_possible_values = true
    )]
    color: ColorChoice,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply, revert and check migrations.
    #[command(subcommand)]
    Migrate(MigrateCommand),
    /// Regenerate crates/groundwork/src/generated/ from migrations/ and queries/.
    Codegen {
        /// Exit non-zero if the committed generated code is stale; write nothing.
        #[arg(long)]
        check: bool,
    },
    /// Write or check the schema dump: schema/<schema>.sql from the migrations.
    #[command(subcommand)]
    Schema(SchemaCommand),
    /// The application database: the embedded cluster (or the --database-url server),
    /// its URLs and roles, create, drop, reset and seed.
    #[command(subcommand)]
    Db(db::DbCommand),
    /// Checks beyond the migrations: query plans at scale.
    #[command(subcommand)]
    Check(check::CheckCommand),
    /// The job queue of every tenant: stats, list, retry and cancel jobs, as the
    /// server's own user (the embedded cluster's superuser, or --database-url's role).
    #[command(subcommand)]
    Jobs(jobs::JobsCommand),
    /// Print the completion script for a shell (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

impl Cli {
    /// `--color`.
    pub fn color(&self) -> ColorChoice {
        self.color
    }

    /// Whether the command reads the project's environment (`.env`) and runs in its
    /// root: all but `completions`.
    pub fn in_project(&self) -> bool {
        !matches!(self.command, Command::Completions { .. })
    }
}

impl Command {
    /// Whether the command uses the embedded cluster when no database URL is given
    /// (`db` always does; `migrate` starts a container instead with that strategy).
    fn uses_embedded_cluster(&self, strategy: Strategy) -> bool {
        match self {
            Self::Migrate(command) => command.uses_database() && strategy != Strategy::Container,
            Self::Db(_) | Self::Jobs(_) => true,
            Self::Codegen { .. } | Self::Schema(_) | Self::Check(_) | Self::Completions { .. } => {
                false
            }
        }
    }
}

#[derive(Debug, Subcommand)]
enum SchemaCommand {
    /// Migrate a scratch database and write its schema, one file per PostgreSQL schema
    /// (and database.sql for extensions and database-wide privileges), with pg_dump.
    Dump {
        #[command(flatten)]
        source: Source,
        /// Directory the dump files go in; a relative path is relative to the current
        /// directory [default: schema/ in the project root]
        #[arg(
            long,
            default_value_os_t = project::default_path("schema"),
            hide_default_value = true,
            value_parser = project::user_path
        )]
        out: PathBuf,
        /// Exit non-zero if the committed dump is stale, naming what differs; write
        /// nothing.
        #[arg(long)]
        check: bool,
    },
}

/// Runs a parsed command line, in the project root (see [`project`]).
pub async fn run(cli: Cli) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let settings = match &cli.command {
        Command::Codegen { .. }
        | Command::Schema(_)
        | Command::Check(_)
        | Command::Migrate(MigrateCommand::Lint(_)) => Settings::codegen_from_env()?,
        _ => Settings::from_env()?,
    }
    .with_url(
        cli.database_url.filter(|url| !url.trim().is_empty()),
        UrlSource::Flag("--database-url"),
    );
    // The embedded cluster belongs to a project: none is made wherever a command
    // happens to run.
    if settings.database_url.is_none()
        && settings.data_dir.is_relative()
        && cli.command.uses_embedded_cluster(settings.strategy)
    {
        project::current().root()?;
    }
    match cli.command {
        Command::Migrate(command) => migrate::run(command, &settings).await,
        Command::Codegen { check } => codegen::run(check, &settings).await,
        Command::Schema(command) => schema::run(command, &settings).await,
        Command::Db(command) => db::run(command, &settings).await,
        Command::Check(command) => check::run(command, &settings).await,
        Command::Jobs(command) => jobs::run(command, &settings).await,
        Command::Completions { shell } => Ok(completions::run(shell)),
    }
}

/// The server for commands that need one: DATABASE_URL, or the embedded cluster,
/// started for this command and stopped after it unless `db start` started it.
async fn server(settings: &Settings) -> Result<Postgres, Box<dyn std::error::Error>> {
    let progress = settings.database_url.is_none().then(|| {
        Progress::start(match settings.strategy {
            Strategy::Container => "starting a PostgreSQL container",
            Strategy::Auto | Strategy::Local => {
                "starting the embedded cluster (created on first use)"
            }
        })
    });
    let server = Postgres::persistent(settings).await;
    drop(progress);
    let server = server?;
    if let Some(notice) = server.notice() {
        eprintln!("groundwork: {notice}");
    }
    Ok(server)
}
