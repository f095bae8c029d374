//! groundwork's integration tests: one binary with a module per area, every test on
//! its own database, SQL behaviour through the roles services connect as.

mod common;

mod cli;
mod codegen;
mod conventions;
mod errors;
mod eventstore;
mod forms;
mod identity;
mod messaging;
mod migrate;
mod projects;
mod provision;
mod schema;
mod security;
mod tenancy;
mod testdb;
