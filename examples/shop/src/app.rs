//! The service's state, its routes and the HTTP server.

use axum::Router;
use axum::routing::{delete, get, post};

use crate::{cart, catalog, orders, payments};

/// What every request needs: the pool of the application role's connections.
#[derive(Clone)]
pub struct Shop {
    pub(crate) pool: deadpool_postgres::Pool,
}

impl Shop {
    /// A shop whose requests run on connections from `pool`, which must connect as a
    /// login role in `groundwork_app` (never the owner or a superuser, which row-level
    /// security does not hold to a tenant).
    pub fn new(pool: deadpool_postgres::Pool) -> Self {
        Self { pool }
    }
}

/// The API's routes (JSON in and out):
///
/// | route | what |
/// |---|---|
/// | `GET /products?q=&min_price=&max_price=&in_stock=&page_size=` | catalog search, best match first |
/// | `GET /products/{id}` | one product with its category path, images, rating and stock |
/// | `GET /cart` | the user's open cart |
/// | `POST /cart/items` `{product_id, quantity}` | adds units (opens a cart in the product's currency) |
/// | `DELETE /cart/items/{product_id}` | removes a product from the cart |
/// | `POST /checkout` `{cart_id}` + `Idempotency-Key` | places the order: 201, the same order for a retry |
/// | `GET /orders/{id}` | an order with its items |
/// | `POST /orders/{id}/cancel` | cancels a pending order, giving its stock back |
/// | `POST /payment-methods` `{token, brand, last_four, exp_month, exp_year}` | stores a tokenised card |
/// | `POST /orders/{id}/payments` `{payment_method_id}` | authorizes the order's total |
/// | `POST /payments/{id}/capture` `{amount?}` | captures all or part of it: the order is paid |
/// | `POST /payments/{id}/refunds` `{amount, reason}` | refunds part or all of what was captured |
pub fn router(shop: Shop) -> Router {
    Router::new()
        .route("/products", get(catalog::search))
        .route("/products/{id}", get(catalog::product))
        .route("/cart", get(cart::show))
        .route("/cart/items", post(cart::add_item))
        .route("/cart/items/{product_id}", delete(cart::remove_item))
        .route("/checkout", post(orders::checkout))
        .route("/orders/{id}", get(orders::show))
        .route("/orders/{id}/cancel", post(orders::cancel))
        .route("/orders/{id}/payments", post(payments::authorize))
        .route("/payment-methods", post(payments::add_method))
        .route("/payments/{id}/capture", post(payments::capture))
        .route("/payments/{id}/refunds", post(payments::refund))
        .with_state(shop)
}

/// Serves [`router`] on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, shop: Shop) -> std::io::Result<()> {
    axum::serve(listener, router(shop)).await
}
