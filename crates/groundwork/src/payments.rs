//! Payments for orders (the `payments` schema, seed 002, docs/REQUIREMENTS.md):
//! tokenised payment methods (a provider's token, brand, last four digits and expiry;
//! no column can hold a card number), and the authorize -> capture -> settle state
//! machine, enforced by the database whatever writes the rows. Capturing an order's
//! payment marks the order paid and sells its reservations (`on_hand` drops); refunds
//! never add up to more than was captured, also when they race; every state change
//! and refund is logged, append-only, in `payments.payment_transactions`.
//!
//! | rule | SQLSTATE | error |
//! |---|---|---|
//! | the payment or order is the tenant's (and, to authorize, the current user's) | WY001 | [`PaymentError::NotFound`] |
//! | only an authorized payment is captured or voided, only a captured one settled or refunded | WY002 | [`PaymentError::InvalidTransition`] |
//! | a capture is at most the authorized amount, refunds at most what was captured | WY003 | [`PaymentError::AmountExceeded`] |
//! | the payment method is the user's, not removed, not expired | WY004 | [`PaymentError::MethodUnusable`] |
//! | only a pending order without a live payment is authorized | WY005 | [`PaymentError::OrderNotPayable`] |
//! | an expired authorization or order is not paid | WY006 | [`PaymentError::Expired`] |
//! | the log and the refunds are never changed | WY007 | [`PaymentError::AppendOnly`] |
//! | an amount is above 0; a reason 1 to 500 characters | 22023, 54000 | [`Error::Invalid`], [`Error::LimitExceeded`] in [`PaymentError::Database`] |
//! | a tenant is set (and an active user, to authorize) | 42501 | [`Error::PermissionDenied`] in [`PaymentError::Database`] |
//!
//! Nothing is written when any of them is raised. The provider is a mock: an
//! authorization succeeds at once for the order's total and lasts as long as the
//! pending order (30 minutes after checkout).
//!
//! ```no_run
//! # async fn example(pool: deadpool_postgres::Pool, tenant: groundwork::tenant::Tenant, order: uuid::Uuid, method: uuid::Uuid) -> Result<(), groundwork::payments::PaymentError> {
//! use groundwork::payments::{self, PaymentError};
//! use groundwork::tenant::with_tenant;
//!
//! let mut client = pool.get().await?;
//! with_tenant(&mut client, tenant, async |tx| {
//!     let payment = payments::authorize(tx, order, method).await?;
//!     payments::capture(tx, payment, None).await?;
//!     Ok(())
//! })
//! .await
//! .map_err(PaymentError::from)
//! # }
//! ```

use rust_decimal::Decimal;
use uuid::Uuid;

use crate::Error;
use crate::client::async_::{GenericClient, Params};
use crate::error::{Violation, converts_from_driver_errors};
use crate::queries::payments::payment_methods::{
    PaymentMethod, PaymentMethodAddParams, payment_method_add, payment_method_set_default,
};
use crate::queries::payments::payments::{
    Payment, PaymentAuthorizeParams, PaymentCaptureParams, payment_authorize, payment_capture,
    payment_cleanup_expired, payment_get, payment_settle, payment_void,
};
use crate::queries::payments::refunds::{RefundCreateParams, refund_create};
use crate::types::payments::MethodKind;

/// SQLSTATE raised for a payment or order that is not the tenant's (or, to authorize,
/// the current user's).
pub const NOT_FOUND: &str = "WY001";
/// SQLSTATE raised for a state change the payment (or dispute) does not allow: capture
/// before authorization or after a void, refund before capture.
pub const INVALID_TRANSITION: &str = "WY002";
/// SQLSTATE raised for an amount above what is authorized, or left to refund; the
/// detail is `{"available"}`.
pub const AMOUNT_EXCEEDED: &str = "WY003";
/// SQLSTATE raised for a payment method that expired, was removed or is another
/// user's.
pub const METHOD_UNUSABLE: &str = "WY004";
/// SQLSTATE raised when an order that is not pending, or has a live payment, is
/// authorized.
pub const ORDER_NOT_PAYABLE: &str = "WY005";
/// SQLSTATE raised when an expired authorization or order is paid.
pub const EXPIRED: &str = "WY006";
/// SQLSTATE raised when a payment transaction or refund is updated or deleted.
pub const APPEND_ONLY: &str = "WY007";

/// Why a payment operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PaymentError {
    /// The payment or order is not the tenant's or the user's (WY001).
    #[error("not found: {0}")]
    NotFound(Box<Violation>),
    /// The state change is not allowed (WY002).
    #[error("invalid transition: {0}")]
    InvalidTransition(Box<Violation>),
    /// Above what is authorized or left to refund (WY003).
    #[error("amount exceeded: {0}")]
    AmountExceeded(Box<Violation>),
    /// The payment method cannot be used (WY004).
    #[error("payment method unusable: {0}")]
    MethodUnusable(Box<Violation>),
    /// The order cannot be paid (WY005).
    #[error("order not payable: {0}")]
    OrderNotPayable(Box<Violation>),
    /// The authorization or its order has expired (WY006).
    #[error("expired: {0}")]
    Expired(Box<Violation>),
    /// Payment transactions and refunds are never changed (WY007).
    #[error("append-only: {0}")]
    AppendOnly(Box<Violation>),
    /// Anything else.
    #[error(transparent)]
    Database(Error),
}

impl PaymentError {
    /// The server's report, if there is one.
    pub fn violation(&self) -> Option<&Violation> {
        match self {
            Self::NotFound(v)
            | Self::InvalidTransition(v)
            | Self::AmountExceeded(v)
            | Self::MethodUnusable(v)
            | Self::OrderNotPayable(v)
            | Self::Expired(v)
            | Self::AppendOnly(v) => Some(v),
            Self::Database(e) => e.violation(),
        }
    }

    /// The SQLSTATE, if the server reported one.
    pub fn code(&self) -> Option<&tokio_postgres::error::SqlState> {
        self.violation().map(|v| &v.code)
    }

    /// For [`PaymentError::AmountExceeded`]: what was still available (the detail's
    /// `available`).
    pub fn available(&self) -> Option<Decimal> {
        match self {
            Self::AmountExceeded(v) => v
                .detail_json()
                .and_then(|d| d.get("available").map(ToString::to_string))
                .and_then(|s| s.parse().ok()),
            _ => None,
        }
    }
}

impl From<Error> for PaymentError {
    fn from(error: Error) -> Self {
        let variants = [
            (NOT_FOUND, Self::NotFound as fn(Box<Violation>) -> Self),
            (INVALID_TRANSITION, Self::InvalidTransition),
            (AMOUNT_EXCEEDED, Self::AmountExceeded),
            (METHOD_UNUSABLE, Self::MethodUnusable),
            (ORDER_NOT_PAYABLE, Self::OrderNotPayable),
            (EXPIRED, Self::Expired),
            (APPEND_ONLY, Self::AppendOnly),
        ];
        for (code, variant) in variants {
            if let Some(v) = error.raised(code) {
                return variant(Box::new(v.clone()));
            }
        }
        Self::Database(error)
    }
}

converts_from_driver_errors!(PaymentError);

impl From<PaymentError> for Error {
    fn from(error: PaymentError) -> Self {
        match error {
            PaymentError::NotFound(v)
            | PaymentError::InvalidTransition(v)
            | PaymentError::AmountExceeded(v)
            | PaymentError::MethodUnusable(v)
            | PaymentError::OrderNotPayable(v)
            | PaymentError::Expired(v)
            | PaymentError::AppendOnly(v) => Error::Database(v),
            PaymentError::Database(e) => e,
        }
    }
}

/// A payment method as the provider tokenised it. A card needs its brand, last four
/// digits and expiry; the token may not contain a card number (13 to 19 digits, in a
/// row or in a card's printed groups, that pass the Luhn check).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewPaymentMethod {
    /// Card, bank account or wallet.
    pub kind: MethodKind,
    /// The provider's reference, 8 to 255 characters.
    pub token: String,
    /// `visa`, `mastercard`, ... (lower case).
    pub brand: Option<String>,
    /// The last four digits.
    pub last_four: Option<String>,
    /// 1 to 12.
    pub exp_month: Option<i16>,
    /// Four digits.
    pub exp_year: Option<i16>,
}

impl NewPaymentMethod {
    /// A card.
    pub fn card(
        token: impl Into<String>,
        brand: impl Into<String>,
        last_four: impl Into<String>,
        exp_month: i16,
        exp_year: i16,
    ) -> Self {
        Self {
            kind: MethodKind::Card,
            token: token.into(),
            brand: Some(brand.into()),
            last_four: Some(last_four.into()),
            exp_month: Some(exp_month),
            exp_year: Some(exp_year),
        }
    }
}

/// Stores a payment method for the current user.
pub async fn add_payment_method<C: GenericClient>(
    client: &C,
    method: &NewPaymentMethod,
) -> Result<PaymentMethod, PaymentError> {
    Ok(payment_method_add()
        .params(
            client,
            &PaymentMethodAddParams {
                kind: method.kind,
                token: method.token.as_str(),
                brand: method.brand.as_deref(),
                last_four: method.last_four.as_deref(),
                exp_month: method.exp_month,
                exp_year: method.exp_year,
            },
        )
        .one()
        .await?)
}

/// Makes the method the current user's default (the previous default stops being it).
pub async fn set_default_payment_method<C: GenericClient>(
    client: &C,
    payment_method_id: Uuid,
) -> Result<(), PaymentError> {
    payment_method_set_default()
        .bind(client, &payment_method_id)
        .one()
        .await?;
    Ok(())
}

/// Authorizes the current user's pending order on one of the user's payment methods
/// (`payments.process_payment_authorization`); returns the payment's id.
pub async fn authorize<C: GenericClient>(
    client: &C,
    order_id: Uuid,
    payment_method_id: Uuid,
) -> Result<Uuid, PaymentError> {
    Ok(payment_authorize()
        .params(
            client,
            &PaymentAuthorizeParams {
                order_id,
                payment_method_id,
            },
        )
        .one()
        .await?)
}

/// Captures an authorized payment (`payments.capture_payment`): all of it (`None`) or
/// `amount`. The order becomes paid and its reservations are sold.
pub async fn capture<C: GenericClient>(
    client: &C,
    payment_id: Uuid,
    amount: Option<Decimal>,
) -> Result<(), PaymentError> {
    payment_capture()
        .params(client, &PaymentCaptureParams { amount, payment_id })
        .one()
        .await?;
    Ok(())
}

/// Marks a captured payment settled (`payments.settle_payment`).
pub async fn settle<C: GenericClient>(client: &C, payment_id: Uuid) -> Result<(), PaymentError> {
    payment_settle().bind(client, &payment_id).one().await?;
    Ok(())
}

/// Voids an authorized payment (`payments.void_payment`); its order stays pending.
pub async fn void<C: GenericClient>(client: &C, payment_id: Uuid) -> Result<(), PaymentError> {
    payment_void().bind(client, &payment_id).one().await?;
    Ok(())
}

/// A refund of part or all of a captured payment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefundRequest {
    /// The payment.
    pub payment_id: Uuid,
    /// Above 0, at most what is left to refund.
    pub amount: Decimal,
    /// Why, 1 to 500 characters.
    pub reason: String,
}

/// Refunds part or all of a captured payment (`payments.refund_payment`); returns the
/// refund's id. [`PaymentError::AmountExceeded`] above what is left to refund (see
/// [`PaymentError::available`]).
pub async fn refund<C: GenericClient>(
    client: &C,
    request: &RefundRequest,
) -> Result<Uuid, PaymentError> {
    Ok(refund_create()
        .params(
            client,
            &RefundCreateParams {
                payment_id: request.payment_id,
                amount: request.amount,
                reason: request.reason.as_str(),
            },
        )
        .one()
        .await?)
}

/// Expires authorizations past their time with their pending orders, giving their
/// stock back: the tenant's, or every tenant's on a connection in `groundwork_worker`
/// with no tenant set. At most 10,000 per call; returns how many.
pub async fn cleanup_expired_payments<C: GenericClient>(client: &C) -> Result<i32, PaymentError> {
    Ok(payment_cleanup_expired().bind(client).one().await?)
}

/// The payment, if it is the tenant's.
pub async fn payment<C: GenericClient>(
    client: &C,
    payment_id: Uuid,
) -> Result<Option<Payment>, PaymentError> {
    Ok(payment_get().bind(client, &payment_id).opt().await?)
}
