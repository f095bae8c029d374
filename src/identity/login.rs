//! Password login with lock-out after repeated failures.

use std::net::IpAddr;
use std::time::Duration;

use uuid::Uuid;

use super::{IdentityError, verify_password};
use crate::client::async_::GenericClient;
use crate::queries::identity::users::{user_login_failed, user_login_lookup, user_login_succeeded};
use crate::types::identity::UserStatus;

/// When failures lock an account, and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginPolicy {
    /// Consecutive failures that lock the account.
    pub max_attempts: i32,
    /// How long the lock lasts.
    pub lockout: Duration,
}

impl Default for LoginPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            lockout: Duration::from_secs(15 * 60),
        }
    }
}

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

/// Checks `password` for `email`, counting failures and locking per `policy`. A
/// locked account is refused without checking the password.
pub async fn login<C: GenericClient>(
    client: &C,
    email: &str,
    password: &str,
    ip: Option<IpAddr>,
    policy: LoginPolicy,
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
            .bind(
                client,
                &candidate.user_id,
                &policy.max_attempts,
                &policy.lockout.as_secs_f64(),
            )
            .one()
            .await?;
        return Ok(match failed.locked_until {
            Some(until) if until > chrono::Utc::now() => LoginOutcome::Locked { until },
            _ => LoginOutcome::InvalidCredentials,
        });
    }
    user_login_succeeded()
        .bind(client, &candidate.user_id, &ip)
        .one()
        .await?;
    Ok(LoginOutcome::Authenticated {
        user_id: candidate.user_id,
    })
}
