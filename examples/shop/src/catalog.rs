//! `GET /products` and `GET /products/{id}`: the catalog, for the key's organization.

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use groundwork::catalog::{self, ProductSearch};
use groundwork::queries::catalog::products::product_details;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Shop;
use crate::error::ApiError;

/// The search's query string.
#[derive(Debug, Deserialize)]
pub(crate) struct SearchQuery {
    /// Web search syntax; absent lists everything that passes the filters.
    #[serde(default)]
    q: String,
    min_price: Option<Decimal>,
    max_price: Option<Decimal>,
    #[serde(default)]
    in_stock: bool,
    page_size: Option<i32>,
}

/// One hit.
#[derive(Debug, Serialize)]
pub(crate) struct ProductHit {
    id: Uuid,
    sku: String,
    name: String,
    price: Decimal,
    currency: String,
    category_id: Option<Uuid>,
    tags: Vec<String>,
    available: i32,
}

/// A page of hits, best first.
#[derive(Debug, Serialize)]
pub(crate) struct SearchResult {
    products: Vec<ProductHit>,
}

/// `GET /products`: `catalog::search`.
pub(crate) async fn search(
    State(shop): State<Shop>,
    headers: HeaderMap,
    query: Result<Query<SearchQuery>, QueryRejection>,
) -> Result<Json<SearchResult>, ApiError> {
    let Query(query) = query?;
    let mut caller = shop.caller(&headers).await?;
    let search = ProductSearch {
        min_price: query.min_price,
        max_price: query.max_price,
        in_stock: query.in_stock,
        page_size: query.page_size.unwrap_or(20),
        ..ProductSearch::new(query.q)
    };
    let tx = caller.begin().await?;
    let page = catalog::search(&tx, &search).await?;
    tx.commit().await?;
    let products = page
        .hits
        .into_iter()
        .map(|hit| ProductHit {
            id: hit.id,
            sku: hit.sku,
            name: hit.name,
            price: hit.price,
            currency: hit.currency,
            category_id: hit.category_id,
            tags: hit.tags,
            available: hit.available,
        })
        .collect();
    Ok(Json(SearchResult { products }))
}

/// `GET /products/{id}`: the document `catalog.get_product_details` builds (category
/// path, images, rating summary, stock), as it is.
pub(crate) async fn product(
    State(shop): State<Shop>,
    headers: HeaderMap,
    id: Result<Path<Uuid>, PathRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Path(id) = id?;
    let mut caller = shop.caller(&headers).await?;
    let tx = caller.begin().await?;
    let details = product_details().bind(&tx, &id).one().await?;
    tx.commit().await?;
    details
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("product {id} not found")))
}
