//! Carts, orders and a checkout that is one transaction (the `sales` schema, seed 002,
//! docs/REQUIREMENTS.md). A user keeps one open cart (30 days after its last change);
//! [`checkout`] turns it into a pending order in the caller's transaction: the rules,
//! one inventory reservation per item (all or nothing), the order and its items, an
//! outbox message (`sales.order_placed`) and the cart closed. The same idempotency key
//! returns the same order, also when two calls race. A pending order expires 30
//! minutes after checkout and gives its stock back ([`cleanup_expired_orders`]); paying
//! for it is [`crate::payments`].
//!
//! | rule | SQLSTATE | error |
//! |---|---|---|
//! | the cart or order is the tenant's and the current user's | WS001 | [`SalesError::NotFound`] |
//! | only an open, unexpired cart is checked out | WS002 | [`SalesError::CartNotOpen`] |
//! | a cart with no items is not | WS003 | [`SalesError::EmptyCart`] |
//! | an order's total is 10.00 to 10,000.00 inclusive | WS004 | [`SalesError::TotalOutOfRange`] |
//! | at most 50 units per order | WS005 | [`SalesError::TooManyUnits`] |
//! | at most 5 pending orders per user | WS006 | [`SalesError::TooManyPendingOrders`] |
//! | status changes only pending -> paid, cancelled, expired; paid -> shipped, refunded; shipped -> delivered, refunded; delivered -> refunded | WS007 | [`SalesError::InvalidTransition`] |
//! | an idempotency key belongs to one cart | WS008 | [`SalesError::IdempotencyKeyReused`] |
//! | every product of the cart is active and priced in the cart's currency | WS009 | [`SalesError::ProductUnavailable`] |
//! | every item has the units it needs | WN002 | [`SalesError::OutOfStock`] |
//! | a tenant and an active user are set | 42501 | [`Error::PermissionDenied`] in [`SalesError::Database`] |
//!
//! Nothing is written when any of them is raised.
//!
//! ```no_run
//! # async fn example(pool: deadpool_postgres::Pool, tenant: groundwork::tenant::Tenant, product: uuid::Uuid) -> Result<(), groundwork::sales::SalesError> {
//! use groundwork::sales::{self, Checkout, SalesError};
//! use groundwork::tenant::with_tenant;
//!
//! let mut client = pool.get().await?;
//! let placed = with_tenant(&mut client, tenant, async |tx| {
//!     let cart = sales::open_cart(tx, "USD").await?;
//!     sales::add_to_cart(tx, cart.id, product, 2).await?;
//!     Ok(sales::checkout(tx, &Checkout::new(cart.id, "request-7f3a")).await?)
//! })
//! .await
//! .map_err(SalesError::from);
//! match placed {
//!     Ok(order) => println!("order {order}"),
//!     Err(SalesError::OutOfStock(_)) => println!("sold out"),
//!     Err(e) => return Err(e),
//! }
//! # Ok(())
//! # }
//! ```

use uuid::Uuid;

use crate::Error;
use crate::client::async_::{GenericClient, Params};
use crate::error::{Violation, converts_from_driver_errors};
use crate::queries::sales::cart_items::{
    CartItem, CartItemAddParams, CartLine, cart_item_add, cart_item_list,
};
use crate::queries::sales::carts::{Cart, cart_cleanup_expired, cart_get_open, cart_open};
use crate::queries::sales::order_items::{OrderItem, order_item_list};
use crate::queries::sales::orders::{
    Order, OrderCheckoutParams, order_cancel, order_checkout, order_cleanup_expired, order_get,
};

/// SQLSTATE raised for a cart or order that is not the tenant's or the current user's.
pub const NOT_FOUND: &str = "WS001";
/// SQLSTATE raised when a cart that was checked out or has expired is checked out.
pub const CART_NOT_OPEN: &str = "WS002";
/// SQLSTATE raised when a cart with no items is checked out.
pub const EMPTY_CART: &str = "WS003";
/// SQLSTATE raised for an order total below 10.00 or above 10,000.00; the detail is
/// `{"total", "min", "max"}`.
pub const TOTAL_OUT_OF_RANGE: &str = "WS004";
/// SQLSTATE raised for an order of more than 50 units; the detail is
/// `{"units", "limit"}`.
pub const TOO_MANY_UNITS: &str = "WS005";
/// SQLSTATE raised at a user's sixth pending order; the detail is `{"limit"}`.
pub const TOO_MANY_PENDING_ORDERS: &str = "WS006";
/// SQLSTATE raised for an order status change that is not allowed.
pub const INVALID_TRANSITION: &str = "WS007";
/// SQLSTATE raised when an idempotency key is used again for another cart or user.
pub const IDEMPOTENCY_KEY_REUSED: &str = "WS008";
/// SQLSTATE raised when a product of the cart is inactive, gone or priced in another
/// currency than the cart.
pub const PRODUCT_UNAVAILABLE: &str = "WS009";

/// Why a sales operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SalesError {
    /// The cart or order is not the tenant's or the current user's (WS001).
    #[error("not found: {0}")]
    NotFound(Box<Violation>),
    /// The cart was checked out or has expired (WS002).
    #[error("cart not open: {0}")]
    CartNotOpen(Box<Violation>),
    /// The cart has no items (WS003).
    #[error("empty cart: {0}")]
    EmptyCart(Box<Violation>),
    /// The order's total is outside 10.00 to 10,000.00 (WS004).
    #[error("total out of range: {0}")]
    TotalOutOfRange(Box<Violation>),
    /// The order holds more than 50 units (WS005).
    #[error("too many units: {0}")]
    TooManyUnits(Box<Violation>),
    /// The user has 5 pending orders already (WS006).
    #[error("too many pending orders: {0}")]
    TooManyPendingOrders(Box<Violation>),
    /// The order's status change is not allowed (WS007).
    #[error("invalid transition: {0}")]
    InvalidTransition(Box<Violation>),
    /// The idempotency key was used for another cart or user (WS008).
    #[error("idempotency key reused: {0}")]
    IdempotencyKeyReused(Box<Violation>),
    /// A product of the cart cannot be sold (WS009).
    #[error("product unavailable: {0}")]
    ProductUnavailable(Box<Violation>),
    /// An item has fewer units available than the cart holds (inventory's WN002).
    #[error("out of stock: {0}")]
    OutOfStock(Box<Violation>),
    /// Anything else.
    #[error(transparent)]
    Database(Error),
}

impl SalesError {
    /// The server's report, if there is one.
    pub fn violation(&self) -> Option<&Violation> {
        match self {
            Self::NotFound(v)
            | Self::CartNotOpen(v)
            | Self::EmptyCart(v)
            | Self::TotalOutOfRange(v)
            | Self::TooManyUnits(v)
            | Self::TooManyPendingOrders(v)
            | Self::InvalidTransition(v)
            | Self::IdempotencyKeyReused(v)
            | Self::ProductUnavailable(v)
            | Self::OutOfStock(v) => Some(v),
            Self::Database(e) => e.violation(),
        }
    }

    /// The SQLSTATE, if the server reported one.
    pub fn code(&self) -> Option<&tokio_postgres::error::SqlState> {
        self.violation().map(|v| &v.code)
    }
}

impl From<Error> for SalesError {
    fn from(error: Error) -> Self {
        let variants = [
            (NOT_FOUND, Self::NotFound as fn(Box<Violation>) -> Self),
            (CART_NOT_OPEN, Self::CartNotOpen),
            (EMPTY_CART, Self::EmptyCart),
            (TOTAL_OUT_OF_RANGE, Self::TotalOutOfRange),
            (TOO_MANY_UNITS, Self::TooManyUnits),
            (TOO_MANY_PENDING_ORDERS, Self::TooManyPendingOrders),
            (INVALID_TRANSITION, Self::InvalidTransition),
            (IDEMPOTENCY_KEY_REUSED, Self::IdempotencyKeyReused),
            (PRODUCT_UNAVAILABLE, Self::ProductUnavailable),
            (crate::inventory::OUT_OF_STOCK, Self::OutOfStock),
        ];
        for (code, variant) in variants {
            if let Some(v) = error.raised(code) {
                return variant(Box::new(v.clone()));
            }
        }
        Self::Database(error)
    }
}

converts_from_driver_errors!(SalesError);

impl From<SalesError> for Error {
    fn from(error: SalesError) -> Self {
        match error {
            SalesError::NotFound(v)
            | SalesError::CartNotOpen(v)
            | SalesError::EmptyCart(v)
            | SalesError::TotalOutOfRange(v)
            | SalesError::TooManyUnits(v)
            | SalesError::TooManyPendingOrders(v)
            | SalesError::InvalidTransition(v)
            | SalesError::IdempotencyKeyReused(v)
            | SalesError::ProductUnavailable(v)
            | SalesError::OutOfStock(v) => Error::Database(v),
            SalesError::Database(e) => e,
        }
    }
}

/// Opens a cart for the current user, in `currency` (three capital letters). A user
/// has one open cart: a second is refused (23505, `carts_open_key`).
pub async fn open_cart<C: GenericClient>(client: &C, currency: &str) -> Result<Cart, SalesError> {
    Ok(cart_open().bind(client, &currency).one().await?)
}

/// The current user's open cart, if there is one.
pub async fn open_cart_of_user<C: GenericClient>(client: &C) -> Result<Option<Cart>, SalesError> {
    Ok(cart_get_open().bind(client).opt().await?)
}

/// Adds `quantity` units of a product to the cart (to what is there); the cart lives
/// 30 more days.
pub async fn add_to_cart<C: GenericClient>(
    client: &C,
    cart_id: Uuid,
    product_id: Uuid,
    quantity: i32,
) -> Result<CartItem, SalesError> {
    Ok(cart_item_add()
        .params(
            client,
            &CartItemAddParams {
                cart_id,
                product_id,
                quantity,
            },
        )
        .one()
        .await?)
}

/// The cart's lines at the catalog's current prices.
pub async fn cart_lines<C: GenericClient>(
    client: &C,
    cart_id: Uuid,
) -> Result<Vec<CartLine>, SalesError> {
    Ok(cart_item_list().bind(client, &cart_id).all().await?)
}

/// A checkout: the cart, and the key that makes a retried request return the same
/// order (1 to 255 characters, unique per tenant; an `Idempotency-Key` header).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkout {
    /// The current user's open cart.
    pub cart_id: Uuid,
    /// The request's idempotency key.
    pub idempotency_key: String,
}

impl Checkout {
    /// A checkout of `cart_id` under `idempotency_key`.
    pub fn new(cart_id: Uuid, idempotency_key: impl Into<String>) -> Self {
        Self {
            cart_id,
            idempotency_key: idempotency_key.into(),
        }
    }
}

/// Places the order for the cart (`sales.checkout`) in the caller's transaction and
/// returns its id; see the module's table for the refusals. Stock rows of the cart's
/// products stay locked until the transaction ends: commit soon.
pub async fn checkout<C: GenericClient>(
    client: &C,
    checkout: &Checkout,
) -> Result<Uuid, SalesError> {
    Ok(order_checkout()
        .params(
            client,
            &OrderCheckoutParams {
                cart_id: checkout.cart_id,
                idempotency_key: checkout.idempotency_key.as_str(),
            },
        )
        .one()
        .await?)
}

/// Cancels a pending order (the current user's own) and gives its stock back; an
/// authorized payment of it is voided. `true` when it was cancelled now, `false` when
/// it was cancelled or had expired already; [`SalesError::InvalidTransition`] once it
/// is paid.
pub async fn cancel_order<C: GenericClient>(
    client: &C,
    order_id: Uuid,
) -> Result<bool, SalesError> {
    Ok(order_cancel().bind(client, &order_id).one().await?)
}

/// Expires pending orders past their time and gives their stock back: the tenant's,
/// or every tenant's on a connection in `groundwork_worker` with no tenant set. At most
/// 10,000 per call; returns how many.
pub async fn cleanup_expired_orders<C: GenericClient>(client: &C) -> Result<i32, SalesError> {
    Ok(order_cleanup_expired().bind(client).one().await?)
}

/// Marks open carts past their time expired (the tenant's, or every tenant's for
/// `groundwork_worker`); at most 10,000 per call, returns how many.
pub async fn cleanup_expired_carts<C: GenericClient>(client: &C) -> Result<i32, SalesError> {
    Ok(cart_cleanup_expired().bind(client).one().await?)
}

/// The order, if it is the tenant's.
pub async fn order<C: GenericClient>(
    client: &C,
    order_id: Uuid,
) -> Result<Option<Order>, SalesError> {
    Ok(order_get().bind(client, &order_id).opt().await?)
}

/// The order's items, by product.
pub async fn order_items<C: GenericClient>(
    client: &C,
    order_id: Uuid,
) -> Result<Vec<OrderItem>, SalesError> {
    Ok(order_item_list().bind(client, &order_id).all().await?)
}
