//! `db start`, `db stop` and `db status`: the embedded cluster, and for `status` the
//! `--database-url` server instead when there is one.

use std::process::ExitCode;

use groundwork_provision::{PersistentCluster, Settings};

use super::inspect::{DatabaseState, address, database_name, inspect};

/// `db status`'s exit code for a stopped cluster or an unreachable server (as
/// `pg_ctl status` says "not running").
const STOPPED: u8 = 3;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub(super) async fn start(settings: &Settings) -> Result<ExitCode, Box<dyn std::error::Error>> {
    note_other_server(settings, "start");
    on_cluster(settings, |cluster| {
        let start = cluster.start()?;
        if start.created
            && let Some(relocation) = cluster.relocation()
        {
            eprintln!("groundwork: {relocation}");
        }
        say!(
            "{} 127.0.0.1:{} ({})",
            if start.started {
                "started on"
            } else {
                "already running on"
            },
            start.port,
            cluster.dir().display()
        );
        Ok(ExitCode::SUCCESS)
    })
    .await
}

pub(super) async fn stop(settings: &Settings) -> Result<ExitCode, Box<dyn std::error::Error>> {
    note_other_server(settings, "stop");
    on_cluster(settings, |cluster| {
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
        Ok(ExitCode::SUCCESS)
    })
    .await
}

pub(super) async fn status(settings: &Settings) -> Result<ExitCode, Box<dyn std::error::Error>> {
    if let Some(url) = &settings.database_url {
        let state = inspect(url).await;
        if let DatabaseState::Unreachable(reason) = &state {
            say!("unreachable: {} ({reason})", address(url));
            return Ok(ExitCode::from(STOPPED));
        }
        say!("reachable: {}", address(url));
        return Ok(report(&database_name(url)?, &state));
    }
    let running = on_cluster(settings, |cluster| {
        if let Some(relocation) = cluster.relocation() {
            eprintln!("groundwork: {relocation}");
        }
        let dir = cluster.dir().display();
        Ok(match cluster.running_port() {
            Some(port) => {
                say!("running on 127.0.0.1:{port} ({dir})");
                Some(cluster.url(port))
            }
            None if cluster.dir().join("data/PG_VERSION").is_file() => {
                say!("stopped ({dir})");
                None
            }
            None => {
                say!("not created yet ({dir}); the first command that needs it creates it");
                None
            }
        })
    })
    .await?;
    match running {
        Some(url) => Ok(report(&database_name(&url)?, &inspect(&url).await)),
        None => Ok(ExitCode::from(STOPPED)),
    }
}

/// Says what `state` means for the database `name`, and the exit code that goes with it.
fn report(name: &str, state: &DatabaseState) -> ExitCode {
    match state {
        DatabaseState::Connected {
            applied,
            newest: Some(newest),
        } if *applied > 0 => {
            say!("database {name}: migrated ({applied} applied, the newest {newest})");
            ExitCode::SUCCESS
        }
        DatabaseState::Connected { .. } => {
            say!("database {name}: not migrated; run `groundwork migrate up`");
            ExitCode::SUCCESS
        }
        DatabaseState::Missing => {
            say!("database {name}: does not exist; run `groundwork db create`");
            ExitCode::SUCCESS
        }
        DatabaseState::Refused(reason) => {
            eprintln!("error: connecting to database {name}: {reason}");
            ExitCode::FAILURE
        }
        DatabaseState::Unreachable(reason) => {
            eprintln!("error: connecting to database {name}: {reason}");
            ExitCode::from(STOPPED)
        }
    }
}

/// `start` and `stop` work on the embedded cluster even when a URL names another
/// server (a shell that exported `groundwork db url`); say so.
fn note_other_server(settings: &Settings, command: &str) {
    if settings.database_url.is_some() {
        eprintln!(
            "groundwork: `db {command}` is for the embedded cluster; the other commands \
             use the --database-url / DATABASE_URL server while one is given"
        );
    }
}

/// Runs `work` on the embedded cluster, off the async runtime (it waits for pg_ctl).
async fn on_cluster<T, F>(settings: &Settings, work: F) -> Result<T, Box<dyn std::error::Error>>
where
    T: Send + 'static,
    F: FnOnce(&PersistentCluster) -> Result<T, BoxError> + Send + 'static,
{
    let dir = settings.data_dir.clone();
    tokio::task::spawn_blocking(move || work(&PersistentCluster::new(dir)?))
        .await?
        .map_err(|e| -> Box<dyn std::error::Error> { e })
}
