//! Why the linter could not finish (as opposed to what it found).

/// Why a lint run failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LintError {
    /// The migrations could not be read, or the runner failed outside a traced
    /// statement.
    #[error(transparent)]
    Migrate(#[from] groundwork_migrate::MigrateError),
    /// The trace's database failed outside a traced statement.
    #[error("lint trace: {}", groundwork_support::connect::describe(.0))]
    Database(#[from] tokio_postgres::Error),
}
