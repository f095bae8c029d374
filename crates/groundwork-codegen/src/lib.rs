//! Build-time code generation: query files compiled by cornucopia against a freshly
//! migrated database, flattened into one Rust file that the `groundwork` crate
//! includes.
//!
//! The generated file is committed together with a manifest (`codegen.lock`) holding
//! a fingerprint of its inputs: every migration and query file, the code generation
//! settings and the cornucopia version. When the fingerprint of the files on disk
//! matches the manifest, nothing needs a database; when it does not, the build
//! regenerates with a server from `groundwork-provision`.

mod flatten;
mod generate;
mod manifest;

pub use generate::{CodegenError, Project};
pub use manifest::Manifest;

/// The cornucopia release the generated code comes from.
pub const CORNUCOPIA_VERSION: &str = "1.0.1";

/// Every setting that changes the generated code; part of the fingerprint.
pub const SETTINGS: &str = "cornucopia async; deadpool; derive serde Serialize+Deserialize; \
    enum variants CamelCase; flattened into module `generated` (v1)";
