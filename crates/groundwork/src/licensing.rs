//! Licensing (the `licensing` schema, seed 001): a plan catalogue, licences per tenant
//! with seats and a validity period, seats assigned to users, and the entitlement check.
//! Single statements are the generated queries
//! (`groundwork::queries::licensing::*`); their errors convert into [`LicensingError`].
//!
//! | rule | SQLSTATE | error |
//! |---|---|---|
//! | never more seats assigned than the licence has, also when assignments race | WL001 | [`LicensingError::SeatsExhausted`] |
//! | seats only on a usable licence (trial or active, in its period) | WL002 | [`LicensingError::NotUsable`] |
//! | seats only for active members of the licence's organization | WL003 | [`LicensingError::NotAMember`] |
//! | status moves only as the migration lists (cancelled is final) | WL004 | [`LicensingError::InvalidTransition`] |
//! | seats 1 to 100000, `starts_at` < `ends_at`, no fewer seats than assigned | 23514 | [`LicensingError::Database`] |
//!
//! [`has_entitlement`] is `licensing.has_entitlement(user_id, feature)`: a usable licence
//! of the current tenant, a seat of it held by the user, the feature granted (the
//! licence's `features` override its plan's). An auto-renewing licence keeps its
//! entitlements for a grace period of 3 days past `ends_at`, covering a late renewal
//! run; one without auto-renewal ends at `ends_at`. Renewal and expiry are
//! `licensing.process_expirations()`, per tenant: run it periodically, for example as
//! the job `ProcessExpirations` (feature `jobs`) on a `groundwork::jobs::Periodic`
//! schedule.

use chrono::{DateTime, FixedOffset};
use uuid::Uuid;

use crate::Error;
use crate::client::async_::{GenericClient, Params};
use crate::error::{Violation, converts_from_driver_errors};
use crate::queries::licensing::license_assignments::{LicenseAssignment, license_assignment_add};
use crate::queries::licensing::licenses::{
    License, LicenseCreateParams, license_create, license_has_entitlement,
};
use crate::types::licensing::LicenseStatus;

/// SQLSTATE raised when every seat of a licence is taken; the detail is
/// `{"seats": <seats>}`.
pub const SEATS_EXHAUSTED: &str = "WL001";
/// SQLSTATE raised when a seat is asked of a licence that grants none (not trial or
/// active, or outside its period).
pub const NOT_USABLE: &str = "WL002";
/// SQLSTATE raised when a seat is asked for a user who is not an active member of the
/// licence's organization.
pub const NOT_A_MEMBER: &str = "WL003";
/// SQLSTATE raised for a status change the licence does not allow.
pub const INVALID_TRANSITION: &str = "WL004";

/// Why a licensing operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LicensingError {
    /// Every seat is taken (WL001).
    #[error("all {seats} seats are taken: {violation}")]
    SeatsExhausted {
        /// The licence's seats.
        seats: i32,
        /// The server's report.
        violation: Box<Violation>,
    },
    /// The licence grants no seats now (WL002).
    #[error("licence not usable: {0}")]
    NotUsable(Box<Violation>),
    /// The user is not an active member of the organization (WL003).
    #[error("not a member: {0}")]
    NotAMember(Box<Violation>),
    /// The status change is not allowed (WL004).
    #[error("invalid transition: {0}")]
    InvalidTransition(Box<Violation>),
    /// Anything else.
    #[error(transparent)]
    Database(Error),
}

impl LicensingError {
    /// The server's report, if there is one.
    pub fn violation(&self) -> Option<&Violation> {
        match self {
            Self::SeatsExhausted { violation: v, .. }
            | Self::NotUsable(v)
            | Self::NotAMember(v)
            | Self::InvalidTransition(v) => Some(v),
            Self::Database(e) => e.violation(),
        }
    }
}

impl From<Error> for LicensingError {
    fn from(error: Error) -> Self {
        let boxed = |v: &Violation| Box::new(v.clone());
        if let Some(v) = error.raised(SEATS_EXHAUSTED) {
            let seats = v
                .detail_json()
                .and_then(|d| d.get("seats")?.as_i64())
                .and_then(|s| i32::try_from(s).ok())
                .unwrap_or_default();
            Self::SeatsExhausted {
                seats,
                violation: boxed(v),
            }
        } else if let Some(v) = error.raised(NOT_USABLE) {
            Self::NotUsable(boxed(v))
        } else if let Some(v) = error.raised(NOT_A_MEMBER) {
            Self::NotAMember(boxed(v))
        } else if let Some(v) = error.raised(INVALID_TRANSITION) {
            Self::InvalidTransition(boxed(v))
        } else {
            Self::Database(error)
        }
    }
}

converts_from_driver_errors!(LicensingError);

impl From<LicensingError> for Error {
    fn from(error: LicensingError) -> Self {
        match error {
            LicensingError::SeatsExhausted { violation: v, .. }
            | LicensingError::NotUsable(v)
            | LicensingError::NotAMember(v)
            | LicensingError::InvalidTransition(v) => Error::Database(v),
            LicensingError::Database(e) => e,
        }
    }
}

/// A licence to issue in the current tenant.
#[derive(Clone, Debug, PartialEq)]
pub struct NewLicense {
    /// The holder, who bought it.
    pub user_id: Uuid,
    /// A plan's code (`licensing.plans`): `trial`, `standard`, `professional`,
    /// `enterprise`.
    pub plan: String,
    /// Default active.
    pub status: LicenseStatus,
    /// 1 to 100000.
    pub seats: i32,
    /// Default now.
    pub starts_at: Option<DateTime<FixedOffset>>,
    /// After `starts_at`.
    pub ends_at: DateTime<FixedOffset>,
    /// Overrides of the plan's features (`{"cam": true}`), default none.
    pub features: serde_json::Value,
    /// Renewed by `licensing.process_expirations` when its end passes.
    pub auto_renew: bool,
}

impl NewLicense {
    /// An active licence of `plan` for `user_id`, starting now and ending at `ends_at`.
    pub fn new(
        user_id: Uuid,
        plan: impl Into<String>,
        seats: i32,
        ends_at: DateTime<FixedOffset>,
    ) -> Self {
        Self {
            user_id,
            plan: plan.into(),
            status: LicenseStatus::Active,
            seats,
            starts_at: None,
            ends_at,
            features: serde_json::json!({}),
            auto_renew: false,
        }
    }

    /// Renews automatically.
    pub fn auto_renew(mut self) -> Self {
        self.auto_renew = true;
        self
    }

    /// With another status (a trial, say).
    pub fn status(mut self, status: LicenseStatus) -> Self {
        self.status = status;
        self
    }
}

/// Issues `license` in the current tenant.
pub async fn issue<C: GenericClient>(
    client: &C,
    license: &NewLicense,
) -> Result<License, LicensingError> {
    Ok(license_create()
        .params(
            client,
            &LicenseCreateParams {
                user_id: license.user_id,
                plan: license.plan.as_str(),
                status: license.status,
                seats: license.seats,
                starts_at: license.starts_at,
                ends_at: license.ends_at,
                features: &license.features,
                auto_renew: license.auto_renew,
            },
        )
        .one()
        .await?)
}

/// Gives `user_id` a seat of `license_id`.
pub async fn assign_seat<C: GenericClient>(
    client: &C,
    license_id: Uuid,
    user_id: Uuid,
) -> Result<LicenseAssignment, LicensingError> {
    Ok(license_assignment_add()
        .bind(client, &license_id, &user_id)
        .one()
        .await?)
}

/// Whether `user_id` may use `feature` now, in the current tenant.
pub async fn has_entitlement<C: GenericClient>(
    client: &C,
    user_id: Uuid,
    feature: &str,
) -> Result<bool, Error> {
    Ok(license_has_entitlement()
        .bind(client, &user_id, &feature)
        .one()
        .await?)
}

/// The job that renews and expires a tenant's licences
/// (`licensing.process_expirations()`), for a [`crate::jobs::Periodic`] schedule per
/// tenant.
#[cfg(feature = "jobs")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProcessExpirations {}

#[cfg(feature = "jobs")]
impl crate::jobs::Job for ProcessExpirations {
    const KIND: &'static str = "licensing.process_expirations";

    async fn run(self, ctx: crate::jobs::JobContext) -> Result<(), crate::jobs::JobError> {
        use crate::queries::licensing::licenses::license_process_expirations;
        let changed = ctx
            .with_tenant(async |tx| Ok(license_process_expirations().bind(tx).one().await?))
            .await?;
        ctx.set_metrics(serde_json::json!({ "changed": changed }))
            .await;
        Ok(())
    }
}
