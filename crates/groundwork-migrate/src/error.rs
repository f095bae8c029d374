use std::path::PathBuf;

/// A difference between the migration files and what the database recorded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Drift {
    /// The up file of an applied migration is not the one that was applied.
    #[error("migration {version} ({name}) was applied but its file changed")]
    Changed {
        /// The migration's version.
        version: i64,
        /// The migration's name.
        name: String,
    },
    /// An applied migration has no file any more.
    #[error("migration {version} ({name}) was applied but its file is gone")]
    Missing {
        /// The migration's version.
        version: i64,
        /// The name recorded when it was applied.
        name: String,
    },
    /// A pending migration sorts before one that is already applied.
    #[error(
        "migration {version} ({name}) is pending but older than the newest applied \
         migration {newest_applied}"
    )]
    OutOfOrder {
        /// The pending migration's version.
        version: i64,
        /// The pending migration's name.
        name: String,
        /// The newest applied version.
        newest_applied: i64,
    },
}

/// Why a migration command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrateError {
    /// A migration file or directory could not be read or written.
    #[error(transparent)]
    Io(#[from] groundwork_support::io::IoError),
    /// A `.sql` file whose name is not `<integer version>_<name>[.up|.down].sql`.
    #[error("migration file {0} is not named <version>_<name>.up.sql or .down.sql")]
    InvalidFileName(PathBuf),
    /// A name for a new migration that gives no file name: it has no ASCII letter or
    /// digit.
    #[error("a migration name needs at least one letter or digit (a-z, 0-9), and {0:?} has none")]
    InvalidName(String),
    /// Two files claim the same version and direction.
    #[error("migration version {version} is used by both {first} and {second}")]
    DuplicateVersion {
        /// The version.
        version: i64,
        /// One file.
        first: PathBuf,
        /// The other file.
        second: PathBuf,
    },
    /// A down file without its up file.
    #[error("migration file {0} has no matching .up.sql file")]
    DownWithoutUp(PathBuf),
    /// A migration statement failed; nothing of a transactional migration remains.
    #[error("migration {file} failed at line {line}: {code} {message}{}", detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Failed {
        /// The file that failed.
        file: PathBuf,
        /// 1-based line of the error (or of the failing statement).
        line: usize,
        /// The SQLSTATE code.
        code: String,
        /// The server's message.
        message: String,
        /// The server's detail, if any.
        detail: Option<String>,
    },
    /// A statement could not take its locks within `lock_timeout`, on every attempt;
    /// nothing of a transactional migration remains.
    #[error(
        "migration {file} could not take its locks at line {line} ({message}) in {attempts} \
         attempt(s): another session holds a conflicting lock; find it in pg_locks or try \
         again when the database is quieter"
    )]
    LockNotAvailable {
        /// The file.
        file: PathBuf,
        /// 1-based line of the statement that waited.
        line: usize,
        /// How many times it was tried.
        attempts: u32,
        /// The server's message.
        message: String,
    },
    /// `migrate up` refuses to run over drifted applied migrations.
    #[error("{0}; restore the applied file or add a new migration instead of editing one")]
    AppliedChanged(Drift),
    /// `migrate verify` found drift.
    #[error("{} migration problem(s): {}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Drift(Vec<Drift>),
    /// A `--to` version that no migration file has.
    #[error("there is no migration with version {0}")]
    UnknownVersion(i64),
    /// Reverting an applied migration whose file is gone.
    #[error("migration {version} ({name}) cannot be reverted: its files are gone")]
    MissingFiles {
        /// The version.
        version: i64,
        /// The recorded name.
        name: String,
    },
    /// Reverting a migration that has no down file.
    #[error("migration {version} ({name}) cannot be reverted: it has no .down.sql file")]
    Irreversible {
        /// The version.
        version: i64,
        /// The name.
        name: String,
    },
    /// `down` in production without `--allow-production`.
    #[error(
        "refusing to revert migrations with GROUNDWORK_ENV=production; pass \
         --allow-production if you mean it"
    )]
    ProductionRefused,
    /// Another runner held the migration lock for too long.
    #[error("timed out after {:?} waiting for the migration lock held by another runner", .0.0)]
    LockTimeout(#[from] groundwork_support::lock::LockTimeout),
    /// The database failed outside a migration script.
    #[error("migration bookkeeping: {}", groundwork_support::connect::describe(.0))]
    Database(#[from] tokio_postgres::Error),
}
