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
                path.strip_prefix(project.root()).unwrap_or(&path).display()
            );
        }
        return Ok(ExitCode::FAILURE);
    }
    let (code, manifest) = project.generate(server.url()).await?;
    let changed = project.write_snapshot(&code, &manifest)?;
    let dir = project.snapshot_dir();
    say!(
        "{} files in {} ({} changed)",
        code.files.len() + 1,
        dir.strip_prefix(project.root()).unwrap_or(dir).display(),
        changed.len()
    );
    for name in changed {
        say!("  {name}");
    }
    Ok(ExitCode::SUCCESS)
}
