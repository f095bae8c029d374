use std::path::Path;

use super::container::ContainerServer;
use super::local::{APP_DATABASE, EphemeralCluster, PersistentCluster};
use super::{Binaries, ProvisionError, Settings, Strategy, UrlSource, ensure_dev_roles};
use groundwork_support::connect::with_database;

/// Where a [`Postgres`] came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A URL from the settings (`DATABASE_URL`, `GROUNDWORK_CODEGEN_URL`,
    /// `--database-url`) or [`Postgres::from_url`]: groundwork manages nothing.
    Url,
    /// A cluster started from local binaries.
    Local,
    /// A container.
    Container,
}

enum Handle {
    None,
    Ephemeral(EphemeralCluster),
    Container(ContainerServer),
    Persistent {
        cluster: PersistentCluster,
        stop_on_drop: bool,
        /// Said once, when the cluster was created somewhere other than asked.
        notice: Option<String>,
    },
}

/// A PostgreSQL server to connect to, stopped on drop when groundwork started it for
/// this handle.
pub struct Postgres {
    url: String,
    origin: Origin,
    handle: Handle,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres")
            .field("url", &self.url)
            .field("origin", &self.origin)
            .finish()
    }
}

impl Postgres {
    /// Uses the server at `url`; nothing is started or stopped.
    pub fn from_url(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            origin: Origin::Url,
            handle: Handle::None,
        }
    }

    /// A server for code generation, the schema dump or tests, which make databases of
    /// their own on it: the server at `settings.database_url`, whose role must be able
    /// to create databases ([`ProvisionError::CannotCreateDatabases`] names the URL's
    /// source otherwise), else a throw-away cluster or container that is removed when
    /// this handle is dropped or the process exits.
    pub async fn ephemeral(settings: &Settings) -> Result<Self, ProvisionError> {
        let server = Self::provide(settings, || async {
            let cluster = tokio::task::spawn_blocking(|| {
                let binaries = Binaries::find()?;
                EphemeralCluster::start(&binaries)
            })
            .await
            .map_err(|e| ProvisionError::Local(e.to_string()))??;
            Ok(Self {
                url: format!("postgres://postgres@127.0.0.1:{}/postgres", cluster.port()),
                origin: Origin::Local,
                handle: Handle::Ephemeral(cluster),
            })
        })
        .await?;
        if server.origin == Origin::Url {
            server.require_createdb(settings.url_source).await?;
        }
        Ok(server)
    }

    /// The CLI's server: the settings' URL, else the durable cluster in
    /// `settings.data_dir` (started if needed, and stopped on drop only if this call
    /// started it), else (strategy container) a throw-away container.
    ///
    /// The durable cluster gets its `groundwork` database if it has none, and the
    /// development login roles ([`DevRole`](crate::DevRole)) once the migrations have
    /// made their groups. A `DATABASE_URL` server is left as it is.
    pub async fn persistent(settings: &Settings) -> Result<Self, ProvisionError> {
        let pg = Self::persistent_server(settings).await?;
        if pg.is_persistent() {
            let admin = pg.admin().await?;
            pg.ensure_database(&admin, APP_DATABASE).await?;
            ensure_dev_roles(&admin).await?;
        }
        Ok(pg)
    }

    /// Like [`persistent`](Self::persistent), but makes nothing in the durable
    /// cluster: for commands that create or drop its database themselves. The URL
    /// still names the `groundwork` database, which may not exist.
    pub async fn persistent_server(settings: &Settings) -> Result<Self, ProvisionError> {
        let dir = settings.data_dir.clone();
        Self::provide(settings, || async move {
            let (cluster, start) = tokio::task::spawn_blocking(move || {
                let cluster = PersistentCluster::new(dir)?;
                let start = cluster.start()?;
                Ok::<_, ProvisionError>((cluster, start))
            })
            .await
            .map_err(|e| ProvisionError::Local(e.to_string()))??;
            let notice = if start.created {
                cluster.relocation()
            } else {
                None
            };
            Ok(Self {
                url: cluster.url(start.port),
                origin: Origin::Local,
                handle: Handle::Persistent {
                    cluster,
                    stop_on_drop: start.started,
                    notice,
                },
            })
        })
        .await
    }

    /// The provisioning order: the settings' URL, then `local` unless the strategy is
    /// container, then a container unless the strategy is local.
    async fn provide<F, Fut>(settings: &Settings, local: F) -> Result<Self, ProvisionError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Self, ProvisionError>>,
    {
        if let Some(url) = &settings.database_url {
            return Ok(Self::from_url(url.clone()));
        }
        let mut attempts = Vec::new();
        if settings.strategy != Strategy::Container {
            match local().await {
                Ok(pg) => return Ok(pg),
                Err(e) => attempts.push(e.to_string()),
            }
        }
        if settings.strategy != Strategy::Local {
            match Self::container(settings).await {
                Ok(pg) => return Ok(pg),
                Err(e) => attempts.push(e.to_string()),
            }
        }
        Err(ProvisionError::Unavailable {
            attempts: attempts.join("; "),
            url_source: settings.url_source,
        })
    }

    async fn container(settings: &Settings) -> Result<Self, ProvisionError> {
        let (server, port) = ContainerServer::start(&settings.image).await?;
        Ok(Self {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            origin: Origin::Container,
            handle: Handle::Container(server),
        })
    }

    /// Fails unless the URL's role is a superuser or has CREATEDB, which is what
    /// `CREATE DATABASE` asks (role attributes are not inherited through membership).
    async fn require_createdb(&self, url_source: UrlSource) -> Result<(), ProvisionError> {
        let url_error = |error| ProvisionError::Url { url_source, error };
        let client = groundwork_support::connect::connect(&self.url)
            .await
            .map_err(url_error)?;
        let row = client
            .query_one(
                "SELECT current_user::text, rolsuper OR rolcreatedb \
                 FROM pg_catalog.pg_roles WHERE rolname = current_user",
                &[],
            )
            .await
            .map_err(url_error)?;
        if row.get::<_, bool>(1) {
            return Ok(());
        }
        Err(ProvisionError::CannotCreateDatabases {
            url_source,
            role: row.get(0),
        })
    }

    fn is_persistent(&self) -> bool {
        matches!(self.handle, Handle::Persistent { .. })
    }

    /// A connection to the server's `postgres` maintenance database.
    async fn admin(&self) -> Result<tokio_postgres::Client, ProvisionError> {
        let admin = with_database(&self.url, "postgres");
        groundwork_support::connect::connect(&admin)
            .await
            .map_err(|source| ProvisionError::Connect { url: admin, source })
    }

    async fn ensure_database(
        &self,
        admin: &tokio_postgres::Client,
        name: &str,
    ) -> Result<(), ProvisionError> {
        let failed = |source| ProvisionError::Connect {
            url: with_database(&self.url, "postgres"),
            source,
        };
        let exists = admin
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
            .await
            .map_err(failed)?
            .is_some();
        if !exists {
            admin
                .batch_execute(&format!("CREATE DATABASE \"{name}\""))
                .await
                .map_err(failed)?;
        }
        Ok(())
    }

    /// The connection URL (for a started server: its `postgres` maintenance database,
    /// or the `groundwork` database of the persistent cluster).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL of another database on the same server.
    pub fn database_url(&self, database: &str) -> String {
        with_database(&self.url, database)
    }

    /// Where this server came from.
    pub fn origin(&self) -> Origin {
        self.origin
    }

    /// For an ephemeral local cluster: its directory and postmaster process id.
    pub fn ephemeral_cluster(&self) -> Option<(&Path, i32)> {
        match &self.handle {
            Handle::Ephemeral(cluster) => Some((cluster.root(), cluster.pid())),
            _ => None,
        }
    }

    /// For a container: its name.
    pub fn container_name(&self) -> Option<&str> {
        match &self.handle {
            Handle::Container(server) => Some(server.name()),
            _ => None,
        }
    }

    /// For a persistent cluster this call created somewhere other than the directory
    /// asked for: a sentence saying where and why, to tell the user once.
    pub fn notice(&self) -> Option<&str> {
        match &self.handle {
            Handle::Persistent { notice, .. } => notice.as_deref(),
            _ => None,
        }
    }

    /// Keeps a persistent cluster running after this handle is dropped.
    pub fn keep_running(&mut self) {
        if let Handle::Persistent { stop_on_drop, .. } = &mut self.handle {
            *stop_on_drop = false;
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Handle::Persistent {
            cluster,
            stop_on_drop: true,
            ..
        } = &self.handle
            && let Err(e) = cluster.stop()
        {
            eprintln!(
                "groundwork: stopping the cluster in {}: {e}",
                cluster.dir().display()
            );
        }
    }
}
