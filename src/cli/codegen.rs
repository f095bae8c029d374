//! `groundwork codegen [--check]`: the server is `--database-url`, else
//! `GROUNDWORK_CODEGEN_URL`, else a throw-away one; never `DATABASE_URL`.

use std::process::ExitCode;

use groundwork_codegen::Project;
use groundwork_provision::{Postgres, Settings};

pub(super) async fn run(
    check: bool,
    settings: &Settings,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let project = Project::new(std::env::current_dir()?);
    if !project.queries_dir().is_dir() {
        return Err(format!(
            "{} has no queries/ directory; run codegen from the project root",
            project.root().display()
        )
        .into());
    }
    let server = Postgres::ephemeral(settings).await?;
    if check {
        let stale = project.check(server.url()).await?;
        if stale.is_empty() {
            say!("generated code is current");
            return Ok(ExitCode::SUCCESS);
        }
        for path in stale {
            eprintln!(
                "stale: {} (run `cargo run -- codegen` and commit)",
                path.display()
            );
        }
        return Ok(ExitCode::FAILURE);
    }
    let (code, manifest) = project.generate(server.url()).await?;
    project.write_snapshot(&code, &manifest)?;
    say!(
        "wrote {} files and the manifest to {}",
        code.files.len(),
        project.snapshot_dir().display()
    );
    Ok(ExitCode::SUCCESS)
}
