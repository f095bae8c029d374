//! Command-line arguments and their dispatch.

/// Prints a line to stdout. A reader that went away (`groundwork migrate status |
/// head -1`) is not an error: the command still finishes and stops what it started.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod codegen;
mod db;
mod migrate;
mod schema;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use groundwork_provision::{Postgres, Settings, UrlSource};

/// The PostgreSQL foundation for Rust services.
#[derive(Debug, Parser)]
#[command(name = "groundwork", version, about)]
pub struct Cli {
    /// Use this server. Default: DATABASE_URL, else the embedded cluster; for codegen
    /// and schema dump, GROUNDWORK_CODEGEN_URL, else a throw-away server (never
    /// DATABASE_URL).
    #[arg(long, global = true)]
    database_url: Option<String>,
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
    /// Manage the embedded local cluster in .groundwork/ (GROUNDWORK_DATA_DIR).
    #[command(subcommand)]
    Db(DbCommand),
}

#[derive(Debug, Args)]
struct Source {
    /// Directory holding the migration files.
    #[arg(long, default_value = "migrations")]
    source: PathBuf,
}

#[derive(Debug, Subcommand)]
enum MigrateCommand {
    /// Apply pending migrations.
    Up {
        #[command(flatten)]
        source: Source,
        /// Stop after this version.
        #[arg(long)]
        to: Option<i64>,
        /// Print what would run without running it.
        #[arg(long)]
        dry_run: bool,
    },
    /// Revert applied migrations (default: the newest one).
    Down {
        #[command(flatten)]
        source: Source,
        /// Revert this many of the newest applied migrations.
        #[arg(long, conflicts_with_all = ["to", "all"])]
        steps: Option<usize>,
        /// Revert every migration newer than this version.
        #[arg(long, conflicts_with = "all")]
        to: Option<i64>,
        /// Revert every applied migration.
        #[arg(long)]
        all: bool,
        /// Print what would run without running it.
        #[arg(long)]
        dry_run: bool,
        /// Allow reverting when GROUNDWORK_ENV=production.
        #[arg(long)]
        allow_production: bool,
    },
    /// List every migration and whether it is applied.
    Status {
        #[command(flatten)]
        source: Source,
    },
    /// Exit non-zero if applied migrations were edited or removed, or a pending one
    /// is older than the newest applied one.
    Verify {
        #[command(flatten)]
        source: Source,
    },
    /// Create `<UTC timestamp>_<name>.up.sql` and `.down.sql`.
    New {
        #[command(flatten)]
        source: Source,
        /// What the migration does, in a few words.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum SchemaCommand {
    /// Migrate a scratch database and write its schema, one file per PostgreSQL schema
    /// (and database.sql for extensions and database-wide privileges), with pg_dump.
    Dump {
        #[command(flatten)]
        source: Source,
        /// Directory the dump files go in.
        #[arg(long, default_value = "schema")]
        out: PathBuf,
        /// Exit non-zero if the committed dump is stale, naming what differs; write
        /// nothing.
        #[arg(long)]
        check: bool,
    },
}

#[derive(Debug, Subcommand)]
enum DbCommand {
    /// Start the cluster (creating it on first use) and leave it running.
    Start,
    /// Stop the cluster.
    Stop,
    /// Say whether the cluster runs, and where.
    Status,
    /// Print the application database URL (starting the cluster if needed).
    Url,
    /// Load the development seed data (seeds/development.sql: an organization, a
    /// published form and its submissions) into a migrated database; once.
    Seed,
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let settings = match &cli.command {
        Command::Codegen { .. } | Command::Schema(_) => Settings::codegen_from_env()?,
        _ => Settings::from_env()?,
    }
    .with_url(
        cli.database_url.filter(|url| !url.trim().is_empty()),
        UrlSource::Flag("--database-url"),
    );
    match cli.command {
        Command::Migrate(command) => migrate::run(command, &settings).await,
        Command::Codegen { check } => codegen::run(check, &settings).await,
        Command::Schema(command) => schema::run(command, &settings).await,
        Command::Db(command) => db::run(command, &settings).await,
    }
}

/// The server for commands that need one: DATABASE_URL, or the embedded cluster,
/// started for this command and stopped after it unless `db start` started it.
async fn server(settings: &Settings) -> Result<Postgres, Box<dyn std::error::Error>> {
    let server = Postgres::persistent(settings).await?;
    if let Some(notice) = server.notice() {
        eprintln!("groundwork: {notice}");
    }
    Ok(server)
}
