//! `POST /payment-methods`, `POST /orders/{id}/payments`, `POST /payments/{id}/capture`,
//! `POST /payments/{id}/refunds`: the mock provider authorizes at once.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use deadpool_postgres::Transaction;
use groundwork::payments::{self, NewPaymentMethod, RefundRequest};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Shop;
use crate::error::{ApiError, status_name};

/// `POST /payment-methods`'s body: a card as the provider tokenised it.
#[derive(Debug, Deserialize)]
pub(crate) struct NewCard {
    token: String,
    brand: String,
    last_four: String,
    exp_month: i16,
    exp_year: i16,
}

/// A stored payment method (never a card number).
#[derive(Debug, Serialize)]
pub(crate) struct MethodView {
    payment_method_id: Uuid,
    brand: Option<String>,
    last_four: Option<String>,
    exp_month: Option<i16>,
    exp_year: Option<i16>,
    is_default: bool,
}

/// `POST /orders/{id}/payments`'s body.
#[derive(Debug, Deserialize)]
pub(crate) struct AuthorizeRequest {
    payment_method_id: Uuid,
}

/// `POST /payments/{id}/capture`'s body, which may be left out.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct CaptureRequest {
    /// Part of the authorized amount; all of it when absent.
    amount: Option<Decimal>,
}

/// `POST /payments/{id}/refunds`'s body.
#[derive(Debug, Deserialize)]
pub(crate) struct NewRefund {
    amount: Decimal,
    reason: String,
}

/// A payment.
#[derive(Debug, Serialize)]
pub(crate) struct PaymentView {
    payment_id: Uuid,
    order_id: Uuid,
    status: String,
    currency: String,
    amount: Decimal,
    captured_amount: Option<Decimal>,
    refunded_amount: Decimal,
    authorized_at: chrono::DateTime<chrono::FixedOffset>,
    captured_at: Option<chrono::DateTime<chrono::FixedOffset>>,
}

/// A refund and the payment after it.
#[derive(Debug, Serialize)]
pub(crate) struct RefundView {
    refund_id: Uuid,
    payment: PaymentView,
}

async fn payment_view(tx: &Transaction<'_>, payment_id: Uuid) -> Result<PaymentView, ApiError> {
    let p = payments::payment(tx, payment_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("payment {payment_id} not found")))?;
    Ok(PaymentView {
        payment_id: p.id,
        order_id: p.order_id,
        status: status_name(&p.status),
        currency: p.currency,
        amount: p.amount,
        captured_amount: p.captured_amount,
        refunded_amount: p.refunded_amount,
        authorized_at: p.authorized_at,
        captured_at: p.captured_at,
    })
}

/// `POST /payment-methods`: 201 with the stored method.
pub(crate) async fn add_method(
    State(shop): State<Shop>,
    headers: HeaderMap,
    body: Result<Json<NewCard>, JsonRejection>,
) -> Result<(StatusCode, Json<MethodView>), ApiError> {
    let Json(card) = body?;
    let mut caller = shop.caller(&headers).await?;
    caller.user()?;
    let tx = caller.begin().await?;
    let method = payments::add_payment_method(
        &tx,
        &NewPaymentMethod::card(
            card.token,
            card.brand,
            card.last_four,
            card.exp_month,
            card.exp_year,
        ),
    )
    .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(MethodView {
            payment_method_id: method.id,
            brand: method.brand,
            last_four: method.last_four,
            exp_month: method.exp_month,
            exp_year: method.exp_year,
            is_default: method.is_default,
        }),
    ))
}

/// `POST /orders/{id}/payments`: authorizes the order's total; 201 with the payment.
pub(crate) async fn authorize(
    State(shop): State<Shop>,
    headers: HeaderMap,
    order_id: Result<Path<Uuid>, PathRejection>,
    body: Result<Json<AuthorizeRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<PaymentView>), ApiError> {
    let Path(order_id) = order_id?;
    let Json(request) = body?;
    let mut caller = shop.caller(&headers).await?;
    caller.user()?;
    let tx = caller.begin().await?;
    let payment_id = payments::authorize(&tx, order_id, request.payment_method_id).await?;
    let view = payment_view(&tx, payment_id).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// `POST /payments/{id}/capture`: the order becomes paid and its stock is sold.
pub(crate) async fn capture(
    State(shop): State<Shop>,
    headers: HeaderMap,
    payment_id: Result<Path<Uuid>, PathRejection>,
    body: Bytes,
) -> Result<Json<PaymentView>, ApiError> {
    let Path(payment_id) = payment_id?;
    let request: CaptureRequest = if body.iter().all(u8::is_ascii_whitespace) {
        CaptureRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_input(e.to_string()))?
    };
    let mut caller = shop.caller(&headers).await?;
    caller.user()?;
    let tx = caller.begin().await?;
    payments::capture(&tx, payment_id, request.amount).await?;
    let view = payment_view(&tx, payment_id).await?;
    tx.commit().await?;
    Ok(Json(view))
}

/// `POST /payments/{id}/refunds`: 201 with the refund; 422 (WY003) above what is left,
/// with `detail.available`.
pub(crate) async fn refund(
    State(shop): State<Shop>,
    headers: HeaderMap,
    payment_id: Result<Path<Uuid>, PathRejection>,
    body: Result<Json<NewRefund>, JsonRejection>,
) -> Result<(StatusCode, Json<RefundView>), ApiError> {
    let Path(payment_id) = payment_id?;
    let Json(refund) = body?;
    let mut caller = shop.caller(&headers).await?;
    caller.user()?;
    let tx = caller.begin().await?;
    let refund_id = payments::refund(
        &tx,
        &RefundRequest {
            payment_id,
            amount: refund.amount,
            reason: refund.reason,
        },
    )
    .await?;
    let payment = payment_view(&tx, payment_id).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(RefundView { refund_id, payment })))
}
