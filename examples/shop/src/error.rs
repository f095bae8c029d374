//! Errors as HTTP responses: a status and `{"code": SQLSTATE, "message", "detail"?}`.
//!
//! Every failure is turned into [`groundwork::Error`] and then read as the most
//! specific module error that knows its SQLSTATE (sales, then payments, then
//! inventory), so each code has one status here:
//!
//! | status | when |
//! |---|---|
//! | 400 | bad input: a malformed value or header (class 22, 23502, 23514), over a limit (class 54) |
//! | 401 | no API key, or an unknown, revoked or expired one |
//! | 403 | permission denied (42501): a user who is not a member, no user or tenant |
//! | 404 | not found: WS001, WY001, WN001, or a product that is not the tenant's |
//! | 409 | a conflict with the current state: out of stock (WN002), a cart not open (WS002), an illegal status change (WS007, WY002), an order not payable (WY005), expired (WY006), a unique row (23505) |
//! | 422 | a business rule: empty cart, total out of range, too many units or pending orders, a reused idempotency key, an unsellable product, an amount above what is left, an unusable payment method |
//! | 503 | the database could not be reached, or a retryable conflict (40001, 40P01) |
//! | 500 | anything else |

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use groundwork::catalog::CatalogError;
use groundwork::identity::IdentityError;
use groundwork::inventory::InventoryError;
use groundwork::payments::PaymentError;
use groundwork::sales::SalesError;

/// A refused or failed request, as the client sees it.
#[derive(Debug, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The SQLSTATE (the server's, or the one the service chose for its own refusals).
    pub code: String,
    /// What went wrong.
    pub message: String,
    /// The server's detail, when it is JSON (for example what is left to refund).
    pub detail: Option<serde_json::Value>,
}

impl ApiError {
    fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
            detail: None,
        }
    }

    /// 401: no usable API key (28000, invalid authorization).
    pub(crate) fn unauthorized(message: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "28000", message)
    }

    /// 403: not allowed (42501).
    pub(crate) fn forbidden(message: &str) -> Self {
        Self::new(StatusCode::FORBIDDEN, "42501", message)
    }

    /// 400: a required value is missing (22004).
    pub(crate) fn missing(message: &str) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "22004", message)
    }

    /// 400: a value is malformed (22023).
    pub(crate) fn bad_input(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "22023", message)
    }

    /// 404 for a row the tenant does not have (P0002, no data found).
    pub(crate) fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "P0002", message)
    }

    fn from_violation(status: StatusCode, v: &groundwork::error::Violation) -> Self {
        Self {
            status,
            code: v.code.code().to_owned(),
            message: v.message.clone(),
            detail: v.detail_json().map(serde_json::Value::Object),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({ "code": self.code, "message": self.message });
        if let Some(detail) = self.detail {
            body["detail"] = detail;
        }
        (self.status, Json(body)).into_response()
    }
}

impl From<groundwork::Error> for ApiError {
    fn from(error: groundwork::Error) -> Self {
        use StatusCode as S;
        let sales = match SalesError::from(error) {
            SalesError::NotFound(v) => return Self::from_violation(S::NOT_FOUND, &v),
            SalesError::CartNotOpen(v) | SalesError::InvalidTransition(v) => {
                return Self::from_violation(S::CONFLICT, &v);
            }
            SalesError::OutOfStock(v) => return Self::from_violation(S::CONFLICT, &v),
            SalesError::EmptyCart(v)
            | SalesError::TotalOutOfRange(v)
            | SalesError::TooManyUnits(v)
            | SalesError::TooManyPendingOrders(v)
            | SalesError::IdempotencyKeyReused(v)
            | SalesError::ProductUnavailable(v) => {
                return Self::from_violation(S::UNPROCESSABLE_ENTITY, &v);
            }
            SalesError::Database(e) => e,
            other => return Self::from(groundwork::Error::from(other)),
        };
        let payments = match PaymentError::from(sales) {
            PaymentError::NotFound(v) => return Self::from_violation(S::NOT_FOUND, &v),
            PaymentError::InvalidTransition(v)
            | PaymentError::OrderNotPayable(v)
            | PaymentError::Expired(v)
            | PaymentError::AppendOnly(v) => return Self::from_violation(S::CONFLICT, &v),
            PaymentError::AmountExceeded(v) | PaymentError::MethodUnusable(v) => {
                return Self::from_violation(S::UNPROCESSABLE_ENTITY, &v);
            }
            PaymentError::Database(e) => e,
            other => return Self::from(groundwork::Error::from(other)),
        };
        let error = match InventoryError::from(payments) {
            InventoryError::NotFound(v) => return Self::from_violation(S::NOT_FOUND, &v),
            InventoryError::OutOfStock(v) | InventoryError::NotActive(v) => {
                return Self::from_violation(S::CONFLICT, &v);
            }
            InventoryError::ReservationLimit(v) => {
                return Self::from_violation(S::UNPROCESSABLE_ENTITY, &v);
            }
            InventoryError::Database(e) => e,
            other => return Self::from(groundwork::Error::from(other)),
        };
        match &error {
            groundwork::Error::Conflict(v) => Self::from_violation(S::CONFLICT, v),
            groundwork::Error::Invalid(v)
            | groundwork::Error::MissingValue(v)
            | groundwork::Error::LimitExceeded(v) => Self::from_violation(S::BAD_REQUEST, v),
            groundwork::Error::MissingReference(v) => {
                Self::from_violation(S::UNPROCESSABLE_ENTITY, v)
            }
            groundwork::Error::PermissionDenied(v) => Self::from_violation(S::FORBIDDEN, v),
            groundwork::Error::Retryable(v) => Self::from_violation(S::SERVICE_UNAVAILABLE, v),
            groundwork::Error::Database(v) => Self::from_violation(S::INTERNAL_SERVER_ERROR, v),
            groundwork::Error::Connection(_) | groundwork::Error::Pool(_) => {
                Self::new(S::SERVICE_UNAVAILABLE, "08006", error.to_string())
            }
            _ => Self::new(S::INTERNAL_SERVER_ERROR, "XX000", error.to_string()),
        }
    }
}

macro_rules! through_engine_error {
    ($($error:ty),*) => {$(
        impl From<$error> for ApiError {
            fn from(error: $error) -> Self {
                groundwork::Error::from(error).into()
            }
        }
    )*};
}

through_engine_error!(
    SalesError,
    PaymentError,
    InventoryError,
    tokio_postgres::Error
);

impl From<CatalogError> for ApiError {
    fn from(error: CatalogError) -> Self {
        match error {
            CatalogError::Decode(e) => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "XX000",
                format!("decoding product details: {e}"),
            ),
            other => groundwork::Error::from(other).into(),
        }
    }
}

impl From<IdentityError> for ApiError {
    fn from(error: IdentityError) -> Self {
        match error {
            IdentityError::Database(e) => e.into(),
            other => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "XX000",
                other.to_string(),
            ),
        }
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::JsonRejection) -> Self {
        Self::bad_input(rejection.body_text())
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::QueryRejection) -> Self {
        Self::bad_input(rejection.body_text())
    }
}

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(rejection: axum::extract::rejection::PathRejection) -> Self {
        Self::bad_input(rejection.body_text())
    }
}

/// A generated status enum as JSON: `PartiallyRefunded` -> `"partially_refunded"`,
/// as PostgreSQL spells it.
pub(crate) fn status_name<T: serde::Serialize>(status: &T) -> String {
    let name = serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    let mut snake = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                snake.push('_');
            }
            snake.push(c.to_ascii_lowercase());
        } else {
            snake.push(c);
        }
    }
    snake
}
