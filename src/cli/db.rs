//! `groundwork db start|stop|status|url`.

use std::process::ExitCode;

use groundwork_provision::{PersistentCluster, Settings};

use super::DbCommand;

pub(super) async fn run(
    command: DbCommand,
    settings: &Settings,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    if settings.database_url.is_some() && matches!(command, DbCommand::Url) {
        say!("{}", settings.database_url.as_deref().unwrap_or_default());
        return Ok(ExitCode::SUCCESS);
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
            }
            Ok(ExitCode::SUCCESS)
        },
    )
    .await?
    .map_err(|e| -> Box<dyn std::error::Error> { e })
}
