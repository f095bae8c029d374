//! The schema dump: the database the migrations build, as committed SQL files that
//! reviewers read and CI compares.
//!
//! Migrations are history; the dump is the present. [`SchemaDump::generate`]
//! migrates a scratch database, runs `pg_dump --schema-only` against it and splits
//! the output by schema: `<schema>.sql` for every schema that holds an object
//! (`public` included, for groundwork's own functions there), and
//! [`DATABASE_FILE`] for what belongs to the whole database (extensions, and the
//! privileges taken from or given on `pg_catalog`'s functions). The migration
//! runner's bookkeeping table is left out.
//!
//! Each file starts with a line saying it is generated; then every object follows
//! under a short header comment (`-- function forms.json_schema_valid(jsonb, jsonb,
//! boolean)`, `-- policy users_self on identity.users`) in pg_dump's order, with
//! its owner, comments and privileges folded in, and with everything about the
//! restoring session left out (`SET` lines, `set_config`, pg_dump's banners).
//! Function bodies appear in full, as the server holds them. The files are for
//! reading and diffing; the migrations remain what builds a database.
//!
//! [`SchemaDump::check`] compares a dump with the committed files and names what
//! differs, object by object ([`FileDifference`]).
//!
//! The text follows the formatting of the pg_dump that made it, whose major version
//! the first line names: [`PgDump::find`] prefers one of the server's major version.
//! Owners are whoever ran the migrations: `postgres` on the servers groundwork starts.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use std::path::Path;
//!
//! use groundwork_codegen::schema::SchemaDump;
//! use groundwork_provision::{Postgres, Settings};
//!
//! let server = Postgres::ephemeral(&Settings::from_env()?).await?;
//! let dump = SchemaDump::generate(Path::new("migrations"), &server).await?;
//! let differences = dump.check(Path::new("schema"))?;
//! for difference in &differences {
//!     eprintln!("{difference}");
//! }
//! if differences.is_empty() {
//!     println!("schema dump is current");
//! }
//! # Ok(())
//! # }
//! ```

mod check;
mod dump;
mod error;
mod object;
mod pg_dump;
mod toc;

pub use check::{FileDifference, ObjectDifference};
pub use dump::{DATABASE_FILE, SchemaDump, SchemaFile};
pub use error::SchemaError;
pub use object::SchemaObject;
pub use pg_dump::PgDump;

// The tooling's connection and file-error helpers, imported once for this module.
use groundwork_support::{connect, io};
