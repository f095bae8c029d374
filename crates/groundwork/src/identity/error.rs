/// Why an identity operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The database refused or failed.
    #[error(transparent)]
    Database(#[from] crate::Error),
    /// Hashing or checking a password failed (not: the password was wrong).
    #[error("password hashing: {0}")]
    PasswordHash(#[source] argon2::password_hash::Error),
    /// The operating system's random source failed.
    #[error("random source: {0}")]
    Random(#[source] getrandom::Error),
}

crate::error::converts_from_driver_errors!(IdentityError);
