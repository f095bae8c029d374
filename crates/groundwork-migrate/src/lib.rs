//! Reversible SQL migrations: `migrations/<version>_<name>.up.sql` and `.down.sql`.
//!
//! - The version is any integer; groundwork writes UTC timestamps (`YYYYMMDDHHMMSS`).
//!   A plain `<version>_<name>.sql` is an up-only (irreversible) migration.
//! - Applied migrations are recorded in `public.schema_migrations` with a SHA-256
//!   checksum of the up file, the time they were applied and how long they took.
//! - Each migration runs in its own transaction, together with its bookkeeping row,
//!   so a failing migration leaves nothing applied or recorded. A file whose first
//!   line is `-- groundwork:no-transaction` runs one statement at a time outside a
//!   transaction (for `CREATE INDEX CONCURRENTLY`) and is recorded after its last
//!   statement; a file that stopped half-way runs again from its first statement, so
//!   write its statements to be repeatable (`IF NOT EXISTS`). Before a `CREATE INDEX`
//!   there, an INVALID index of the same name, left by a concurrent build that failed
//!   or was killed, is dropped.
//! - Every statement runs under `lock_timeout` and `statement_timeout`
//!   ([`StatementLimits`]); when a lock cannot be had in time the transaction (or,
//!   outside one, the statement) is tried again after a growing pause, so a migration
//!   never queues the application behind it for long.
//! - Concurrent runners serialise on a session-level advisory lock taken by polling
//!   `pg_try_advisory_lock`: a waiting runner holds no snapshot, so it cannot deadlock
//!   against a `CREATE INDEX CONCURRENTLY` in the runner that holds the lock. The
//!   applied state is read only after the lock is held.
//! - [`Migrator::verify`] reports drift: an applied migration whose file changed or
//!   is gone, and a pending migration older than the newest applied one.

mod error;
mod migration;
mod migrator;
mod run;
mod split;

pub use error::{Drift, MigrateError};
pub use migration::{
    Migration, Script, migration_slug, new_migration_files, new_migration_files_with,
};
pub use migrator::{
    AppliedRecord, DownOptions, DownTarget, MigrationState, MigrationStatus, Migrator, Step,
    UpOptions,
};
pub use run::StatementLimits;
pub use split::{Statement, split_statements};

/// The marker that opts a migration file out of its transaction.
pub const NO_TRANSACTION_MARKER: &str = "-- groundwork:no-transaction";
