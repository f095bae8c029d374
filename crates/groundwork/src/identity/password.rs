//! argon2id password hashes in PHC string form.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use super::IdentityError;

/// Hashes `password` with argon2id and a random salt; store the result in
/// `users.password_hash`.
pub fn hash_password(password: &str) -> Result<String, IdentityError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(IdentityError::Random)?;
    let salt = SaltString::encode_b64(&salt).map_err(IdentityError::PasswordHash)?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(IdentityError::PasswordHash)
}

/// Whether `password` matches `hash`. A malformed hash is an error, a wrong password
/// is `Ok(false)`.
pub fn verify_password(hash: &str, password: &str) -> Result<bool, IdentityError> {
    let parsed = PasswordHash::new(hash).map_err(IdentityError::PasswordHash)?;
    match Argon2::default().verify_password(password.as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::Password) => Ok(false),
        Err(e) => Err(IdentityError::PasswordHash(e)),
    }
}
