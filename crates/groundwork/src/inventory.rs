//! Inventory that never oversells (the `inventory` schema, docs/REQUIREMENTS.md): one
//! stock row per product, reservations that expire after 5 minutes, the ledger of
//! movements that explains `on_hand`, and low-stock alerts. Stock moves only through
//! the schema's functions, which any language can call; this module calls them with
//! typed errors. The generated queries (`groundwork::queries::inventory::*`) convert
//! into [`InventoryError`] too.
//!
//! | rule | SQLSTATE | error |
//! |---|---|---|
//! | the product (or reservation) exists in the tenant; a user releases and fulfils only their own reservations | WN001 | [`InventoryError::NotFound`] |
//! | available = on_hand - reserved never goes below 0: a reservation or a negative adjustment needs the units | WN002 | [`InventoryError::OutOfStock`] |
//! | at most 5 active reservations per user and product | WN003 | [`InventoryError::ReservationLimit`] |
//! | only an active reservation is released or fulfilled, and only an unexpired one fulfilled | WN004 | [`InventoryError::NotActive`] |
//! | a quantity is 1 to 1,000,000 | 22023, 54000 | [`Error::Invalid`], [`Error::LimitExceeded`] in [`InventoryError::Database`] |
//! | a tenant is set (and a user, to reserve) | 42501 | [`Error::PermissionDenied`] in [`InventoryError::Database`] |
//!
//! Nothing is written when any of them is raised. Work in a transaction acting for the
//! tenant and user ([`crate::tenant::with_tenant`]); reserving is one conditional update
//! of the product's stock row, so keep the transaction short: the row stays locked
//! for that product's other reservations until it commits.
//!
//! ```no_run
//! # async fn example(pool: deadpool_postgres::Pool, tenant: groundwork::tenant::Tenant, product: uuid::Uuid) -> Result<(), groundwork::inventory::InventoryError> {
//! use groundwork::inventory::{InventoryError, reserve};
//! use groundwork::tenant::with_tenant;
//!
//! let mut client = pool.get().await?;
//! match with_tenant(&mut client, tenant, async |tx| Ok(reserve(tx, product, 2).await?))
//!     .await
//!     .map_err(InventoryError::from)
//! {
//!     Ok(reservation) => println!("reserved: {reservation}"),
//!     Err(InventoryError::OutOfStock(_)) => println!("sold out"),
//!     Err(e) => return Err(e),
//! }
//! # Ok(())
//! # }
//! ```

use rust_decimal::Decimal;
use uuid::Uuid;

use crate::Error;
use crate::client::async_::{GenericClient, Params};
use crate::error::{Violation, converts_from_driver_errors};
use crate::queries::inventory::reservations::{
    reservation_cleanup_expired, reservation_create, reservation_fulfill, reservation_release,
};
use crate::queries::inventory::stock_levels::{
    StockAdjustParams, StockLevel, StockLevelSetReorderParams, StockReceiveParams, stock_adjust,
    stock_level_set_reorder, stock_receive,
};

/// SQLSTATE raised for a product or reservation that is not the tenant's (or another
/// user's reservation).
pub const NOT_FOUND: &str = "WN001";
/// SQLSTATE raised when fewer units are available than a reservation or adjustment
/// needs.
pub const OUT_OF_STOCK: &str = "WN002";
/// SQLSTATE raised at a user's sixth active reservation of one product.
pub const RESERVATION_LIMIT: &str = "WN003";
/// SQLSTATE raised when a reservation that is no longer active (or has expired) is
/// released or fulfilled.
pub const NOT_ACTIVE: &str = "WN004";

/// Why an inventory operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InventoryError {
    /// The product or reservation is not the tenant's, or the reservation is another
    /// user's (WN001).
    #[error("not found: {0}")]
    NotFound(Box<Violation>),
    /// Not enough units are available (WN002).
    #[error("out of stock: {0}")]
    OutOfStock(Box<Violation>),
    /// The user has 5 active reservations of the product already (WN003).
    #[error("reservation limit: {0}")]
    ReservationLimit(Box<Violation>),
    /// The reservation was fulfilled, released or has expired (WN004).
    #[error("reservation not active: {0}")]
    NotActive(Box<Violation>),
    /// Anything else.
    #[error(transparent)]
    Database(Error),
}

impl InventoryError {
    /// The server's report, if there is one.
    pub fn violation(&self) -> Option<&Violation> {
        match self {
            Self::NotFound(v)
            | Self::OutOfStock(v)
            | Self::ReservationLimit(v)
            | Self::NotActive(v) => Some(v),
            Self::Database(e) => e.violation(),
        }
    }

    /// The SQLSTATE, if the server reported one.
    pub fn code(&self) -> Option<&tokio_postgres::error::SqlState> {
        self.violation().map(|v| &v.code)
    }

    /// The name of the constraint that rejected the row, if any.
    pub fn constraint(&self) -> Option<&str> {
        self.violation().and_then(|v| v.constraint.as_deref())
    }
}

impl From<Error> for InventoryError {
    fn from(error: Error) -> Self {
        let boxed = |v: &Violation| Box::new(v.clone());
        if let Some(v) = error.raised(NOT_FOUND) {
            Self::NotFound(boxed(v))
        } else if let Some(v) = error.raised(OUT_OF_STOCK) {
            Self::OutOfStock(boxed(v))
        } else if let Some(v) = error.raised(RESERVATION_LIMIT) {
            Self::ReservationLimit(boxed(v))
        } else if let Some(v) = error.raised(NOT_ACTIVE) {
            Self::NotActive(boxed(v))
        } else {
            Self::Database(error)
        }
    }
}

converts_from_driver_errors!(InventoryError);

impl From<InventoryError> for Error {
    fn from(error: InventoryError) -> Self {
        match error {
            InventoryError::NotFound(v)
            | InventoryError::OutOfStock(v)
            | InventoryError::ReservationLimit(v)
            | InventoryError::NotActive(v) => Error::Database(v),
            InventoryError::Database(e) => e,
        }
    }
}

/// Receives `quantity` units of the product (`inventory.receive_stock`): creates its
/// stock row when it has none and writes the receipt to the ledger. Returns on_hand
/// after it.
pub async fn receive_stock<C: GenericClient>(
    client: &C,
    product_id: Uuid,
    quantity: i32,
) -> Result<i32, InventoryError> {
    Ok(stock_receive()
        .params(
            client,
            &StockReceiveParams {
                product_id,
                quantity,
            },
        )
        .one()
        .await?)
}

/// A correction of a product's on_hand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Adjustment {
    /// The product.
    pub product_id: Uuid,
    /// Added to on_hand: positive (found, returned) or negative (lost, damaged), not 0.
    pub quantity: i32,
    /// Why, 1 to 500 characters.
    pub reason: String,
}

/// Adjusts on_hand (`inventory.adjust_stock`), writing the adjustment to the ledger:
/// [`InventoryError::OutOfStock`] when on_hand would fall below what is reserved.
/// Returns on_hand after it.
pub async fn adjust_stock<C: GenericClient>(
    client: &C,
    adjustment: &Adjustment,
) -> Result<i32, InventoryError> {
    Ok(stock_adjust()
        .params(
            client,
            &StockAdjustParams {
                product_id: adjustment.product_id,
                quantity: adjustment.quantity,
                reason: adjustment.reason.as_str(),
            },
        )
        .one()
        .await?)
}

/// Reserves `quantity` units for the current user for 5 minutes
/// (`inventory.reserve_inventory`); returns the reservation's id.
/// [`InventoryError::OutOfStock`] when fewer are available,
/// [`InventoryError::ReservationLimit`] at the user's sixth active reservation of the
/// product, [`InventoryError::NotFound`] for a product that is not the tenant's.
pub async fn reserve<C: GenericClient>(
    client: &C,
    product_id: Uuid,
    quantity: i32,
) -> Result<Uuid, InventoryError> {
    let id = reservation_create()
        .bind(client, &product_id, &quantity)
        .one()
        .await?;
    Ok(id)
}

/// Releases the reservation: its units become available again. `true` when it was
/// released now, `false` when it had been released or had expired already;
/// [`InventoryError::NotActive`] when it was fulfilled.
pub async fn release<C: GenericClient>(
    client: &C,
    reservation_id: Uuid,
) -> Result<bool, InventoryError> {
    Ok(reservation_release()
        .bind(client, &reservation_id)
        .one()
        .await?)
}

/// Sells what the reservation holds: on_hand and reserved go down, a sale goes to the
/// ledger. Returns on_hand after it; [`InventoryError::NotActive`] when the reservation
/// has expired or finished.
pub async fn fulfill<C: GenericClient>(
    client: &C,
    reservation_id: Uuid,
) -> Result<i32, InventoryError> {
    Ok(reservation_fulfill()
        .bind(client, &reservation_id)
        .one()
        .await?)
}

/// Expires reservations past their time and gives their units back: the tenant's, or
/// every tenant's on a connection in `groundwork_worker` with no tenant set. At most
/// 10,000 per call; returns how many.
pub async fn cleanup_expired<C: GenericClient>(client: &C) -> Result<i32, InventoryError> {
    Ok(reservation_cleanup_expired().bind(client).one().await?)
}

/// A product's reorder settings; `None` keeps the current value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReorderSettings {
    /// A low-stock alert opens when available falls to this or below.
    pub reorder_point: Option<i32>,
    /// How much to order then.
    pub reorder_quantity: Option<i32>,
    /// Who from.
    pub supplier_id: Option<Uuid>,
    /// What a unit costs (for the stock value).
    pub unit_cost: Option<Decimal>,
}

/// Sets the product's reorder settings; `None` when it has no stock row yet (receive
/// stock first). Crossing the reorder point opens or resolves its low-stock alert.
pub async fn set_reorder<C: GenericClient>(
    client: &C,
    product_id: Uuid,
    settings: &ReorderSettings,
) -> Result<Option<StockLevel>, InventoryError> {
    Ok(stock_level_set_reorder()
        .params(
            client,
            &StockLevelSetReorderParams {
                reorder_point: settings.reorder_point,
                reorder_quantity: settings.reorder_quantity,
                supplier_id: settings.supplier_id,
                unit_cost: settings.unit_cost,
                product_id,
            },
        )
        .opt()
        .await?)
}
