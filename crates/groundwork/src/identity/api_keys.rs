//! API keys: `gw_<8 characters>_<64 hex digits>`, stored as prefix + SHA-256.

use uuid::Uuid;

use super::IdentityError;
use super::secret::{random_hex, token_hash};
use crate::client::async_::{GenericClient, Params};
use crate::queries::identity::api_keys::{
    ApiKey, ApiKeyCreateParams, api_key_authenticate, api_key_create,
};

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

/// A key to issue: [`NewApiKey::new`] and the setters for what differs from the
/// defaults (no scopes, no rate limit, no expiry, no creator). The key belongs to the
/// organization the issuing transaction acts for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewApiKey {
    /// A name for people (1 to 100 characters).
    pub name: String,
    /// What the key may do.
    pub scopes: Vec<String>,
    /// Requests per minute, if limited.
    pub rate_limit_per_minute: Option<i32>,
    /// When it stops working, if ever.
    pub expires_at: Option<chrono::DateTime<chrono::FixedOffset>>,
    /// The user who issued it.
    pub created_by: Option<Uuid>,
}

impl NewApiKey {
    /// A key named `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            scopes: Vec::new(),
            rate_limit_per_minute: None,
            expires_at: None,
            created_by: None,
        }
    }

    /// Sets the scopes.
    pub fn scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the expiry.
    pub fn expires_at(mut self, at: chrono::DateTime<chrono::FixedOffset>) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// Sets the rate limit.
    pub fn rate_limit_per_minute(mut self, limit: i32) -> Self {
        self.rate_limit_per_minute = Some(limit);
        self
    }

    /// Records who issued it.
    pub fn created_by(mut self, user_id: Uuid) -> Self {
        self.created_by = Some(user_id);
        self
    }
}

/// Issues `key` for the organization `client`'s transaction acts for (see
/// [`crate::tenant`]).
pub async fn issue_api_key<C: GenericClient>(
    client: &C,
    key: &NewApiKey,
) -> Result<IssuedApiKey, IdentityError> {
    let prefix = format!("gw_{}", random_hex(4)?);
    let plaintext = format!("{prefix}_{}", random_hex(32)?);
    let row = api_key_create()
        .params(
            client,
            &ApiKeyCreateParams {
                created_by: key.created_by,
                name: key.name.as_str(),
                key_prefix: prefix.as_str(),
                key_hash: token_hash(&plaintext),
                scopes: key.scopes.as_slice(),
                rate_limit_per_minute: key.rate_limit_per_minute,
                expires_at: key.expires_at,
            },
        )
        .one()
        .await?;
    Ok(IssuedApiKey {
        key: row,
        plaintext,
    })
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
