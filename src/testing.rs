//! [`TestDb`]: a freshly migrated, isolated database for each test.
//!
//! One PostgreSQL server serves the whole test process (`DATABASE_URL`, else an
//! ephemeral local cluster or container, see [`crate::provision`]). The migrations are
//! applied once per server and migration fingerprint, to a template database named
//! after that fingerprint; each test then gets its own `CREATE DATABASE ... TEMPLATE`
//! clone. A clone is dropped when its test passes and kept, with its URL printed, when
//! the test panics.
//!
//! ```no_run
//! # async fn example() {
//! let db = groundwork::testing::TestDb::new().await;
//! let client = db.pool().get().await.unwrap();
//! client.simple_query("SELECT 1").await.unwrap();
//! # }
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use deadpool_postgres::Pool;
use groundwork_core::connect::{connect, describe, with_database};
use groundwork_core::migrate::{Migration, Migrator, UpOptions};
use groundwork_core::provision::{Postgres, Settings};
use sha2::{Digest, Sha256};

use crate::pool::PoolConfig;

/// The migrations of this crate, used unless a builder names others.
pub const DEFAULT_MIGRATIONS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");

/// A database for one test; dropped with the value unless the test panicked.
pub struct TestDb {
    name: String,
    url: String,
    pool: Pool,
    keep: bool,
}

/// How to make a [`TestDb`].
#[derive(Clone, Debug)]
pub struct TestDbBuilder {
    migrations: Option<PathBuf>,
    pool_size: usize,
}

impl Default for TestDbBuilder {
    fn default() -> Self {
        Self {
            migrations: Some(PathBuf::from(DEFAULT_MIGRATIONS)),
            pool_size: 8,
        }
    }
}

impl TestDbBuilder {
    /// Clone a template migrated with the files in `dir`.
    pub fn migrations(mut self, dir: impl Into<PathBuf>) -> Self {
        self.migrations = Some(dir.into());
        self
    }

    /// An empty database: no migrations at all.
    pub fn empty(mut self) -> Self {
        self.migrations = None;
        self
    }

    /// Most pooled connections (default 8).
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size;
        self
    }

    /// Creates the database. Panics with the reason if the server, the template or
    /// the clone cannot be had: in a test that is the clearest report.
    pub async fn build(self) -> TestDb {
        match self.try_build().await {
            Ok(db) => db,
            Err(e) => panic!("groundwork TestDb: {e}"),
        }
    }

    /// Like [`build`](Self::build), returning the reason instead of panicking.
    pub async fn try_build(self) -> Result<TestDb, String> {
        let server = server()?;
        let admin = connect(&server.database_url("postgres"))
            .await
            .map_err(|e| format!("connecting to {}: {e}", server.url()))?;
        let name = format!("gw_test_{}", uuid::Uuid::new_v4().simple());
        let create = match &self.migrations {
            Some(dir) => {
                let template = ensure_template(server, &admin, dir).await?;
                // FILE_COPY (PostgreSQL 15+) copies the files after a checkpoint, which
                // is far cheaper for a small template than WAL-logging every block.
                let strategy = if server_version(&admin).await? >= 150_000 {
                    " STRATEGY FILE_COPY"
                } else {
                    ""
                };
                format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\"{strategy}")
            }
            None => format!("CREATE DATABASE \"{name}\" TEMPLATE template0"),
        };
        admin
            .batch_execute(&create)
            .await
            .map_err(|e| format!("{create}: {e}"))?;
        let url = server.database_url(&name);
        let mut config = PoolConfig::new(url.clone());
        config.max_size = self.pool_size;
        let pool = config.build().map_err(|e| e.to_string())?;
        Ok(TestDb {
            name,
            url,
            pool,
            keep: false,
        })
    }
}

impl TestDb {
    /// A clone of the template migrated with this crate's migrations.
    pub async fn new() -> Self {
        TestDbBuilder::default().build().await
    }

    /// Options: other migrations, an empty database, pool size.
    pub fn builder() -> TestDbBuilder {
        TestDbBuilder::default()
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its connection URL (as the server's superuser).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A pool of connections to it.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// A new, unpooled connection.
    pub async fn client(&self) -> tokio_postgres::Client {
        connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("connecting to {}: {e}", self.url))
    }

    /// Keep the database after the test, even if it passes.
    pub fn keep(&mut self) {
        self.keep = true;
    }

    /// The URL of the shared server's maintenance database.
    pub fn server_url() -> Result<String, String> {
        Ok(server()?.database_url("postgres"))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        self.pool.close();
        if self.keep || std::thread::panicking() {
            eprintln!(
                "groundwork: kept test database {} for inspection: {}{}",
                self.name,
                self.url,
                if server().is_ok_and(|s| s.origin() != groundwork_core::provision::Origin::Url) {
                    " (the server is ephemeral and stops with the test process; set \
                     DATABASE_URL to keep it longer)"
                } else {
                    ""
                }
            );
            return;
        }
        let name = self.name.clone();
        // Drop runs inside the test's runtime; do the async work on a thread of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let admin = connect(&server()?.database_url("postgres"))
                    .await
                    .map_err(|e| describe(&e))?;
                admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await
                    .map_err(|e| describe(&e))
            })
        })
        .join();
        if let Ok(Err(e)) = dropped {
            eprintln!("groundwork: dropping test database {}: {e}", self.name);
        }
    }
}

/// The process's server, started on first use.
fn server() -> Result<&'static Postgres, String> {
    static SERVER: OnceLock<Result<Postgres, String>> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            // Start it on a runtime of its own: the caller's runtime ends with its test.
            std::thread::spawn(|| {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .map_err(|e| e.to_string())?;
                runtime.block_on(async {
                    let settings = Settings::from_env().map_err(|e| e.to_string())?;
                    Postgres::ephemeral(&settings)
                        .await
                        .map_err(|e| e.to_string())
                })
            })
            .join()
            .unwrap_or_else(|_| Err("starting the test server panicked".into()))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The server's `server_version_num`, asked once per process.
async fn server_version(admin: &tokio_postgres::Client) -> Result<i32, String> {
    static VERSION: OnceLock<i32> = OnceLock::new();
    if let Some(version) = VERSION.get() {
        return Ok(*version);
    }
    let row = admin
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .map_err(|e| describe(&e))?;
    Ok(*VERSION.get_or_init(|| row.get(0)))
}

/// The name of the template for the migrations in `dir`, built if it does not exist.
async fn ensure_template(
    server: &Postgres,
    admin: &tokio_postgres::Client,
    dir: &Path,
) -> Result<String, String> {
    // Templates this process has made sure of, by migrations directory: later tests
    // skip reading and hashing the files.
    static READY: OnceLock<Mutex<HashMap<PathBuf, String>>> = OnceLock::new();
    let ready = READY.get_or_init(Default::default);
    if let Some(template) = ready.lock().map_err(|e| e.to_string())?.get(dir) {
        return Ok(template.clone());
    }
    let migrations = Migration::load_dir(dir).map_err(|e| e.to_string())?;
    let template = format!("gw_template_{}", fingerprint(&migrations));
    if !database_exists(admin, &template).await? {
        // Serialise builders across processes sharing the server; poll so that a
        // waiting builder holds no snapshot.
        let key = i64::from_str_radix(&template[template.len() - 15..], 16).unwrap_or(1);
        while !admin
            .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
            .await
            .map_err(|e| describe(&e))?
            .get::<_, bool>(0)
        {
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let built = async {
            if database_exists(admin, &template).await? {
                return Ok(());
            }
            build_template(server, admin, &template, migrations).await
        }
        .await;
        admin
            .query_one("SELECT pg_advisory_unlock($1)", &[&key])
            .await
            .map_err(|e| describe(&e))?;
        built?;
    }
    ready
        .lock()
        .map_err(|e| e.to_string())?
        .insert(dir.to_path_buf(), template.clone());
    Ok(template)
}

async fn database_exists(admin: &tokio_postgres::Client, name: &str) -> Result<bool, String> {
    admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .map(|row| row.is_some())
        .map_err(|e| describe(&e))
}

async fn build_template(
    server: &Postgres,
    admin: &tokio_postgres::Client,
    template: &str,
    migrations: Vec<Migration>,
) -> Result<(), String> {
    let building = format!("{template}_building");
    for sql in [
        format!("DROP DATABASE IF EXISTS \"{building}\" WITH (FORCE)"),
        format!("CREATE DATABASE \"{building}\" TEMPLATE template0"),
    ] {
        admin.batch_execute(&sql).await.map_err(|e| describe(&e))?;
    }
    {
        let client = connect(&with_database(server.url(), &building))
            .await
            .map_err(|e| describe(&e))?;
        Migrator::new(migrations)
            .up(&client, UpOptions::default())
            .await
            .map_err(|e| format!("migrating the test template: {e}"))?;
    }
    // The rename needs the building connection gone; it may still be closing.
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
            &[&building],
        )
        .await
        .map_err(|e| describe(&e))?;
    for sql in [
        format!("ALTER DATABASE \"{building}\" RENAME TO \"{template}\""),
        format!("ALTER DATABASE \"{template}\" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"),
    ] {
        admin.batch_execute(&sql).await.map_err(|e| describe(&e))?;
    }
    Ok(())
}

/// A short hash of every migration's version, name and scripts.
fn fingerprint(migrations: &[Migration]) -> String {
    let mut hasher = Sha256::new();
    for m in migrations {
        hasher.update(m.version.to_le_bytes());
        hasher.update(m.name.as_bytes());
        hasher.update([0]);
        hasher.update(m.up.sql.as_bytes());
        hasher.update([0]);
        if let Some(down) = &m.down {
            hasher.update(down.sql.as_bytes());
        }
        hasher.update([1]);
    }
    hex::encode(&hasher.finalize()[..8])
}
