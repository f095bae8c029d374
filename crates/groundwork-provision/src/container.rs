//! PostgreSQL in a container, started through `testcontainers`.

use std::process::Command;
use std::time::{Duration, Instant};

use testcontainers::core::{IntoContainerPort, Mount, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{GenericImage, ImageExt};

use super::ProvisionError;
use super::lifeline::Lifeline;

/// A running container, removed by its lifeline.
pub(crate) struct ContainerServer {
    name: String,
    _lifeline: Lifeline,
}

const REAPER: &str = r#"
trap '' INT TERM HUP
echo ready
read -r _ || true
docker rm -fv "$1" >/dev/null 2>&1
"#;

/// Same non-durable settings as the local ephemeral cluster.
const SETTINGS: &[&str] = &[
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "max_connections=300",
    "shared_buffers=128MB",
    // PostgreSQL's images ship contrib: the statistics ops.get_slow_queries reads.
    "shared_preload_libraries=pg_stat_statements",
];

impl ContainerServer {
    /// Starts `image` (`name[:tag]`) and returns the server and its host port.
    pub(crate) async fn start(image: &str) -> Result<(Self, u16), ProvisionError> {
        let (repository, tag) = match image.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => (repo, tag),
            _ => (image, "latest"),
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "{}{}-{nanos:x}",
            super::EPHEMERAL_DIR_PREFIX,
            std::process::id()
        );
        // The reaper exists before the container does, so that no exit path leaks it.
        let mut reaper = Command::new("/bin/sh");
        reaper
            .arg("-c")
            .arg(REAPER)
            .arg("groundwork-reaper")
            .arg(&name);
        let (lifeline, _) = Lifeline::spawn(reaper)
            .map_err(|e| ProvisionError::Container(format!("starting the reaper: {e}")))?;
        let mut cmd = vec!["postgres".to_owned()];
        for setting in SETTINGS {
            cmd.push("-c".into());
            cmd.push((*setting).into());
        }
        let container = GenericImage::new(repository, tag)
            .with_exposed_port(5432.tcp())
            .with_wait_for(WaitFor::message_on_stderr(
                "database system is ready to accept connections",
            ))
            .with_env_var("POSTGRES_HOST_AUTH_METHOD", "trust")
            .with_env_var("POSTGRES_PASSWORD", "postgres")
            .with_container_name(&name)
            // Data in memory, as for local ephemeral clusters.
            .with_mount(Mount::tmpfs_mount("/var/lib/postgresql/data"))
            .with_cmd(cmd)
            .with_startup_timeout(Duration::from_secs(120))
            .start()
            .await
            .map_err(|e| ProvisionError::Container(format!("starting {image}: {e}")))?;
        let port = container
            .get_host_port_ipv4(5432.tcp())
            .await
            .map_err(|e| ProvisionError::Container(format!("reading the port of {name}: {e}")))?;
        // Removal is the lifeline's job, also when this process dies without unwinding.
        std::mem::forget(container);
        let server = Self {
            name,
            _lifeline: lifeline,
        };
        server.wait_for_tcp(port).await?;
        Ok((server, port))
    }

    /// The official image restarts the server after its init scripts; wait until the
    /// final server accepts TCP connections.
    async fn wait_for_tcp(&self, port: u16) -> Result<(), ProvisionError> {
        let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match groundwork_support::connect::connect(&url).await {
                Ok(client) => match client.simple_query("SELECT 1").await {
                    Ok(_) => return Ok(()),
                    Err(e) if Instant::now() > deadline => {
                        return Err(ProvisionError::Connect { url, source: e });
                    }
                    Err(_) => {}
                },
                Err(e) if Instant::now() > deadline => {
                    return Err(ProvisionError::Connect { url, source: e });
                }
                Err(_) => {}
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }
}
