//! `groundwork db ...`: the application's database, on the embedded cluster or on the
//! `--database-url` server.

mod backup;
mod cluster;
mod database;
mod inspect;
mod ops;
mod seed;
mod url;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use groundwork_provision::Settings;

use super::Source;

/// What `groundwork db --help` says after the list of commands.
const DB_HELP: &str = "\
Where: without --database-url or DATABASE_URL the commands work on the embedded cluster,
kept in .groundwork/ under the working directory (GROUNDWORK_DATA_DIR overrides), and on
its database `groundwork`. As root the server runs as the `postgres` user
(GROUNDWORK_PG_USER overrides); when that user cannot reach the directory, the cluster is
kept in /var/lib/groundwork/<project directory name>-<hash> instead. `groundwork db
status` names the directory in use. With a URL the commands work on that server and the
database the URL names; `start` and `stop` are for the embedded cluster only.

Roles: `db url` and `db psql` connect as groundwork_dev_app, a member of groundwork_app
that meets row-level security as a service does; `--role readonly` as
groundwork_dev_readonly; `--role owner` as the superuser that migrates, which bypasses
row-level security. The embedded cluster makes both development roles once `groundwork
migrate up` has made their groups. Their password is groundwork_dev: for local
development only. Another server gets them only with --create-dev-roles.

Exit status: 0 done; 1 failed; 2 bad arguments; 3 (`db status`) the server is stopped or
unreachable. `db health` exits with the worst check's status instead: 0 ok, 1 warning,
2 critical (and 1 when it cannot run the checks).";

/// What `groundwork db health --help` says after the options.
const HEALTH_HELP: &str = "\
Checks (ops.check_database_health(), thresholds in ops.health_thresholds): connections
against max_connections, long-running queries, idle transactions and lock waits in this
database, the cache hit ratio, unused and duplicate indexes, sequential scans of large
tables, dead tuples, transaction-ID age, replication lag, and groundwork's backlogs (job
queue depth and age, outbox depth and lag, subscription lag, expired reservations and
idempotency keys not yet cleaned).

Exit status: 0 every check is ok; 1 a check warns (or the checks could not run); 2 a
check is critical.";

/// What `groundwork db status --help` says after the options.
const STATUS_HELP: &str = "\
Exit status: 0 the server is running (reachable) and the database's state is printed;
1 the server refused the connection or another error; 3 the embedded cluster is stopped
(or not created yet), or the --database-url server is unreachable.";

/// The `db` subcommands.
#[derive(Debug, Subcommand)]
#[command(after_help = DB_HELP)]
pub(super) enum DbCommand {
    /// Start the embedded cluster (creating it on first use) and leave it running.
    Start,
    /// Stop the embedded cluster.
    Stop,
    /// Say whether the server runs and its database is migrated (exit 3: stopped).
    ///
    /// The embedded cluster, with the directory it is kept in, or the --database-url
    /// server.
    #[command(after_help = STATUS_HELP)]
    Status,
    /// Print the application database's URL (default: as the development app role).
    ///
    /// Starts the embedded cluster if needed and leaves it running. Refuses the app
    /// and readonly roles until the database is migrated.
    Url(RoleArgs),
    /// Open psql on the application database (arguments after -- go to psql).
    ///
    /// Connects as `db url` would; psql is looked for next to the server's programs,
    /// on PATH, via pg_config and under /usr/lib/postgresql/<version>/bin.
    Psql {
        #[command(flatten)]
        role: RoleArgs,
        /// Arguments for psql, after `--` (`-- -c 'SELECT 1'`).
        #[arg(last = true)]
        args: Vec<OsString>,
    },
    /// Create the application database (nothing happens when it exists).
    Create,
    /// Drop the application database and all its data (asks first).
    ///
    /// Ends the database's sessions. Refused with GROUNDWORK_ENV=production unless
    /// --allow-production.
    Drop(DropArgs),
    /// Drop, create and migrate the application database (asks first).
    ///
    /// `db drop`, `db create` and `migrate up` in one. Refused with
    /// GROUNDWORK_ENV=production unless --allow-production.
    Reset {
        #[command(flatten)]
        drop: DropArgs,
        #[command(flatten)]
        source: Source,
    },
    /// Load the development seed data and print its ids as NAME=value lines.
    ///
    /// seeds/development.sql: an organization, its owner, a published form and its
    /// submissions, and a catalog (a category tree, suppliers, 10,000 searchable
    /// products, most with stock), loaded once into a migrated database. The ids (ORGANIZATION_ID,
    /// USER_ID, <FORM>_FORM_ID) go to stdout, for an env file or a tenant context; the
    /// summary to stderr.
    Seed,
    /// Run the health checks of the ops schema; the exit status is the worst one's.
    ///
    /// Connects as the server's own user; a login role in groundwork_monitor, which
    /// reads no tenant data, may run them too (`--database-url`).
    #[command(after_help = HEALTH_HELP)]
    Health {
        /// Output: table, json, or prometheus (text exposition format).
        #[arg(long, value_enum, default_value_t = ops::HealthFormat::Table)]
        format: ops::HealthFormat,
    },
    /// Apply retention and expire what is past its time, then VACUUM and ANALYZE the
    /// tables that need it.
    ///
    /// ops.apply_retention(), sales.cleanup_expired_orders(),
    /// payments.cleanup_expired_payments(), inventory.cleanup_expired_reservations()
    /// and sales.cleanup_expired_carts() run in batches, a short transaction each,
    /// until nothing is left, with a line per policy and clean-up. Then a table is analyzed when more than 50 rows plus 10 % changed since
    /// its last ANALYZE (or it was never analyzed), and vacuumed too when more than 50
    /// rows plus 20 % are dead (the clean-ups' deletions included), each outside a
    /// transaction, with a line per table and a summary.
    Maintain,
    /// Back up the application database: pg_dump's custom format and a manifest.
    ///
    /// DIR gets database.dump and manifest.json: the dump's SHA-256 and size, the
    /// newest applied migration, the schema's SHA-256 and every table's row count,
    /// counted in the snapshot the dump reads. pg_dump is found as `schema dump`
    /// finds it, matching the server's major version.
    Backup {
        /// Directory to write (must not hold a backup yet); a relative path is
        /// relative to the current directory [default: backups/<database>-<UTC time>
        /// in the project root]
        #[arg(long, value_name = "DIR", value_parser = super::project::user_path)]
        out: Option<PathBuf>,
    },
    /// Prove a backup restores: into a scratch database, dropped afterwards.
    ///
    /// Refuses a backup whose files do not match the manifest's SHA-256 and size;
    /// restores it with pg_restore into a scratch database on the same server; runs
    /// `migrate verify` against --source; compares the migration version, the schema
    /// and every table's row count with the manifest. Exit 0 when all match, 1 with
    /// the differences otherwise.
    Restore {
        /// The backup directory to verify (restoring over the application database
        /// is not offered).
        #[arg(long, value_name = "DIR", required = true, value_parser = super::project::user_path)]
        verify: PathBuf,
        #[command(flatten)]
        source: Source,
    },
}

/// Who `db url` and `db psql` connect as.
#[derive(Debug, Args)]
pub(super) struct RoleArgs {
    /// Who to connect as.
    #[arg(long, value_enum, default_value_t = Role::App)]
    role: Role,
    /// On a --database-url server, make the development roles if it has none (needs
    /// CREATEROLE; refused with GROUNDWORK_ENV=production). The embedded cluster makes
    /// them by itself.
    #[arg(long)]
    create_dev_roles: bool,
}

/// A role to connect as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Role {
    /// groundwork_dev_app, in groundwork_app: under row-level security, as a service
    App,
    /// groundwork_dev_readonly, in groundwork_readonly: reads under row-level security
    Readonly,
    /// the URL's own user (the embedded cluster's superuser): migrates, bypasses
    /// row-level security
    Owner,
}

/// Confirmation for `db drop` and `db reset`.
#[derive(Debug, Args)]
pub(super) struct DropArgs {
    /// Do not ask (needed when stdin is not a terminal).
    #[arg(long, short)]
    yes: bool,
    /// Allow it when GROUNDWORK_ENV=production.
    #[arg(long)]
    allow_production: bool,
}

pub(super) async fn run(
    command: DbCommand,
    settings: &Settings,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    match command {
        DbCommand::Start => cluster::start(settings).await,
        DbCommand::Stop => cluster::stop(settings).await,
        DbCommand::Status => cluster::status(settings).await,
        DbCommand::Url(role) => url::print(settings, &role).await,
        DbCommand::Psql { role, args } => url::psql(settings, &role, args).await,
        DbCommand::Create => database::create(settings).await,
        DbCommand::Drop(drop) => database::drop(settings, &drop).await,
        DbCommand::Reset { drop, source } => database::reset(settings, &drop, &source).await,
        DbCommand::Seed => seed::seed(settings).await,
        DbCommand::Health { format } => ops::health(settings, format).await,
        DbCommand::Maintain => ops::maintain(settings).await,
        DbCommand::Backup { out } => backup::backup(settings, out.as_deref()).await,
        DbCommand::Restore { verify, source } => backup::verify(settings, &verify, &source).await,
    }
}
