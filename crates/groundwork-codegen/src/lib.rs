//! Build-time code generation: query files compiled by cornucopia against a freshly
//! migrated database, split into one Rust file per query file
//! (`queries/<schema>/<table>.rs`), per schema's types and per support module, under
//! a `mod.rs` that the `groundwork` crate includes.
//!
//! The code is committed as a snapshot (`crates/groundwork/src/generated/`) with a
//! manifest (`codegen.lock`) holding a fingerprint of its inputs: every migration and
//! query file, the code generation settings and the cornucopia version. A build whose
//! inputs match the manifest needs no database and writes nothing. A build whose
//! inputs changed regenerates into its `OUT_DIR` with a server from
//! `groundwork-provision` (`GROUNDWORK_CODEGEN_URL`, else a throw-away one; never the
//! application's `DATABASE_URL`), never into the source tree, and warns that the
//! snapshot is stale; with `GROUNDWORK_OFFLINE=true` it fails instead, naming the
//! changed files. A query that does not compile is reported against its file,
//! relative to the project root, and line.
//! `groundwork codegen` refreshes the snapshot; `groundwork codegen --check`
//! regenerates and compares.
//!
//! Every generated query function is documented from its query file: the `---` lines
//! directly above its `--!` annotation (or a line naming the query), then the file and
//! the SQL.
//!
//! The [`schema`] module makes the other generated, committed artefact: the schema
//! dump (`schema/<schema>.sql`), the current definition of every object the
//! migrations create, written by `groundwork schema dump`.

mod docs;
mod generate;
mod manifest;
pub mod schema;
mod split;

pub use docs::{QueryDoc, parse_query_file};
pub use generate::{CodegenError, Project};
pub use manifest::Manifest;
pub use split::GeneratedCode;

/// The cornucopia release the generated code comes from.
pub const CORNUCOPIA_VERSION: &str = "1.0.1";

/// Every setting that changes the generated code; part of the fingerprint.
pub const SETTINGS: &str = "cornucopia async; deadpool; derive serde Serialize+Deserialize; \
    enum variants CamelCase; split into files under module `generated` (v2); query docs from \
    the query files (v1)";
