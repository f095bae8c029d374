//! The runtime library's integration tests: one binary with a module per area, every
//! test on its own database (`groundwork_testing::TestDb`), SQL behaviour through the
//! library and the roles services connect as. The tooling's tests (CLI, code
//! generation, migrations, provisioning, schema dump, the harness) are the workspace
//! root package's `tests/it/`.

mod common;

mod cad;
mod catalog;
mod commerce;
mod conventions;
mod errors;
mod eventstore;
mod forms;
mod identity;
mod inventory;
mod jobs;
mod jobs_worker;
mod licensing;
mod messaging;
mod ops;
mod personal;
mod projects;
mod scaling;
mod security;
mod service_roles;
mod tenancy;
