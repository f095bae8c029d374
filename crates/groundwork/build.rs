//! Decides where the generated query code comes from, writing only into `OUT_DIR`.
//!
//! When the committed snapshot (`src/generated/`, with its manifest `codegen.lock`)
//! matches `migrations/` and `queries/`, the crate includes the snapshot and this does
//! nothing. Otherwise it regenerates into `OUT_DIR/generated`: it provisions
//! PostgreSQL (`GROUNDWORK_CODEGEN_URL`, else local binaries or a container; never
//! `DATABASE_URL`, which is the application's), migrates a scratch database and
//! compiles the queries with cornucopia, whose report of a query that does not compile
//! names the .sql file (relative to the project root) and line. It then sets the
//! `groundwork_regenerated` cfg so that the crate includes that code, and warns that
//! the snapshot is stale. With `GROUNDWORK_OFFLINE=true` (CI) a stale snapshot fails
//! the build instead, naming the changed files.
//!
//! Cargo shows a failed build script's stdout above its error, so the instructions
//! to cargo are printed only when the script succeeds: a failed run is repeated by
//! the next build whatever it said.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use groundwork_codegen::{CodegenError, Project};
use groundwork_provision::{CODEGEN_URL, Postgres, Settings};
use groundwork_support::io::io_error;

/// The variables that change what this script does: whether it may regenerate, and
/// which server it regenerates with.
const VARIABLES: [&str; 4] = [
    "GROUNDWORK_OFFLINE",
    CODEGEN_URL,
    "GROUNDWORK_POSTGRES",
    "GROUNDWORK_POSTGRES_IMAGE",
];

fn main() -> ExitCode {
    let crate_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    // The project root is two levels up (`crates/groundwork`); taken without `..` so
    // that the paths in messages read plainly.
    let root = crate_dir
        .ancestors()
        .nth(2)
        .map_or_else(|| crate_dir.join("../.."), Path::to_path_buf);
    let project = Project::new(&root);
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    let mut instructions = vec!["cargo::rustc-check-cfg=cfg(groundwork_regenerated)".to_owned()];
    let result = embed_migrations(&project.migrations_dir(), &out_dir)
        .and_then(|()| run(&project, &out_dir.join("generated"), &mut instructions));
    if let Err(error) = result {
        eprintln!("error: {error}");
        return ExitCode::FAILURE;
    }
    instructions.push("cargo::rerun-if-changed=build.rs".to_owned());
    for watched in [
        project.migrations_dir(),
        project.queries_dir(),
        project.manifest_file(),
    ] {
        instructions.push(format!("cargo::rerun-if-changed={}", watched.display()));
    }
    for variable in VARIABLES {
        instructions.push(format!("cargo::rerun-if-env-changed={variable}"));
    }
    for instruction in instructions {
        println!("{instruction}");
    }
    ExitCode::SUCCESS
}

/// Writes `OUT_DIR/migrations.rs`: the migration files as `(name, contents)` pairs,
/// for the `migrate` feature's embedded migrator.
fn embed_migrations(dir: &Path, out_dir: &Path) -> Result<(), CodegenError> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(io_error("reading", dir))?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".sql"))
        .collect();
    names.sort();
    let dir = std::fs::canonicalize(dir).map_err(io_error("resolving", dir))?;
    let entries: String = names
        .iter()
        .map(|name| format!("    ({name:?}, include_str!({:?})),\n", dir.join(name)))
        .collect();
    let path = out_dir.join("migrations.rs");
    std::fs::write(&path, format!("&[\n{entries}]\n")).map_err(io_error("writing", &path))?;
    Ok(())
}

/// Regenerates into `out` when the snapshot is stale, adding to `instructions` what
/// cargo must be told about it.
fn run(project: &Project, out: &Path, instructions: &mut Vec<String>) -> Result<(), CodegenError> {
    let Some(changed) = project.stale_files()? else {
        return Ok(());
    };
    let offline = std::env::var("GROUNDWORK_OFFLINE")
        .is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"));
    if offline {
        return Err(CodegenError::Offline { files: changed });
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(io_error("starting a runtime for", project.root()))?;
    runtime.block_on(async {
        let stale = |cause| CodegenError::Stale {
            files: changed.clone(),
            cause,
        };
        let settings = Settings::codegen_from_env().map_err(stale)?;
        let server = Postgres::ephemeral(&settings).await.map_err(stale)?;
        let (code, _) = project.generate(server.url()).await?;
        Project::write_code(out, &code)?;
        instructions.push("cargo::rustc-cfg=groundwork_regenerated".to_owned());
        instructions.push(format!(
            "cargo::warning=the generated query code snapshot is stale (changed: {}); this \
             build uses code regenerated into OUT_DIR. Run `cargo run -- codegen` and commit \
             crates/groundwork/src/generated",
            changed.join(", ")
        ));
        Ok(())
    })
}
