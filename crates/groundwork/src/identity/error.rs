/// Why an identity operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The database refused or failed.
    #[error(transparent)]
    Database(#[from] crate::Error),
    /// Hashing or checking a password failed (not: the password was wrong).
    #[error("password hashing: {0}")]
    PasswordHash(String),
    /// The operating system's random source failed.
    #[error("random source: {0}")]
    Random(String),
}

impl From<tokio_postgres::Error> for IdentityError {
    fn from(error: tokio_postgres::Error) -> Self {
        Self::Database(error.into())
    }
}

impl From<deadpool_postgres::PoolError> for IdentityError {
    fn from(error: deadpool_postgres::PoolError) -> Self {
        Self::Database(error.into())
    }
}
