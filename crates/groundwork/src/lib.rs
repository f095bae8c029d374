//! groundwork: the PostgreSQL foundation for Rust services.
//!
//! The schema is written as reversible SQL migrations (`migrations/`), the queries as
//! SQL files, one per table (`queries/<schema>/<table>.sql`). At build time
//! cornucopia compiles every query against a freshly migrated database into typed
//! functions, available here as `groundwork::queries::<schema>::<table>::<query>`
//! with row and enum types under [`types`]. There is no ORM: the runtime is
//! tokio-postgres and deadpool-postgres.
//!
//! Services connect as a login role in `groundwork_app` and run each request in a
//! transaction that acts for a tenant ([`tenant`]); row-level security lets that
//! transaction see and write its tenant's rows only. A first program
//! (`examples/first_program.rs`, run in CI as the application role):
//!
//! ```no_run
//! use groundwork::client::Params;
//! use groundwork::queries::identity::organizations::{
//!     OrganizationCreateParams, organization_create,
//! };
//! use groundwork::tenant::{Tenant, with_tenant};
//!
//! # async fn example(user_id: uuid::Uuid) -> Result<(), groundwork::Error> {
//! // DATABASE_URL: an application role, for example `groundwork db url`.
//! let pool = groundwork::pool::from_env()?;
//! let mut client = pool.get().await?;
//! let organization_id = uuid::Uuid::new_v4();
//! // The new organization is the transaction's tenant: the policy lets it in.
//! let org = with_tenant(&mut client, Tenant::new(organization_id, user_id), async |tx| {
//!     Ok(organization_create()
//!         .params(
//!             tx,
//!             &OrganizationCreateParams {
//!                 id: Some(organization_id),
//!                 name: "Acme",
//!                 slug: "acme",
//!                 settings: serde_json::json!({}),
//!                 metadata: serde_json::json!({}),
//!                 created_by: Some(user_id),
//!             },
//!         )
//!         .one()
//!         .await?)
//! })
//! .await?;
//! println!("created {} ({})", org.name, org.id);
//! # Ok(())
//! # }
//! ```
//!
//! The CLI that comes with it, `groundwork` (`cargo run -- --help` in this
//! repository), applies the migrations, regenerates the query code and runs a local
//! PostgreSQL for development; see the README.
//!
//! | module | what it is |
//! |---|---|
//! | [`pool`] | a deadpool-postgres pool configured from the environment |
//! | [`error`] | the engine's error, with PostgreSQL's SQLSTATEs mapped to typed variants (each schema's module types its own) |
//! | [`tenant`] | running work in a transaction with the row-level-security tenant context set |
//! | [`identity`] | password hashing, API keys, sessions, invitations and login lock-out |
//! | [`forms`] | versioned form definitions, submissions validated by JSON Schema in the database |
//! | [`projects`] | projects, members, task graphs and versioned documents |
//! | [`licensing`] | plans, licences with seats, the entitlement check |
//! | [`cad`] | CAD models and versions within licence quotas, their processing jobs |
//! | [`catalog`] | categories, products with ranked full-text search, reviews and images |
//! | [`inventory`] | stock that never oversells: reservations, the movement ledger, low-stock alerts |
//! | [`sales`] | carts, orders and a checkout that is one transaction, idempotent per key |
//! | [`payments`] | tokenised payment methods, authorize -> capture -> settle, refunds, disputes |
//! | [`eventstore`] | DCB events and aggregate streams: append with conditions, gap-free reads |
//! | [`subscription`] | durable event-store subscriptions: checkpoints, catch-up, LISTEN/NOTIFY |
//! | [`outbox`] | the transactional outbox and its relay |
//! | [`idempotency`] | run an operation once per idempotency key |
//! | [`ops`] | health checks for a monitoring role, retention in batches |
//! | `jobs` | the job queue: typed jobs, enqueueing, the worker pool, periodic jobs (feature `jobs`) |
//! | [`queries`], [`types`] | the generated code |
//!
//! | feature | default | what |
//! |---|---|---|
//! | `deadpool` | on (required) | the generated queries accept pooled connections |
//! | `migrate` | off | `groundwork::migrate`: the migration runner with this crate's migrations embedded |
//! | `jobs` | off | `groundwork::jobs`: typed jobs, the worker pool and periodic jobs (adds the `cron` crate) |

pub mod cad;
pub mod catalog;
pub mod error;
pub mod eventstore;
pub mod forms;
pub mod idempotency;
pub mod identity;
pub mod inventory;
#[cfg(feature = "jobs")]
pub mod jobs;
pub mod licensing;
pub mod listener;
pub mod ops;
pub mod outbox;
pub mod payments;
pub mod pool;
pub mod projects;
pub mod sales;
pub mod subscription;
pub mod tenant;

pub use error::Error;

/// The migration runner, with this crate's migrations embedded at build time (the
/// `migrate` feature): a service can migrate its database at start-up.
///
/// ```no_run
/// # async fn example(client: &tokio_postgres::Client) -> Result<(), groundwork::migrate::MigrateError> {
/// let applied = groundwork::migrate::migrator()?
///     .up(client, groundwork::migrate::UpOptions::default())
///     .await?;
/// println!("applied {} migrations", applied.len());
/// # Ok(())
/// # }
/// ```
#[cfg(feature = "migrate")]
pub mod migrate {
    // The runner's API only: the tooling's plumbing (`groundwork-support`) stays out
    // of what services import.
    pub use groundwork_migrate::{
        AppliedRecord, DownOptions, DownTarget, Drift, MigrateError, Migration, MigrationState,
        MigrationStatus, Migrator, NO_TRANSACTION_MARKER, Script, Statement, Step, UpOptions,
        new_migration_files, split_statements,
    };

    /// `migrations/` as it was when this crate was built.
    const EMBEDDED: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

    /// A migrator for this crate's migrations, embedded in the binary.
    pub fn migrator() -> Result<Migrator, MigrateError> {
        let files = EMBEDDED
            .iter()
            .map(|(name, sql)| (std::path::PathBuf::from(name), (*sql).to_owned()));
        Ok(Migrator::new(Migration::from_files(files)?))
    }
}

/// The code cornucopia generates from `queries/`; use it through [`queries`],
/// [`types`] and [`client`]. The committed snapshot, unless the build found it stale
/// and regenerated into `OUT_DIR` (see `build.rs`).
#[doc(hidden)]
#[allow(missing_docs, clippy::all, clippy::pedantic)]
#[cfg(not(groundwork_regenerated))]
pub mod generated {
    include!("generated/mod.rs");
}

/// The code cornucopia generates from `queries/`, regenerated by this build.
#[doc(hidden)]
#[allow(missing_docs, clippy::all, clippy::pedantic)]
#[cfg(groundwork_regenerated)]
pub mod generated {
    include!(concat!(env!("OUT_DIR"), "/generated/mod.rs"));
}

pub use generated::{client, queries, types};
