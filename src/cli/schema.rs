//! `groundwork schema dump [--check]`: the scratch database is made on
//! `--database-url`'s server, else `GROUNDWORK_CODEGEN_URL`'s, else a throw-away one;
//! never `DATABASE_URL`'s.

use std::path::Path;
use std::process::ExitCode;

use groundwork_codegen::schema::{PgDump, SchemaDump};
use groundwork_provision::{Postgres, Settings};

use super::SchemaCommand;

pub(super) async fn run(
    command: SchemaCommand,
    settings: &Settings,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let SchemaCommand::Dump { source, out, check } = command;
    let migrations = source.source;
    if !migrations.is_dir() {
        return Err(format!(
            "{} is not a directory of migrations; run the command from the project root or \
             pass --source",
            migrations.display()
        )
        .into());
    }
    let server = Postgres::ephemeral(settings).await?;
    let pg_dump = PgDump::for_server(&server).await?;
    let dump = SchemaDump::generate_with(&migrations, server.url(), &pg_dump).await?;
    if check {
        let differences = dump.check(&out)?;
        if differences.is_empty() {
            say!("schema dump is current");
            return Ok(ExitCode::SUCCESS);
        }
        for difference in &differences {
            eprintln!("{difference}");
        }
        let mut command = "cargo run -- schema dump".to_owned();
        if migrations != Path::new("migrations") {
            command.push_str(&format!(" --source {}", migrations.display()));
        }
        if out != Path::new("schema") {
            command.push_str(&format!(" --out {}", out.display()));
        }
        eprintln!(
            "the schema dump is stale: run `{command}` and commit {}/",
            out.display()
        );
        return Ok(ExitCode::FAILURE);
    }
    let changed = dump.write(&out)?;
    let files = dump.files().count();
    say!(
        "{} files in {} ({} changed, pg_dump {} at {})",
        files,
        out.display(),
        changed.len(),
        pg_dump.major(),
        pg_dump.path().display()
    );
    for path in changed {
        say!("  {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
