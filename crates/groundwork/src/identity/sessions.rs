//! Sessions identified by a refresh token that is rotated on every use.

use std::net::IpAddr;
use std::time::Duration;

use uuid::Uuid;

use super::IdentityError;
use super::secret::{new_token, token_hash};
use crate::client::async_::{GenericClient, Params};
use crate::queries::identity::sessions::{
    Session, SessionCreateParams, session_create, session_rotate,
};

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

/// A session to open: [`NewSession::new`] and the setters for the client's details.
/// The database caps the lifetime at `identity.auth_policy.session_lifetime`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewSession {
    /// The user signing in.
    pub user_id: Uuid,
    /// How long the refresh token works.
    pub valid_for: Duration,
    /// The client device's fingerprint.
    pub device_fingerprint: Option<String>,
    /// The client's address.
    pub ip_address: Option<IpAddr>,
    /// The client's user agent.
    pub user_agent: Option<String>,
}

impl NewSession {
    /// A session of `user_id` valid for `valid_for`.
    pub fn new(user_id: Uuid, valid_for: Duration) -> Self {
        Self {
            user_id,
            valid_for,
            device_fingerprint: None,
            ip_address: None,
            user_agent: None,
        }
    }

    /// Sets the device fingerprint.
    pub fn device(mut self, fingerprint: impl Into<String>) -> Self {
        self.device_fingerprint = Some(fingerprint.into());
        self
    }

    /// Sets the client's address.
    pub fn ip(mut self, ip: IpAddr) -> Self {
        self.ip_address = Some(ip);
        self
    }

    /// Sets the user agent.
    pub fn user_agent(mut self, agent: impl Into<String>) -> Self {
        self.user_agent = Some(agent.into());
        self
    }
}

/// Opens `session` (`client` should act for its user, see [`crate::tenant`]).
pub async fn create_session<C: GenericClient>(
    client: &C,
    session: &NewSession,
) -> Result<IssuedSession, IdentityError> {
    let (refresh_token, hash) = new_token()?;
    let row = session_create()
        .params(
            client,
            &SessionCreateParams {
                user_id: session.user_id,
                refresh_token_hash: hash,
                device_fingerprint: session.device_fingerprint.as_deref(),
                ip_address: session.ip_address,
                user_agent: session.user_agent.as_deref(),
                valid_seconds: session.valid_for.as_secs_f64(),
            },
        )
        .one()
        .await?;
    Ok(IssuedSession {
        session: row,
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
