//! The migration linter behind `groundwork migrate lint`.
//!
//! Two passes over the migrations, oldest first:
//!
//! - **static rules** ([`lint_static`]): each statement, parsed by PostgreSQL's own
//!   parser, against what earlier migrations made. A table created earlier in the same
//!   file is new and unused, so the lock and scan rules say nothing about it; every
//!   other table is an existing, populated one.
//! - **the trace** ([`trace()`]): the earlier migrations replayed into a throw-away
//!   database whose tables are then filled with rows, and each migration run statement
//!   by statement in its transaction, recording per existing relation the strongest
//!   lock and the statement that took it, rewrites (with the reason), rows scanned
//!   while a lock that blocks writes was held, failing statements, and whether the down
//!   file restores the catalog exactly. It sees what a parser cannot: DDL inside `DO`
//!   blocks and functions, inline `CHECK`s, backfills.
//!
//! Once every migration has run, the trace prepares the previous release's queries
//! ([`check_compat`], with [`queries_at`] reading them from git): a rolling deploy runs
//! them against the new schema. [`check_plans`] explains every query of `queries/` on a
//! database filled by [`fill_tables`], for `groundwork check plans`.
//!
//! A finding is silenced for one statement by a comment before it (or in it) naming
//! the rule and the reason:
//!
//! ```sql
//! -- groundwork:lint allow ban-drop-column because no release since 1.4 reads it
//! ALTER TABLE billing.invoices DROP COLUMN legacy_total;
//! ```
//!
//! ```
//! use groundwork_lint::{Severity, lint_static};
//! use groundwork_migrate::Migration;
//!
//! let migrations = Migration::from_files([
//!     ("1_t.up.sql".into(), "CREATE TABLE t (id bigint PRIMARY KEY, v text);".to_owned()),
//!     ("2_i.up.sql".into(), "CREATE INDEX t_v ON t (v);".to_owned()),
//! ])
//! .unwrap();
//! let findings = lint_static(&migrations);
//! assert_eq!(findings.len(), 1);
//! assert_eq!(findings[0].rule, "require-concurrent-index-creation");
//! assert_eq!(findings[0].severity, Severity::Error);
//! ```

mod annotation;
mod catalog;
mod compat;
mod error;
mod fill;
mod finding;
mod plans;
mod queries;
mod report;
mod rules;
mod trace;

pub use annotation::{ALLOW_MARKER, Allow, allows};
pub use catalog::catalog;
pub use compat::check_compat;
pub use error::LintError;
pub use fill::{Filled, Rows, fill_tables};
pub use finding::{Finding, Location, Origin, Severity, line_of};
pub use plans::{PlanLimits, PlanRecord, check_plans};
pub use queries::{QueryFile, positional, queries_at, read_queries};
pub use report::{Format, Report};
pub use rules::{RULES, Rule, lint_static, rule_named};
pub use trace::{LockRecord, TraceOptions, Traced, trace};
