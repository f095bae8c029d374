//! `GET /cart`, `POST /cart/items`, `DELETE /cart/items/{product_id}`: the user's open
//! cart, which lives in PostgreSQL so that checkout is one transaction.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use deadpool_postgres::Transaction;
use groundwork::catalog;
use groundwork::queries::sales::cart_items::cart_item_remove;
use groundwork::sales;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Shop;
use crate::error::{ApiError, status_name};

/// `POST /cart/items`'s body.
#[derive(Debug, Deserialize)]
pub(crate) struct AddItem {
    product_id: Uuid,
    quantity: i32,
}

/// A cart and its lines at the catalog's current prices.
#[derive(Debug, Serialize)]
pub(crate) struct CartView {
    cart_id: Uuid,
    status: String,
    currency: String,
    items: Vec<CartLine>,
    total: Decimal,
    expires_at: chrono::DateTime<chrono::FixedOffset>,
}

/// One product in the cart.
#[derive(Debug, Serialize)]
pub(crate) struct CartLine {
    product_id: Uuid,
    sku: String,
    name: String,
    quantity: i32,
    unit_price: Decimal,
    line_total: Decimal,
}

/// The user's open cart with its lines, if there is one.
async fn open_cart(tx: &Transaction<'_>) -> Result<Option<CartView>, ApiError> {
    let Some(cart) = sales::open_cart_of_user(tx).await? else {
        return Ok(None);
    };
    let lines = sales::cart_lines(tx, cart.id).await?;
    let total = lines.iter().map(|l| l.line_total).sum();
    Ok(Some(CartView {
        cart_id: cart.id,
        status: status_name(&cart.status),
        currency: cart.currency,
        items: lines
            .into_iter()
            .map(|l| CartLine {
                product_id: l.product_id,
                sku: l.sku,
                name: l.name,
                quantity: l.quantity,
                unit_price: l.unit_price,
                line_total: l.line_total,
            })
            .collect(),
        total,
        expires_at: cart.expires_at,
    }))
}

fn no_cart() -> ApiError {
    ApiError::not_found("the user has no open cart")
}

/// `GET /cart`.
pub(crate) async fn show(
    State(shop): State<Shop>,
    headers: HeaderMap,
) -> Result<Json<CartView>, ApiError> {
    let mut caller = shop.caller(&headers).await?;
    caller.user()?;
    let tx = caller.begin().await?;
    let cart = open_cart(&tx).await?.ok_or_else(no_cart)?;
    tx.commit().await?;
    Ok(Json(cart))
}

/// `POST /cart/items`: adds units to the user's open cart, opening one in the
/// product's currency when there is none.
pub(crate) async fn add_item(
    State(shop): State<Shop>,
    headers: HeaderMap,
    body: Result<Json<AddItem>, JsonRejection>,
) -> Result<Json<CartView>, ApiError> {
    let Json(item) = body?;
    let mut caller = shop.caller(&headers).await?;
    caller.user()?;
    let tx = caller.begin().await?;
    let cart = match sales::open_cart_of_user(&tx).await? {
        Some(cart) => cart,
        None => {
            let product = catalog::get_product_details(&tx, item.product_id)
                .await?
                .ok_or_else(|| {
                    ApiError::not_found(format!("product {} not found", item.product_id))
                })?;
            sales::open_cart(&tx, &product.currency).await?
        }
    };
    sales::add_to_cart(&tx, cart.id, item.product_id, item.quantity).await?;
    let view = open_cart(&tx).await?.ok_or_else(no_cart)?;
    tx.commit().await?;
    Ok(Json(view))
}

/// `DELETE /cart/items/{product_id}`.
pub(crate) async fn remove_item(
    State(shop): State<Shop>,
    headers: HeaderMap,
    product_id: Result<Path<Uuid>, PathRejection>,
) -> Result<Json<CartView>, ApiError> {
    let Path(product_id) = product_id?;
    let mut caller = shop.caller(&headers).await?;
    caller.user()?;
    let tx = caller.begin().await?;
    let cart = sales::open_cart_of_user(&tx).await?.ok_or_else(no_cart)?;
    let removed = cart_item_remove().bind(&tx, &cart.id, &product_id).await?;
    if removed == 0 {
        return Err(ApiError::not_found(format!(
            "product {product_id} is not in the cart"
        )));
    }
    let view = open_cart(&tx).await?.ok_or_else(no_cart)?;
    tx.commit().await?;
    Ok(Json(view))
}
