//! Keeps `src/generated/cornucopia.rs` in step with `migrations/` and `queries/`.
//!
//! When the committed manifest matches the inputs this does nothing and needs no
//! database. Otherwise it provisions PostgreSQL (DATABASE_URL, local binaries or a
//! container), migrates a scratch database, compiles the queries with cornucopia and
//! rewrites the generated file; a query that does not compile fails the build with
//! cornucopia's report, which names the .sql file and line.

use std::path::PathBuf;
use std::process::ExitCode;

use groundwork_codegen::{CodegenError, Project};
use groundwork_provision::{Postgres, Settings};

fn main() -> ExitCode {
    let crate_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let root = crate_dir.join("../..");
    println!("cargo::rerun-if-changed=build.rs");
    println!(
        "cargo::rerun-if-changed={}",
        root.join("migrations").display()
    );
    println!("cargo::rerun-if-changed={}", root.join("queries").display());
    match run(&Project::new(root)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run(project: &Project) -> Result<(), CodegenError> {
    let Some(changed) = project.stale_files()? else {
        return Ok(());
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|source| CodegenError::Io {
            action: "starting a runtime for",
            path: project.root().to_path_buf(),
            source,
        })?;
    runtime.block_on(async {
        let stale = |cause| CodegenError::Stale {
            files: changed.clone(),
            cause,
        };
        let settings = Settings::from_env().map_err(stale)?;
        let server = Postgres::ephemeral(&settings).await.map_err(stale)?;
        let (code, manifest) = project.generate(server.url()).await?;
        project.write(&code, &manifest)?;
        println!(
            "cargo::warning=regenerated src/generated/cornucopia.rs (changed: {}); commit it",
            changed.join(", ")
        );
        Ok(())
    })
}
