//! The tooling's integration tests: one binary with a module per area (the CLI, its
//! `db` and `jobs` commands, code generation, migrations, provisioning, the schema dump and the
//! test harness), on real PostgreSQL. The runtime library's tests are `crates/groundwork/tests/it/`.

mod files;
mod output;

mod cli;
mod cli_db;
mod cli_jobs;
mod cli_ops;
mod codegen;
mod codegen_docs;
mod codegen_url;
mod lint;
mod migrate;
mod migrate_safety;
mod provision;
mod schema;
mod testdb;
