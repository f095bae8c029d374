//! Plumbing shared by groundwork's tooling: the migration runner
//! (`groundwork-migrate`), PostgreSQL provisioning (`groundwork-provision`), code
//! generation (`groundwork-codegen`), the test harness (`groundwork-testing`) and the
//! CLI.
//!
//! - [`connect`]: a plain tokio-postgres connection, URLs with another database, other
//!   credentials or no password, and driver errors spelled out with their SQLSTATE.
//! - [`hash`]: the one SHA-256 helper, for checksums, fingerprints and derived names.
//! - [`io`]: the one file error, naming what was being done to which path.
//! - [`lock`]: running work while a session holds an advisory lock, taken by polling.
//!
//! This is not part of what services import: the runtime crate `groundwork` does not
//! re-export it, not even with its `migrate` feature, which brings only the migration
//! runner's API.
//!
//! ```
//! use groundwork_support::connect::with_database;
//! use groundwork_support::hash::sha256_hex;
//!
//! let url = with_database("postgres://app@localhost:5432/postgres", "scratch");
//! assert_eq!(url, "postgres://app@localhost:5432/scratch");
//! assert_eq!(sha256_hex(["abc"]).len(), 64);
//! ```

pub mod connect;
pub mod hash;
pub mod io;
pub mod lock;
