//! The product catalog (the `catalog` schema, docs/REQUIREMENTS.md): a category tree,
//! products with ranked full-text search, reviews and images, per tenant. Single
//! statements are the generated queries (`groundwork::queries::catalog::*`); their
//! errors convert into [`CatalogError`] too. This module adds request structs for what
//! takes more than three inputs, search pages and typed product details.
//!
//! | rule | SQLSTATE | error |
//! |---|---|---|
//! | no cycle of categories, of any length, also under concurrent moves | WC001 | [`CatalogError::Cycle`] |
//! | a product with images keeps exactly one primary image (make another primary instead of unsetting it) | WC002 | [`CatalogError::PrimaryImageRequired`] |
//! | sku and category slug unique per tenant; one review per user and product | 23505 | [`Error::Conflict`] in [`CatalogError::Database`] |
//! | price >= 0, rating 1 to 5, formats and lengths | 23514 | [`Error::Invalid`] in [`CatalogError::Database`] |
//!
//! What is not the tenant's is not found: `None`, like a row of another tenant.
//!
//! Work in a transaction acting for the tenant ([`crate::tenant::with_tenant`]).

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset};
use rust_decimal::Decimal;
use uuid::Uuid;

use crate::Error;
use crate::client::async_::{GenericClient, Params};
use crate::error::{Violation, converts_from_driver_errors};
use crate::queries::catalog::categories::{
    Category, CategoryCreateParams, CategoryMoveParams, category_create, category_move,
};
use crate::queries::catalog::products::{
    Product, ProductCreateParams, ProductHit, ProductSearchParams, product_create, product_details,
    product_search,
};

/// SQLSTATE raised when a category move would make a cycle.
pub const CYCLE: &str = "WC001";
/// SQLSTATE raised when a product's primary image is unset directly.
pub const PRIMARY_IMAGE_REQUIRED: &str = "WC002";

/// Why a catalog operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogError {
    /// The move would make a cycle of categories (WC001).
    #[error("cycle: {0}")]
    Cycle(Box<Violation>),
    /// The primary image is unset directly (WC002).
    #[error("primary image required: {0}")]
    PrimaryImageRequired(Box<Violation>),
    /// The server's product details could not be read.
    #[error("decoding product details: {0}")]
    Decode(#[source] serde_json::Error),
    /// Anything else.
    #[error(transparent)]
    Database(Error),
}

impl CatalogError {
    /// The server's report, if there is one.
    pub fn violation(&self) -> Option<&Violation> {
        match self {
            Self::Cycle(v) | Self::PrimaryImageRequired(v) => Some(v),
            Self::Database(e) => e.violation(),
            Self::Decode(_) => None,
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

impl From<Error> for CatalogError {
    fn from(error: Error) -> Self {
        if let Some(v) = error.raised(CYCLE) {
            Self::Cycle(Box::new(v.clone()))
        } else if let Some(v) = error.raised(PRIMARY_IMAGE_REQUIRED) {
            Self::PrimaryImageRequired(Box::new(v.clone()))
        } else {
            Self::Database(error)
        }
    }
}

converts_from_driver_errors!(CatalogError);

impl From<CatalogError> for Error {
    fn from(error: CatalogError) -> Self {
        match error {
            CatalogError::Cycle(v) | CatalogError::PrimaryImageRequired(v) => Error::Database(v),
            CatalogError::Database(e) => e,
            CatalogError::Decode(e) => Error::Decode(e),
        }
    }
}

/// A category to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewCategory {
    /// 1 to 200 characters.
    pub name: String,
    /// Lower-case letters and digits in words joined by `-`, unique in the tenant.
    pub slug: String,
    /// The category it belongs under; `None` for a root.
    pub parent_id: Option<Uuid>,
    /// What it holds.
    pub description: Option<String>,
    /// Order among its siblings.
    pub position: i32,
}

impl NewCategory {
    /// A root category.
    pub fn new(name: impl Into<String>, slug: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            slug: slug.into(),
            parent_id: None,
            description: None,
            position: 0,
        }
    }

    /// Puts it under `parent_id`.
    pub fn under(mut self, parent_id: Uuid) -> Self {
        self.parent_id = Some(parent_id);
        self
    }
}

/// Creates the category.
pub async fn create_category<C: GenericClient>(
    client: &C,
    category: &NewCategory,
) -> Result<Category, CatalogError> {
    Ok(category_create()
        .params(
            client,
            &CategoryCreateParams {
                parent_id: category.parent_id,
                name: category.name.as_str(),
                slug: category.slug.as_str(),
                description: category.description.as_deref(),
                position: category.position,
            },
        )
        .one()
        .await?)
}

/// Moves the category under `parent_id` (`None`: to the top): [`CatalogError::Cycle`]
/// when the new parent is the category or one of its descendants; `None` when the
/// category is not the tenant's.
pub async fn move_category<C: GenericClient>(
    client: &C,
    id: Uuid,
    parent_id: Option<Uuid>,
) -> Result<Option<Category>, CatalogError> {
    Ok(category_move()
        .params(client, &CategoryMoveParams { parent_id, id })
        .opt()
        .await?)
}

/// A product to create.
#[derive(Clone, Debug, PartialEq)]
pub struct NewProduct {
    /// Unique in the tenant: a letter or digit, then letters, digits, `._-`; at most 64.
    pub sku: String,
    /// 1 to 255 characters.
    pub name: String,
    /// Searchable text (weight C; the name and sku weigh A, tags B).
    pub description: String,
    /// 0 or more.
    pub price: Decimal,
    /// Three upper-case letters (ISO 4217); default `USD`.
    pub currency: String,
    /// Its category.
    pub category_id: Option<Uuid>,
    /// At most 50 of 1 to 50 characters.
    pub tags: Vec<String>,
    /// A JSON object of at most 64 KiB.
    pub metadata: serde_json::Value,
}

impl NewProduct {
    /// A product in USD with no description, category, tags or metadata.
    pub fn new(sku: impl Into<String>, name: impl Into<String>, price: Decimal) -> Self {
        Self {
            sku: sku.into(),
            name: name.into(),
            description: String::new(),
            price,
            currency: "USD".to_owned(),
            category_id: None,
            tags: Vec::new(),
            metadata: serde_json::json!({}),
        }
    }

    /// Sets the description.
    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Puts it in a category.
    pub fn category(mut self, category_id: Uuid) -> Self {
        self.category_id = Some(category_id);
        self
    }

    /// Adds a tag.
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }
}

/// Creates the product (active).
pub async fn create_product<C: GenericClient>(
    client: &C,
    product: &NewProduct,
) -> Result<Product, CatalogError> {
    Ok(product_create()
        .params(
            client,
            &ProductCreateParams {
                category_id: product.category_id,
                sku: product.sku.as_str(),
                name: product.name.as_str(),
                description: product.description.as_str(),
                price: product.price,
                currency: product.currency.as_str(),
                tags: product.tags.as_slice(),
                metadata: &product.metadata,
            },
        )
        .one()
        .await?)
}

/// A search of the tenant's active products (`catalog.search_products`).
#[derive(Clone, Debug, PartialEq)]
pub struct ProductSearch {
    /// Web search syntax: words, `"a phrase"`, `or`, `-excluded`; empty lists every
    /// product that passes the filters. At most 1,000 characters.
    pub query: String,
    /// Only this category and its sub-categories.
    pub category_id: Option<Uuid>,
    /// Lowest price.
    pub min_price: Option<Decimal>,
    /// Highest price.
    pub max_price: Option<Decimal>,
    /// Products with all of these tags (at most 50).
    pub tags: Vec<String>,
    /// Only products with stock available.
    pub in_stock: bool,
    /// 1 to 100 hits per page.
    pub page_size: i32,
    /// The page after this (rank, id): [`SearchPage::next`] of the previous page.
    pub after: Option<(f32, Uuid)>,
}

impl ProductSearch {
    /// The first page of 20 for `query`, no filters.
    pub fn new(query: impl Into<String>) -> Self {
        Self {
            query: query.into(),
            category_id: None,
            min_price: None,
            max_price: None,
            tags: Vec::new(),
            in_stock: false,
            page_size: 20,
            after: None,
        }
    }
}

/// One page of search hits, best first.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchPage {
    /// The hits.
    pub hits: Vec<ProductHit>,
    /// Where the next page starts, when this one was full.
    pub next: Option<(f32, Uuid)>,
}

/// Runs the search: one page.
pub async fn search<C: GenericClient>(
    client: &C,
    search: &ProductSearch,
) -> Result<SearchPage, CatalogError> {
    let hits = product_search()
        .params(
            client,
            &ProductSearchParams {
                query: search.query.as_str(),
                in_category: search.category_id,
                min_price: search.min_price,
                max_price: search.max_price,
                with_tags: (!search.tags.is_empty()).then_some(search.tags.as_slice()),
                in_stock: search.in_stock,
                after_rank: search.after.map(|(rank, _)| rank),
                after_id: search.after.map(|(_, id)| id),
                page_size: search.page_size,
            },
        )
        .all()
        .await?;
    let full = i32::try_from(hits.len()).is_ok_and(|n| n == search.page_size);
    let next = hits.last().filter(|_| full).map(|hit| (hit.rank, hit.id));
    Ok(SearchPage { hits, next })
}

/// A product as `catalog.get_product_details` describes it.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
pub struct ProductDetails {
    /// The product.
    pub id: Uuid,
    /// Its SKU.
    pub sku: String,
    /// Its name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// Its price.
    pub price: Decimal,
    /// Its currency.
    pub currency: String,
    /// Its tags.
    pub tags: Vec<String>,
    /// Its metadata.
    pub metadata: serde_json::Value,
    /// Whether it is for sale.
    pub active: bool,
    /// Its category.
    pub category_id: Option<Uuid>,
    /// The categories from the root down to its own.
    pub category_path: Vec<CategoryRef>,
    /// Its images in order.
    pub images: Vec<ImageRef>,
    /// Its approved reviews' ratings.
    pub rating: RatingSummary,
    /// Its stock (zeros when it has never been received).
    pub stock: StockSummary,
    /// When it was created.
    pub created_at: DateTime<FixedOffset>,
    /// When it last changed.
    pub updated_at: DateTime<FixedOffset>,
}

/// A category on a product's path.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct CategoryRef {
    /// The category.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Its slug.
    pub slug: String,
}

/// An image of a product.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct ImageRef {
    /// The image.
    pub id: Uuid,
    /// Where it is.
    pub url: String,
    /// Its alternative text.
    pub alt_text: Option<String>,
    /// Its place in the order.
    pub position: i32,
    /// Whether it is the primary image.
    pub is_primary: bool,
}

/// The ratings of a product's approved reviews.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
pub struct RatingSummary {
    /// How many.
    pub count: i64,
    /// Their mean, to two decimals; `None` without reviews.
    pub average: Option<Decimal>,
    /// How many of each rating, `"1"` to `"5"`.
    pub distribution: BTreeMap<String, i64>,
}

/// A product's stock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct StockSummary {
    /// Units held.
    pub on_hand: i32,
    /// Units reserved.
    pub reserved: i32,
    /// on_hand - reserved.
    pub available: i32,
    /// Whether any is available.
    pub in_stock: bool,
    /// The reorder point, when it has stock.
    pub reorder_point: Option<i32>,
}

/// The product with its category path, images, rating summary and stock; `None` when
/// it is not the tenant's.
pub async fn get_product_details<C: GenericClient>(
    client: &C,
    id: Uuid,
) -> Result<Option<ProductDetails>, CatalogError> {
    match product_details().bind(client, &id).one().await? {
        Some(details) => serde_json::from_value(details)
            .map(Some)
            .map_err(CatalogError::Decode),
        None => Ok(None),
    }
}
