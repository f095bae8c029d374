//! Finding or starting the PostgreSQL server that code generation, tests and the CLI
//! use.
//!
//! The order is always the same: a server URL if one is given; otherwise, per
//! `GROUNDWORK_POSTGRES=auto|local|container` (default `auto`: local, then container).
//! Which variable gives the URL depends on who asks ([`Settings`]): the CLI's
//! `migrate` and `db` commands and the tests read `DATABASE_URL`; code generation
//! (`build.rs`, `groundwork codegen`) and the schema dump read
//! `GROUNDWORK_CODEGEN_URL` and never `DATABASE_URL`, which is the application's own
//! and often names a role that may not create databases.
//!
//!
//! - **local**: PostgreSQL server binaries found on `PATH`, via `pg_config --bindir` or
//!   under `/usr/lib/postgresql/*/bin` (newest first). [`Postgres::ephemeral`] starts a
//!   throw-away cluster in a temporary directory with non-durable settings;
//!   [`Postgres::persistent`] starts (or reuses) a durable cluster in `.groundwork/`
//!   (`GROUNDWORK_DATA_DIR` overrides; as root, when the server's user cannot reach
//!   it, `/var/lib/groundwork/<name>-<hash>`), with a `groundwork` database and, once
//!   the migrations have made their groups, the development login roles
//!   ([`DevRole`]). As root the binaries run as the `postgres` system user.
//! - **container**: a container started through `testcontainers` from
//!   `GROUNDWORK_POSTGRES_IMAGE` (default `postgres:15`).
//!
//! Ephemeral servers and containers are tied to the process that started them by a
//! *lifeline*: a small supervisor process that reads from a pipe only the owner holds
//! open. Dropping the handle, or the owner exiting in any way (including a panic or
//! `SIGKILL`), closes the pipe, and the supervisor stops the server and deletes its
//! directory or container.

mod container;
mod dev_role;
mod error;
mod lifeline;
mod local;
mod pgbouncer;
mod postgres;
mod settings;
mod standby;

pub use dev_role::{DEV_ROLE_PASSWORD, DevRole, DevRoleState, dev_role_state, ensure_dev_roles};
pub use error::ProvisionError;
pub use local::{Binaries, PersistentCluster, Started};
pub use pgbouncer::{Pgbouncer, PgbouncerSettings, TRANSACTION_POOLING_SETTINGS};
pub use postgres::{Origin, Postgres};
pub use settings::{CODEGEN_URL, DATABASE_URL, Settings, Strategy, UrlSource};
pub use standby::StandbyPair;

/// Prefix of the temporary directories that ephemeral local clusters live in.
pub const EPHEMERAL_DIR_PREFIX: &str = "groundwork-pg-";
