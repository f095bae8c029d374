//! `groundwork db start|stop|status|url`.

use std::process::ExitCode;

use groundwork_provision::{PersistentCluster, Settings};

use super::{DbCommand, server};

/// The development seed data, as `groundwork db seed` loads it.
const DEVELOPMENT_SEED: &str = include_str!("../../seeds/development.sql");

pub(super) async fn run(
    command: DbCommand,
    settings: &Settings,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    if settings.database_url.is_some() && matches!(command, DbCommand::Url) {
        say!("{}", settings.database_url.as_deref().unwrap_or_default());
        return Ok(ExitCode::SUCCESS);
    }
    if matches!(command, DbCommand::Seed) {
        return seed(settings).await;
    }
    let dir = settings.data_dir.clone();
    tokio::task::spawn_blocking(
        move || -> Result<ExitCode, Box<dyn std::error::Error + Send + Sync>> {
            let cluster = PersistentCluster::new(dir)?;
            if matches!(command, DbCommand::Status)
                && let Some(relocation) = cluster.relocation()
            {
                eprintln!("groundwork: {relocation}");
            }
            match command {
                DbCommand::Start => {
                    let start = cluster.start()?;
                    if start.created
                        && let Some(relocation) = cluster.relocation()
                    {
                        eprintln!("groundwork: {relocation}");
                    }
                    say!(
                        "{} {} ({})",
                        if start.started {
                            "started"
                        } else {
                            "already running:"
                        },
                        cluster.url(start.port),
                        cluster.dir().display()
                    );
                }
                DbCommand::Stop => {
                    let was_running = cluster.stop()?;
                    say!(
                        "{} ({})",
                        if was_running {
                            "stopped"
                        } else {
                            "not running"
                        },
                        cluster.dir().display()
                    );
                }
                DbCommand::Status => match cluster.running_port() {
                    Some(port) => say!(
                        "running: {} ({})",
                        cluster.url(port),
                        cluster.dir().display()
                    ),
                    None => {
                        say!("stopped ({})", cluster.dir().display());
                        return Ok(ExitCode::from(3));
                    }
                },
                DbCommand::Url => {
                    let start = cluster.start()?;
                    say!("{}", cluster.url(start.port));
                }
                DbCommand::Seed => unreachable!("handled above"),
            }
            Ok(ExitCode::SUCCESS)
        },
    )
    .await?
    .map_err(|e| -> Box<dyn std::error::Error> { e })
}

/// Runs the seed script in one transaction and says what the database now holds.
async fn seed(settings: &Settings) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let postgres = server(settings).await?;
    let url = postgres.url();
    let client = groundwork_support::connect::connect(url)
        .await
        .map_err(|e| format!("connecting to {url}: {e}"))?;
    client
        .batch_execute(&format!("BEGIN;\n{DEVELOPMENT_SEED}\nCOMMIT;"))
        .await
        .map_err(|e| -> Box<dyn std::error::Error> {
            match e.as_db_error() {
                Some(db) if matches!(db.code().code(), "42P01" | "3F000") => format!(
                    "the database is not migrated: run `groundwork migrate up` first ({})",
                    db.message()
                )
                .into(),
                Some(db) => format!(
                    "loading the seed data: {}: {}",
                    db.code().code(),
                    db.message()
                )
                .into(),
                None => format!("loading the seed data: {e}").into(),
            }
        })?;
    let row = client
        .query_one(SEED_SUMMARY, &[])
        .await
        .map_err(|e| format!("reading the seed data back: {e}"))?;
    let (forms, submissions): (i64, i64) = (row.get(0), row.get(1));
    say!(
        "development seed data: organization acme-development (owner dev@acme.test), \
         {forms} form(s), {submissions} submission(s)"
    );
    Ok(ExitCode::SUCCESS)
}

/// What the seed wrote, read back as the owner.
const SEED_SUMMARY: &str = "SELECT
    (SELECT count(*) FROM forms.form_definitions WHERE organization_id = '00000000-0000-4000-8000-00000000ac01'),
    (SELECT count(*) FROM forms.form_submissions WHERE organization_id = '00000000-0000-4000-8000-00000000ac01')";
