//! An example service on groundwork: an HTTP API for a shop (catalog search, a cart, a
//! checkout made idempotent by an `Idempotency-Key` header, payments), built the way
//! an application would build it: the pool, one tenant transaction per request
//! ([`groundwork::tenant::begin`]), the `sales`, `payments` and `catalog` modules and
//! the generated queries, and the outbox relay delivering what checkout wrote.
//!
//! Every request carries an API key, `Authorization: Bearer gw_...`, which
//! [`groundwork::identity::authenticate_api_key`] turns into the key's organization.
//! API keys belong to an organization and not to a user, so the user a request acts for
//! is named by an `X-User-Id` header and checked, in the request's transaction, to be
//! an active member of that organization. The catalog needs no user; the cart, orders
//! and payments do.
//!
//! ```no_run
//! # async fn example(pool: deadpool_postgres::Pool) -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! println!("listening on {}", listener.local_addr()?);
//! shop::serve(listener, shop::Shop::new(pool)).await
//! # }
//! ```
//!
//! `cargo run -p shop` starts it on the embedded cluster with the development seed data;
//! `examples/shop/README.md` shows a purchase with curl.

mod app;
mod auth;
mod cart;
mod catalog;
mod error;
mod orders;
mod payments;
mod relay;

pub use app::{Shop, router, serve};
pub use error::ApiError;
pub use relay::{LogPublisher, run_relay};
