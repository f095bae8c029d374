//! Password login with lock-out after repeated failures.
//!
//! The lock-out policy (failures before a lock, how long it lasts) lives in the
//! database (`identity.auth_policy`), and so does the rule that a locked or inactive
//! account never gets its password checked: the lookup returns no hash for it. The
//! login functions are granted to `groundwork_auth` only, so `client` must connect as
//! a role in that group.

use std::net::IpAddr;

use uuid::Uuid;

use super::{IdentityError, verify_password};
use crate::client::async_::GenericClient;
use crate::queries::identity::users::{user_login_failed, user_login_lookup, user_login_succeeded};
use crate::types::identity::UserStatus;

/// The result of a login attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoginOutcome {
    /// The password matched an active, unlocked account.
    Authenticated {
        /// The user.
        user_id: Uuid,
    },
    /// Unknown email or wrong password (indistinguishable to the caller).
    InvalidCredentials,
    /// Too many failures: locked until then.
    Locked {
        /// When the lock ends.
        until: chrono::DateTime<chrono::FixedOffset>,
    },
    /// The account is not active.
    Inactive,
}

/// Checks `password` for `email`, counting failures and locking the account under the
/// database's policy. A locked or inactive account is refused without checking the
/// password.
pub async fn login<C: GenericClient>(
    client: &C,
    email: &str,
    password: &str,
    ip: Option<IpAddr>,
) -> Result<LoginOutcome, IdentityError> {
    let Some(candidate) = user_login_lookup().bind(client, &email).opt().await? else {
        return Ok(LoginOutcome::InvalidCredentials);
    };
    if let Some(until) = candidate.locked_until
        && until > chrono::Utc::now()
    {
        return Ok(LoginOutcome::Locked { until });
    }
    if candidate.status != UserStatus::Active {
        return Ok(LoginOutcome::Inactive);
    }
    let matches = match &candidate.password_hash {
        Some(hash) => verify_password(hash, password)?,
        None => false,
    };
    if !matches {
        let failed = user_login_failed()
            .bind(client, &candidate.user_id)
            .opt()
            .await?;
        return Ok(match failed.and_then(|f| f.locked_until) {
            Some(until) if until > chrono::Utc::now() => LoginOutcome::Locked { until },
            _ => LoginOutcome::InvalidCredentials,
        });
    }
    let recorded = user_login_succeeded()
        .bind(client, &candidate.user_id, &ip)
        .one()
        .await?;
    if !recorded {
        // Locked or deactivated between the lookup and now: report the current state.
        let current = user_login_lookup().bind(client, &email).opt().await?;
        return Ok(match current.and_then(|c| c.locked_until) {
            Some(until) if until > chrono::Utc::now() => LoginOutcome::Locked { until },
            _ => LoginOutcome::Inactive,
        });
    }
    Ok(LoginOutcome::Authenticated {
        user_id: candidate.user_id,
    })
}
