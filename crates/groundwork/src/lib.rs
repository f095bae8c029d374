//! groundwork: the PostgreSQL foundation for Rust services.
//!
//! The schema is written as reversible SQL migrations (`migrations/`), the queries as
//! SQL files, one per table (`queries/<schema>/<table>.sql`). At build time
//! cornucopia compiles every query against a freshly migrated database into typed
//! functions, available here as `groundwork::queries::<schema>::<table>::<query>`
//! with row and enum types under [`types`]. There is no ORM: the runtime is
//! tokio-postgres and deadpool-postgres.
//!
//! ```no_run
//! use groundwork::queries::identity::organizations::organization_create;
//!
//! # async fn example() -> Result<(), groundwork::Error> {
//! let pool = groundwork::pool::from_env()?;
//! let client = pool.get().await?;
//! let org = organization_create()
//!     .bind(
//!         &client,
//!         &None::<uuid::Uuid>,
//!         &"Acme",
//!         &"acme",
//!         &serde_json::json!({}),
//!         &serde_json::json!({}),
//!         &None::<uuid::Uuid>,
//!     )
//!     .one()
//!     .await?;
//! println!("created {} ({})", org.name, org.id);
//! # Ok(())
//! # }
//! ```
//!
//! | module | what it is |
//! |---|---|
//! | [`pool`] | a deadpool-postgres pool configured from the environment |
//! | [`error`] | one error type, with SQLSTATEs mapped to typed variants |
//! | [`tenant`] | running work in a transaction with the row-level-security tenant context set |
//! | [`identity`] | password hashing, API keys, sessions, invitations and login lock-out |
//! | [`eventstore`] | DCB events and aggregate streams: append with conditions, gap-free reads |
//! | [`subscription`] | durable event-store subscriptions: checkpoints, catch-up, LISTEN/NOTIFY |
//! | [`outbox`] | the transactional outbox and its relay |
//! | [`idempotency`] | run an operation once per idempotency key |
//! | [`queries`], [`types`] | the generated code |
//!
//! The `deadpool` feature (on by default, required) makes the generated queries
//! accept pooled connections.

pub mod error;
pub mod eventstore;
pub mod idempotency;
pub mod identity;
pub mod outbox;
pub mod pool;
pub mod subscription;
pub mod tenant;

pub use error::Error;

/// The code cornucopia generates from `queries/`; use it through [`queries`],
/// [`types`] and [`client`].
#[doc(hidden)]
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod generated {
    include!("generated/cornucopia.rs");
}

pub use generated::{client, queries, types};
