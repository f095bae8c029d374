//! `POST /checkout`, `GET /orders/{id}`, `POST /orders/{id}/cancel`.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use deadpool_postgres::Transaction;
use groundwork::sales::{self, Checkout};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Shop;
use crate::error::{ApiError, status_name};

/// The header that makes a retried checkout return the order the first one placed.
pub(crate) const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// `POST /checkout`'s body: the cart (`GET /cart`'s `cart_id`). A retry names the
/// same cart, which is checked out by then.
#[derive(Debug, Deserialize)]
pub(crate) struct CheckoutRequest {
    cart_id: Uuid,
}

/// An order with its items.
#[derive(Debug, Serialize)]
pub(crate) struct OrderView {
    order_id: Uuid,
    order_number: String,
    status: String,
    currency: String,
    subtotal: Decimal,
    total: Decimal,
    item_count: i32,
    idempotency_key: String,
    items: Vec<OrderLine>,
    expires_at: Option<chrono::DateTime<chrono::FixedOffset>>,
    paid_at: Option<chrono::DateTime<chrono::FixedOffset>>,
    cancelled_at: Option<chrono::DateTime<chrono::FixedOffset>>,
    created_at: chrono::DateTime<chrono::FixedOffset>,
}

/// One product of an order, at the price it was sold for.
#[derive(Debug, Serialize)]
pub(crate) struct OrderLine {
    product_id: Uuid,
    sku: String,
    name: String,
    quantity: i32,
    unit_price: Decimal,
    line_total: Decimal,
}

/// The order and its items, or 404.
async fn order_view(tx: &Transaction<'_>, order_id: Uuid) -> Result<OrderView, ApiError> {
    let order = sales::order(tx, order_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("order {order_id} not found")))?;
    let items = sales::order_items(tx, order_id).await?;
    Ok(OrderView {
        order_id: order.id,
        order_number: order.order_number,
        status: status_name(&order.status),
        currency: order.currency,
        subtotal: order.subtotal_amount,
        total: order.total_amount,
        item_count: order.item_count,
        idempotency_key: order.idempotency_key,
        items: items
            .into_iter()
            .map(|i| OrderLine {
                product_id: i.product_id,
                sku: i.sku,
                name: i.name,
                quantity: i.quantity,
                unit_price: i.unit_price,
                line_total: i.line_total,
            })
            .collect(),
        expires_at: order.expires_at,
        paid_at: order.paid_at,
        cancelled_at: order.cancelled_at,
        created_at: order.created_at,
    })
}

/// `POST /checkout`: `sales::checkout` under the `Idempotency-Key` header (required).
/// 201 with the order; a retry with the same key and cart gets 201 and the same order
/// (also when it races the first request), the same key for another cart 422 (WS008).
pub(crate) async fn checkout(
    State(shop): State<Shop>,
    headers: HeaderMap,
    body: Result<Json<CheckoutRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<OrderView>), ApiError> {
    let key = headers
        .get(IDEMPOTENCY_KEY)
        .ok_or_else(|| ApiError::missing("checkout needs an Idempotency-Key header"))?
        .to_str()
        .map_err(|_| ApiError::bad_input("the Idempotency-Key header is not visible ASCII"))?
        .to_owned();
    let Json(request) = body?;
    let mut caller = shop.caller(&headers).await?;
    caller.user()?;
    let tx = caller.begin().await?;
    let order_id = sales::checkout(&tx, &Checkout::new(request.cart_id, key)).await?;
    let view = order_view(&tx, order_id).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// `GET /orders/{id}`.
pub(crate) async fn show(
    State(shop): State<Shop>,
    headers: HeaderMap,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<Json<OrderView>, ApiError> {
    let Path(id) = id?;
    let mut caller = shop.caller(&headers).await?;
    caller.user()?;
    let tx = caller.begin().await?;
    let view = order_view(&tx, id).await?;
    tx.commit().await?;
    Ok(Json(view))
}

/// `POST /orders/{id}/cancel`: cancels a pending order and gives its stock back (an
/// order already cancelled or expired is left as it is); 409 once it is paid.
pub(crate) async fn cancel(
    State(shop): State<Shop>,
    headers: HeaderMap,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<Json<OrderView>, ApiError> {
    let Path(id) = id?;
    let mut caller = shop.caller(&headers).await?;
    caller.user()?;
    let tx = caller.begin().await?;
    sales::cancel_order(&tx, id).await?;
    let view = order_view(&tx, id).await?;
    tx.commit().await?;
    Ok(Json(view))
}
