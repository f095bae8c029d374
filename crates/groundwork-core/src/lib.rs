//! The parts of groundwork that its build script, library and CLI all need:
//! finding or starting PostgreSQL ([`provision`]), running SQL migrations
//! ([`migrate`]) and compiling query files into typed Rust ([`codegen`]).
//!
//! The `groundwork` crate re-exports these modules; depend on it rather than on this
//! crate directly.

pub mod codegen;
pub mod connect;
pub mod migrate;
pub mod provision;

pub use connect::connect;
