//! API keys: `gw_<8 characters>_<64 hex digits>`, stored as prefix + SHA-256.

use uuid::Uuid;

use super::IdentityError;
use super::secret::{random_hex, token_hash};
use crate::client::async_::GenericClient;
use crate::queries::identity::api_keys::{ApiKey, api_key_authenticate, api_key_create};

/// A new key: its row and the plaintext, which is shown once and never stored.
#[derive(Clone, Debug)]
pub struct IssuedApiKey {
    /// The stored row (prefix, scopes, expiry; no secret).
    pub key: ApiKey,
    /// The key to hand to its owner.
    pub plaintext: String,
}

/// What an authenticated key may act as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyPrincipal {
    /// The key.
    pub api_key_id: Uuid,
    /// The organization it belongs to.
    pub organization_id: Uuid,
    /// Its scopes.
    pub scopes: Vec<String>,
    /// Its rate limit, if any.
    pub rate_limit_per_minute: Option<i32>,
}

/// Issues a key for the current organization (`client` should carry that tenant
/// context, see [`crate::tenant`]).
pub async fn issue_api_key<C: GenericClient>(
    client: &C,
    organization_id: Uuid,
    name: &str,
    scopes: &[&str],
    expires_at: Option<chrono::DateTime<chrono::FixedOffset>>,
    created_by: Option<Uuid>,
) -> Result<IssuedApiKey, IdentityError> {
    let prefix = format!("gw_{}", random_hex(4)?);
    let plaintext = format!("{prefix}_{}", random_hex(32)?);
    let key = api_key_create()
        .bind(
            client,
            &organization_id,
            &created_by,
            &name,
            &prefix,
            &token_hash(&plaintext),
            &scopes,
            &None::<i32>,
            &expires_at,
        )
        .one()
        .await?;
    Ok(IssuedApiKey { key, plaintext })
}

/// Authenticates a presented key: `None` for a malformed, unknown, revoked or
/// expired key. Records the use of a valid one.
pub async fn authenticate_api_key<C: GenericClient>(
    client: &C,
    presented: &str,
) -> Result<Option<ApiKeyPrincipal>, IdentityError> {
    let well_formed =
        presented.len() == 76 && presented.starts_with("gw_") && presented.as_bytes()[11] == b'_';
    if !well_formed {
        return Ok(None);
    }
    let row = api_key_authenticate()
        .bind(client, &token_hash(presented))
        .opt()
        .await?;
    Ok(row.map(|row| ApiKeyPrincipal {
        api_key_id: row.api_key_id,
        organization_id: row.organization_id,
        scopes: row.scopes,
        rate_limit_per_minute: row.rate_limit_per_minute,
    }))
}
