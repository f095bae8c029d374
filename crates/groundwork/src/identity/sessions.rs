//! Sessions identified by a refresh token that is rotated on every use.

use std::net::IpAddr;
use std::time::Duration;

use uuid::Uuid;

use super::IdentityError;
use super::secret::{new_token, token_hash};
use crate::client::async_::GenericClient;
use crate::queries::identity::sessions::{Session, session_create, session_rotate};

/// A new session and its refresh token (shown once, stored as a hash).
#[derive(Clone, Debug)]
pub struct IssuedSession {
    /// The stored row.
    pub session: Session,
    /// The refresh token to hand to the client.
    pub refresh_token: String,
}

/// A rotated session and the token that replaces the presented one.
#[derive(Clone, Debug)]
pub struct RotatedSession {
    /// The session.
    pub session_id: Uuid,
    /// Its user.
    pub user_id: Uuid,
    /// The new expiry.
    pub expires_at: chrono::DateTime<chrono::FixedOffset>,
    /// The new refresh token; the presented one no longer works.
    pub refresh_token: String,
}

/// Creates a session for `user_id` valid for `ttl` (`client` should act for that
/// user, see [`crate::tenant`]).
pub async fn create_session<C: GenericClient>(
    client: &C,
    user_id: Uuid,
    ttl: Duration,
    device_fingerprint: Option<&str>,
    ip_address: Option<IpAddr>,
    user_agent: Option<&str>,
) -> Result<IssuedSession, IdentityError> {
    let (refresh_token, hash) = new_token()?;
    let session = session_create()
        .bind(
            client,
            &user_id,
            &hash,
            &device_fingerprint,
            &ip_address,
            &user_agent,
            &ttl.as_secs_f64(),
        )
        .one()
        .await?;
    Ok(IssuedSession {
        session,
        refresh_token,
    })
}

/// Exchanges a presented refresh token for a new one, extending the session by
/// `ttl`. `None` when the token is unknown, already rotated, revoked or expired.
pub async fn rotate_session<C: GenericClient>(
    client: &C,
    refresh_token: &str,
    ttl: Duration,
) -> Result<Option<RotatedSession>, IdentityError> {
    let (new_refresh_token, new_hash) = new_token()?;
    let row = session_rotate()
        .bind(
            client,
            &token_hash(refresh_token),
            &new_hash,
            &ttl.as_secs_f64(),
        )
        .opt()
        .await?;
    Ok(row.map(|row| RotatedSession {
        session_id: row.session_id,
        user_id: row.user_id,
        expires_at: row.expires_at,
        refresh_token: new_refresh_token,
    }))
}
