//! Random tokens and their stored form.

use sha2::{Digest, Sha256};

use super::IdentityError;

/// SHA-256 of a presented token: the only form the database stores or compares.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// `bytes` random bytes, hex-encoded.
pub(super) fn random_hex(bytes: usize) -> Result<String, IdentityError> {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).map_err(IdentityError::Random)?;
    Ok(hex::encode(buffer))
}

/// A fresh 256-bit token and its hash.
pub(super) fn new_token() -> Result<(String, Vec<u8>), IdentityError> {
    let token = random_hex(32)?;
    let hash = token_hash(&token);
    Ok((token, hash))
}
