//! `groundwork migrate ...`.

use std::process::ExitCode;

use groundwork_migrate::{
    DownOptions, DownTarget, MigrateError, MigrationState, Migrator, Step, UpOptions,
    new_migration_files,
};
use groundwork_provision::Settings;

use super::{MigrateCommand, server};

pub(super) async fn run(
    command: MigrateCommand,
    settings: &Settings,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    if let MigrateCommand::New { source, name } = &command {
        let (up, down) = new_migration_files(&source.source, name)?;
        say!("created {}\ncreated {}", up.display(), down.display());
        return Ok(ExitCode::SUCCESS);
    }
    let postgres = server(settings).await?;
    let client = connect(postgres.url()).await?;
    match command {
        MigrateCommand::Up {
            source,
            to,
            dry_run,
        } => {
            let steps = Migrator::from_dir(&source.source)?
                .up(&client, UpOptions { to, dry_run })
                .await?;
            report("applied", &steps, dry_run);
        }
        MigrateCommand::Down {
            source,
            steps,
            to,
            all,
            dry_run,
            allow_production,
        } => {
            let target = match (steps, to, all) {
                (_, _, true) => DownTarget::All,
                (_, Some(to), _) => DownTarget::To(to),
                (steps, None, false) => DownTarget::Steps(steps.unwrap_or(1)),
            };
            let mut options = DownOptions::from_env(target);
            options.dry_run = dry_run;
            options.allow_production = allow_production;
            let steps = Migrator::from_dir(&source.source)?
                .down(&client, options)
                .await?;
            report("reverted", &steps, dry_run);
        }
        MigrateCommand::Status { source } => {
            let status = Migrator::from_dir(&source.source)?.status(&client).await?;
            if status.is_empty() {
                say!("no migrations in {}", source.source.display());
            }
            for line in status {
                let state = match &line.state {
                    MigrationState::Applied { record, changed } => format!(
                        "applied {} ({} ms){}",
                        record.applied_at.format("%Y-%m-%d %H:%M:%S UTC"),
                        record.execution_ms,
                        if *changed { "  FILE CHANGED SINCE" } else { "" }
                    ),
                    MigrationState::Missing(record) => format!(
                        "applied {}  FILE MISSING",
                        record.applied_at.format("%Y-%m-%d %H:%M:%S UTC")
                    ),
                    MigrationState::Pending => "pending".into(),
                };
                say!("{:<16} {:<40} {state}", line.version, line.name);
            }
        }
        MigrateCommand::Verify { source } => {
            match Migrator::from_dir(&source.source)?.verify(&client).await {
                Ok(()) => say!("migrations verified: no drift"),
                Err(MigrateError::Drift(drift)) => {
                    for problem in &drift {
                        eprintln!("drift: {problem}");
                    }
                    return Ok(ExitCode::FAILURE);
                }
                Err(e) => return Err(e.into()),
            }
        }
        MigrateCommand::New { .. } => unreachable!("handled above"),
    }
    Ok(ExitCode::SUCCESS)
}

async fn connect(url: &str) -> Result<tokio_postgres::Client, Box<dyn std::error::Error>> {
    groundwork_support::connect::connect(url)
        .await
        .map_err(|e| format!("connecting to {url}: {e}").into())
}

fn report(verb: &str, steps: &[Step], dry_run: bool) {
    if steps.is_empty() {
        say!("nothing to do");
    }
    for step in steps {
        if dry_run {
            say!("would be {verb}: {} {}", step.version, step.name);
        } else {
            say!(
                "{verb} {} {} in {} ms",
                step.version,
                step.name,
                step.duration.as_millis()
            );
        }
    }
}
