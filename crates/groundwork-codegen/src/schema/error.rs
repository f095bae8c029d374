use std::path::PathBuf;
use std::process::ExitStatus;

use groundwork_migrate::MigrateError;

use super::connect::describe;
use super::io::IoError;

/// Why the schema dump could not be made, written or compared.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SchemaError {
    /// A file could not be read or written, or pg_dump could not be run.
    #[error(transparent)]
    Io(#[from] IoError),
    /// The migrations did not apply to the scratch database.
    #[error("migrating the schema dump database: {0}")]
    Migrate(#[from] MigrateError),
    /// The scratch database could not be created, reached or dropped.
    #[error("schema dump database: {}", describe(.0))]
    Database(#[from] tokio_postgres::Error),
    /// No pg_dump on this machine can dump the server.
    #[error(
        "no pg_dump for PostgreSQL {server_major} found{}: looked next to the server's own \
         programs, on PATH, via pg_config --bindir and under /usr/lib/postgresql/<version>/bin; \
         install PostgreSQL {server_major}'s client programs (Debian: postgresql-client-{server_major})",
        unusable(.found)
    )]
    PgDumpNotFound {
        /// The major version of the server to dump.
        server_major: u32,
        /// The pg_dump programs found, with their major versions, all older than the
        /// server.
        found: Vec<(PathBuf, u32)>,
    },
    /// pg_dump ran and failed.
    #[error("{} failed ({status}): {message}", path.display())]
    PgDumpFailed {
        /// The pg_dump that ran.
        path: PathBuf,
        /// How it exited.
        status: ExitStatus,
        /// What it printed on stderr.
        message: String,
    },
    /// pg_dump printed something the dump cannot be made from.
    #[error("unexpected output from pg_dump: {0}")]
    PgDumpOutput(String),
    /// A schema whose name cannot be a file name of its own.
    #[error(
        "schema {0:?} cannot be dumped to a file of its own: its name is not a plain file \
         name, or is `database`, the file of the database-wide objects"
    )]
    UnsupportedSchemaName(String),
}

fn unusable(found: &[(PathBuf, u32)]) -> String {
    if found.is_empty() {
        return String::new();
    }
    let list: Vec<String> = found
        .iter()
        .map(|(path, major)| format!("{} is pg_dump {major}", path.display()))
        .collect();
    format!(" (too old: {})", list.join(", "))
}
