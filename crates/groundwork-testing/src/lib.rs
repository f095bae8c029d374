//! [`TestDb`]: a freshly migrated, isolated database for each test.
//!
//! One PostgreSQL server serves the whole test process (`DATABASE_URL`, else an
//! ephemeral local cluster or container, see `groundwork_provision`). A `DATABASE_URL`
//! must connect as a role that can create databases and roles (`CREATEDB`,
//! `CREATEROLE`); with one that cannot create databases, such as a service's own login
//! role, every test fails with one line saying so. The migrations are applied once per
//! server and migration fingerprint, to a template database named after that
//! fingerprint; each test then gets its own `CREATE DATABASE ... TEMPLATE` clone. A clone is dropped when its test passes and kept, with its URL printed, when
//! the test panics.
//!
//! Tests connect the way services do. Once per server, `TestDb` makes a login role in
//! each of the application's groups (`groundwork_app`, `groundwork_readonly`,
//! `groundwork_auth`, `groundwork_relay`, `groundwork_worker`, ..., and each per-context
//! service role such as `sales_service`) and hands out a pool per [`DbRole`]; the
//! owner's pool (the server's superuser) is for set-up and catalog checks only.
//! [`TestDb::tenants`] makes organizations with a user each, the way a service signs
//! them up.
//!
//! ```no_run
//! # async fn example() -> Result<(), groundwork::Error> {
//! use groundwork::queries::identity::organizations::organization_get;
//! use groundwork_testing::{DbRole, TestDb};
//! use groundwork::tenant::with_tenant;
//!
//! let db = TestDb::new().await;
//! let [a, _b] = db.tenants().await;
//! let mut client = db.pool(DbRole::App).get().await?;
//! let org = with_tenant(&mut client, a.tenant(), async |tx| {
//!     Ok(organization_get().bind(tx, &a.organization_id).one().await?)
//! })
//! .await?;
//! assert_eq!(org.id, a.organization_id);
//! # Ok(())
//! # }
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use deadpool_postgres::Pool;
use groundwork_migrate::{MigrateError, Migration, Migrator, UpOptions};
use groundwork_provision::{Pgbouncer, PgbouncerSettings, Postgres, ProvisionError, Settings};
use groundwork_support::connect::{connect, describe, with_credentials, with_database};
use groundwork_support::hash::sha256_hex;
use groundwork_support::io::io_error;
use groundwork_support::lock::{LockTimeout, with_session_lock};
use uuid::Uuid;

use groundwork::Error;
use groundwork::pool::{PoolConfig, PoolMode};
use groundwork::tenant::{Tenant, with_tenant};
use groundwork::types::identity::MemberRole;

pub mod fixtures;

use fixtures::{Fixture, MemberFixture, OrganizationFixture, UserFixture};

/// The migrations of this crate, used unless a builder names others.
pub const DEFAULT_MIGRATIONS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations");

/// Why a [`TestDb`] could not be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestDbError {
    /// No server could be found or started (the reason is shared by every test of
    /// the process).
    #[error("the test server: {0}")]
    Server(Arc<ProvisionError>),
    /// The migrations could not be read or did not apply to the template.
    #[error("the test template: {0}")]
    Migrate(#[from] MigrateError),
    /// The server refused or failed a statement.
    #[error("test database: {}", describe(.0))]
    Database(#[from] tokio_postgres::Error),
    /// Another process held the template lock too long.
    #[error(transparent)]
    Lock(#[from] LockTimeout),
    /// A pool could not be configured.
    #[error(transparent)]
    Pool(#[from] Error),
}

/// How long a test process waits for another to finish building a template.
const LOCK_TIMEOUT: Duration = Duration::from_secs(600);

/// Who a test connects as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DbRole {
    /// The server's superuser, which applied the migrations: set-up and catalog
    /// checks only. It bypasses row-level security and holds every privilege.
    Owner,
    /// A login role in `groundwork_app`, as a service connects.
    App,
    /// A login role in `groundwork_readonly`.
    Readonly,
    /// A login role in `groundwork_auth`, as an authentication service connects.
    Auth,
    /// A login role in `groundwork_relay`, as an outbox relay connects.
    Relay,
    /// A login role in `groundwork_worker`, as a job worker connects.
    Worker,
    /// A login role in `groundwork_privacy`, as a data-protection tool connects
    /// (erasure, master-key rotation).
    Privacy,
    /// A login role in `groundwork_monitor`, as a monitoring agent connects.
    Monitor,
    /// A login role in `catalog_service`, as the catalog service connects.
    CatalogService,
    /// A login role in `inventory_service`, as the inventory service connects.
    InventoryService,
    /// A login role in `projects_service`, as the projects service connects.
    ProjectsService,
    /// A login role in `forms_service`, as the forms service connects.
    FormsService,
    /// A login role in `sales_service`, as the sales service connects.
    SalesService,
    /// A login role in `payments_service`, as the payments service connects.
    PaymentsService,
    /// A login role in `analytics_service`, as a read-only analytics service connects.
    AnalyticsService,
}

impl DbRole {
    const ALL: [Self; 15] = [
        Self::Owner,
        Self::App,
        Self::Readonly,
        Self::Auth,
        Self::Relay,
        Self::Worker,
        Self::Privacy,
        Self::Monitor,
        Self::CatalogService,
        Self::InventoryService,
        Self::ProjectsService,
        Self::FormsService,
        Self::SalesService,
        Self::PaymentsService,
        Self::AnalyticsService,
    ];

    /// The per-context service roles, in the order of `docs/SECURITY.md`'s matrix.
    pub const SERVICES: [Self; 7] = [
        Self::CatalogService,
        Self::InventoryService,
        Self::ProjectsService,
        Self::FormsService,
        Self::SalesService,
        Self::PaymentsService,
        Self::AnalyticsService,
    ];

    /// The login role and the group it is a member of (none for the owner).
    fn login(self) -> Option<(&'static str, &'static str)> {
        match self {
            Self::Owner => None,
            Self::App => Some(("groundwork_test_app", "groundwork_app")),
            Self::Readonly => Some(("groundwork_test_readonly", "groundwork_readonly")),
            Self::Auth => Some(("groundwork_test_auth", "groundwork_auth")),
            Self::Relay => Some(("groundwork_test_relay", "groundwork_relay")),
            Self::Worker => Some(("groundwork_test_worker", "groundwork_worker")),
            Self::Privacy => Some(("groundwork_test_privacy", "groundwork_privacy")),
            Self::Monitor => Some(("groundwork_test_monitor", "groundwork_monitor")),
            Self::CatalogService => Some(("groundwork_test_catalog_service", "catalog_service")),
            Self::InventoryService => {
                Some(("groundwork_test_inventory_service", "inventory_service"))
            }
            Self::ProjectsService => Some(("groundwork_test_projects_service", "projects_service")),
            Self::FormsService => Some(("groundwork_test_forms_service", "forms_service")),
            Self::SalesService => Some(("groundwork_test_sales_service", "sales_service")),
            Self::PaymentsService => Some(("groundwork_test_payments_service", "payments_service")),
            Self::AnalyticsService => {
                Some(("groundwork_test_analytics_service", "analytics_service"))
            }
        }
    }

    /// The name of the login role a test connects as (none for the owner).
    pub fn login_name(self) -> Option<&'static str> {
        self.login().map(|(login, _)| login)
    }

    /// The group role the login role is a member of (none for the owner).
    pub fn group_name(self) -> Option<&'static str> {
        self.login().map(|(_, group)| group)
    }
}

/// An organization and its owner, a user, as [`TestDb::tenants`] made them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TestTenant {
    /// The organization.
    pub organization_id: Uuid,
    /// The user who created it and is its owner member.
    pub user_id: Uuid,
}

impl TestTenant {
    /// Acting for the organization and its user.
    pub fn tenant(&self) -> Tenant {
        Tenant::new(self.organization_id, self.user_id)
    }
}

/// A database for one test; dropped with the value unless the test panicked.
pub struct TestDb {
    name: String,
    urls: HashMap<DbRole, String>,
    pools: HashMap<DbRole, Pool>,
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
    pub async fn try_build(self) -> Result<TestDb, TestDbError> {
        let server = server()?;
        let admin = connect(&server.database_url("postgres")).await?;
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
        admin.batch_execute(&create).await?;
        ensure_login_roles(server, &admin).await?;
        let owner_url = server.database_url(&name);
        let mut urls = HashMap::new();
        let mut pools = HashMap::new();
        let pooler = pooler()?;
        for role in DbRole::ALL {
            let url = match role.login() {
                Some((login, _)) => with_credentials(&owner_url, login, &password(server, login)),
                None => owner_url.clone(),
            };
            let mut config = match (pooler, role) {
                (Some(bouncer), role) if role != DbRole::Owner => {
                    PoolConfig::new(through(&url, bouncer)).mode(PoolMode::Transaction)
                }
                _ => PoolConfig::new(url.clone()),
            };
            config.max_size = self.pool_size;
            pools.insert(role, config.build()?);
            urls.insert(role, url);
        }
        Ok(TestDb {
            name,
            urls,
            pools,
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

    /// Its connection URL for `role`, straight to the server (for `LISTEN`, and for
    /// [`client`](Self::client)).
    pub fn url(&self, role: DbRole) -> &str {
        &self.urls[&role]
    }

    /// Its connection URL for `role` through `bouncer`.
    pub fn url_through(&self, role: DbRole, bouncer: &Pgbouncer) -> String {
        through(self.url(role), bouncer)
    }

    /// A pool of connections to it as `role`. Connections open on first use. With
    /// `GROUNDWORK_TEST_POOLER=pgbouncer`, every role's but the owner's connects
    /// through the process's PgBouncer ([`pooler`]) in
    /// [`PoolMode::Transaction`].
    pub fn pool(&self, role: DbRole) -> &Pool {
        &self.pools[&role]
    }

    /// A new, unpooled connection as `role`.
    pub async fn client(&self, role: DbRole) -> tokio_postgres::Client {
        let url = self.url(role);
        connect(url)
            .await
            .unwrap_or_else(|e| panic!("connecting to {url}: {e}"))
    }

    /// The rows of `table` (a name, optionally followed by a `WHERE` clause) as the
    /// owner sees them, past row-level security: for checking what was written, or
    /// that nothing was. Panics if the query fails.
    pub async fn count(&self, table: &str) -> i64 {
        self.pool(DbRole::Owner)
            .get()
            .await
            .unwrap_or_else(|e| panic!("groundwork TestDb: counting {table}: {e}"))
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .unwrap_or_else(|e| panic!("groundwork TestDb: counting {table}: {e}"))
            .get(0)
    }

    /// Runs `work`, an async closure, in a transaction as `role` acting for `tenant`,
    /// committing if it returns `Ok` (see [`with_tenant`]).
    ///
    /// ```no_run
    /// # async fn example(db: groundwork_testing::TestDb) {
    /// use groundwork::queries::identity::organizations::organization_get;
    /// use groundwork_testing::DbRole;
    ///
    /// let [a, b] = db.tenants().await;
    /// let seen = db
    ///     .with_tenant(DbRole::App, a.tenant(), async |tx| {
    ///         Ok(organization_get().bind(tx, &b.organization_id).opt().await?)
    ///     })
    ///     .await
    ///     .unwrap();
    /// assert!(seen.is_none(), "row-level security hides other tenants");
    /// # }
    /// ```
    pub async fn with_tenant<T, F>(&self, role: DbRole, tenant: Tenant, work: F) -> Result<T, Error>
    where
        F: AsyncFnOnce(&deadpool_postgres::Transaction<'_>) -> Result<T, Error>,
    {
        let mut client = self.pool(role).get().await?;
        with_tenant(&mut client, tenant, work).await
    }

    /// `N` organizations with one user each, who owns it, made through the
    /// application role the way a service signs them up: the user registers itself,
    /// then creates the organization and becomes its owner member.
    ///
    /// ```no_run
    /// # async fn example(db: groundwork_testing::TestDb) {
    /// let [a, b] = db.tenants().await;
    /// assert_ne!(a.organization_id, b.organization_id);
    /// # }
    /// ```
    pub async fn tenants<const N: usize>(&self) -> [TestTenant; N] {
        let mut made = Vec::with_capacity(N);
        for _ in 0..N {
            made.push(
                self.try_tenant()
                    .await
                    .unwrap_or_else(|e| panic!("groundwork TestDb: making a tenant: {e}")),
            );
        }
        made.try_into()
            .unwrap_or_else(|_| unreachable!("exactly N tenants were made"))
    }

    async fn try_tenant(&self) -> Result<TestTenant, Error> {
        let user = self.try_insert(UserFixture::default()).await?;
        let organization = self
            .try_insert(OrganizationFixture::default().created_by(user.id))
            .await?;
        self.try_insert(MemberFixture::new(organization.id, user.id).role(MemberRole::Owner))
            .await?;
        Ok(TestTenant {
            organization_id: organization.id,
            user_id: user.id,
        })
    }

    /// Inserts `fixture` through the application role, acting for its tenant; panics
    /// with the reason if the database refuses (see [`fixtures`]).
    pub async fn insert<F: Fixture>(&self, fixture: F) -> F::Row {
        self.try_insert(fixture)
            .await
            .unwrap_or_else(|e| panic!("groundwork TestDb: inserting a fixture: {e}"))
    }

    /// Like [`insert`](Self::insert), returning the database's refusal.
    pub async fn try_insert<F: Fixture>(&self, fixture: F) -> Result<F::Row, Error> {
        let tenant = fixture.tenant();
        self.with_tenant(DbRole::App, tenant, async move |tx| {
            fixture.insert(tx).await
        })
        .await
    }

    /// Keep the database after the test, even if it passes.
    pub fn keep(&mut self) {
        self.keep = true;
    }

    /// The URL of the shared server's maintenance database.
    pub fn server_url() -> Result<String, TestDbError> {
        Ok(server()?.database_url("postgres"))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        for pool in self.pools.values() {
            pool.close();
        }
        if self.keep || std::thread::panicking() {
            eprintln!(
                "groundwork: kept test database {} for inspection: {}{}",
                self.name,
                self.url(DbRole::Owner),
                if server().is_ok_and(|s| s.origin() != groundwork_provision::Origin::Url) {
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
                let admin = connect(
                    &server()
                        .map_err(|e| e.to_string())?
                        .database_url("postgres"),
                )
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

/// `GROUNDWORK_TEST_POOLER=pgbouncer`: the pools of [`TestDb::pool`] (the owner's
/// aside) connect through one PgBouncer in transaction mode per test process, with
/// this many server connections per database and role.
pub const POOLER_POOL_SIZE: u16 = 32;

/// The process's PgBouncer when `GROUNDWORK_TEST_POOLER=pgbouncer`, started on first
/// use; `None` when the variable is unset or empty.
pub fn pooler() -> Result<Option<&'static Pgbouncer>, TestDbError> {
    static POOLER: OnceLock<Result<Option<Pgbouncer>, Arc<ProvisionError>>> = OnceLock::new();
    POOLER
        .get_or_init(
            || match std::env::var("GROUNDWORK_TEST_POOLER").as_deref() {
                Ok("pgbouncer") => start_pgbouncer(POOLER_POOL_SIZE).map(Some),
                Ok("") | Err(_) => Ok(None),
                Ok(other) => Err(Arc::new(ProvisionError::Local(format!(
                    "GROUNDWORK_TEST_POOLER={other:?}: the one pooler known is \"pgbouncer\""
                )))),
            },
        )
        .as_ref()
        .map(Option::as_ref)
        .map_err(|e| TestDbError::Server(e.clone()))
}

/// Starts a PgBouncer in transaction mode (`docs/SCALING.md`'s settings) in front of
/// the test server, with `pool_size` server connections per database and role, that
/// lets in every [`DbRole`]'s login; it stops when dropped.
pub fn start_pgbouncer(pool_size: u16) -> Result<Pgbouncer, Arc<ProvisionError>> {
    let server = server().map_err(|e| match e {
        TestDbError::Server(e) => e,
        other => Arc::new(ProvisionError::Local(other.to_string())),
    })?;
    let config: tokio_postgres::Config = server
        .url()
        .parse()
        .map_err(|e| Arc::new(ProvisionError::Local(format!("the server URL: {e}"))))?;
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        Some(tokio_postgres::config::Host::Unix(dir)) => dir.display().to_string(),
        None => "127.0.0.1".to_owned(),
    };
    let owner = config.get_user().unwrap_or("postgres").to_owned();
    let owner_password = config
        .get_password()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .unwrap_or_default();
    let users = DbRole::ALL
        .iter()
        .filter_map(|role| role.login())
        .map(|(login, _)| (login.to_owned(), password(server, login)))
        .chain([(owner, owner_password)])
        .collect();
    Pgbouncer::start(&PgbouncerSettings {
        server_host: host,
        server_port: config.get_ports().first().copied().unwrap_or(5432),
        users,
        pool_size,
    })
    .map_err(Arc::new)
}

/// `url` with its host and port replaced by `bouncer`'s.
fn through(url: &str, bouncer: &Pgbouncer) -> String {
    let config: tokio_postgres::Config = match url.parse() {
        Ok(config) => config,
        Err(_) => return url.to_owned(),
    };
    let user = config.get_user().unwrap_or_default().to_owned();
    let password = config
        .get_password()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .unwrap_or_default();
    let database = config.get_dbname().unwrap_or_default().to_owned();
    format!(
        "postgres://{user}:{password}@127.0.0.1:{}/{database}",
        bouncer.port()
    )
}

/// The process's server, started on first use.
fn server() -> Result<&'static Postgres, TestDbError> {
    static SERVER: OnceLock<Result<Postgres, Arc<ProvisionError>>> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            // Start it on a runtime of its own: the caller's runtime ends with its test.
            std::thread::spawn(|| {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .map_err(io_error("starting a runtime for", "the test server"))?;
                runtime.block_on(async { Postgres::ephemeral(&Settings::from_env()?).await })
            })
            .join()
            .unwrap_or_else(|_| {
                Err(ProvisionError::Local(
                    "starting the test server panicked".into(),
                ))
            })
            .map_err(Arc::new)
        })
        .as_ref()
        .map_err(|e| TestDbError::Server(e.clone()))
}

/// The server's `server_version_num`, asked once per process.
async fn server_version(admin: &tokio_postgres::Client) -> Result<i32, TestDbError> {
    static VERSION: OnceLock<i32> = OnceLock::new();
    if let Some(version) = VERSION.get() {
        return Ok(*version);
    }
    let row = admin
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await?;
    Ok(*VERSION.get_or_init(|| row.get(0)))
}

/// The name of the template for the migrations in `dir`, built if it does not exist.
async fn ensure_template(
    server: &Postgres,
    admin: &tokio_postgres::Client,
    dir: &Path,
) -> Result<String, TestDbError> {
    // Templates this process has made sure of, by migrations directory: later tests
    // skip reading and hashing the files.
    static READY: OnceLock<Mutex<HashMap<PathBuf, String>>> = OnceLock::new();
    let ready = READY.get_or_init(Default::default);
    if let Some(template) = ready
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(dir)
    {
        return Ok(template.clone());
    }
    let migrations = Migration::load_dir(dir)?;
    let template = format!("gw_template_{}", fingerprint(&migrations));
    if !database_exists(admin, &template).await? {
        let key = i64::from_str_radix(&template[template.len() - 15..], 16).unwrap_or(1);
        with_session_lock(admin, key, LOCK_TIMEOUT, async {
            if database_exists(admin, &template).await? {
                return Ok(());
            }
            build_template(server, admin, &template, migrations).await
        })
        .await?;
    }
    ready
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(dir.to_path_buf(), template.clone());
    Ok(template)
}

/// The login role password for `login` on `server`: derived from the server's own URL
/// (and so from its superuser's password, if it has one), stable across processes.
fn password(server: &Postgres, login: &str) -> String {
    sha256_hex(["groundwork test login", server.url(), login])[..32].to_owned()
}

/// Makes (or refreshes) the login roles of [`DbRole`], once per process. The groups
/// are made by the migrations; until a template has made them there is nothing to do.
async fn ensure_login_roles(
    server: &Postgres,
    admin: &tokio_postgres::Client,
) -> Result<(), TestDbError> {
    static DONE: AtomicBool = AtomicBool::new(false);
    if DONE.load(Ordering::Acquire) {
        return Ok(());
    }
    let logins: Vec<_> = DbRole::ALL.iter().filter_map(|r| r.login()).collect();
    let groups: Vec<&str> = logins.iter().map(|(_, group)| *group).collect();
    // Migrations made by an older set of files may lack a later group (the job
    // worker's): its login is made once a template has made the group.
    let existing: Vec<String> = admin
        .query(
            "SELECT rolname::text FROM pg_roles WHERE rolname = ANY ($1)",
            &[&groups],
        )
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    if existing.is_empty() {
        return Ok(());
    }
    let all_groups_exist = existing.len() == groups.len();
    let logins: Vec<_> = logins
        .into_iter()
        .filter(|(_, group)| existing.iter().any(|g| g == group))
        .collect();
    let mut sql = String::new();
    for (login, group) in logins {
        let password = password(server, login);
        sql.push_str(&format!(
            "DO $$ BEGIN
                 IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{login}') THEN
                     ALTER ROLE {login} LOGIN PASSWORD '{password}';
                 ELSE
                     CREATE ROLE {login} LOGIN PASSWORD '{password}';
                 END IF;
             END $$;
             GRANT {group} TO {login};\n"
        ));
    }
    // Any fixed key other than a template's will do.
    with_session_lock(admin, 0x4757_5445_5354, LOCK_TIMEOUT, async {
        Ok::<_, TestDbError>(admin.batch_execute(&sql).await?)
    })
    .await?;
    if all_groups_exist {
        DONE.store(true, Ordering::Release);
    }
    Ok(())
}

async fn database_exists(admin: &tokio_postgres::Client, name: &str) -> Result<bool, TestDbError> {
    admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .map(|row| row.is_some())
        .map_err(TestDbError::from)
}

async fn build_template(
    server: &Postgres,
    admin: &tokio_postgres::Client,
    template: &str,
    migrations: Vec<Migration>,
) -> Result<(), TestDbError> {
    let building = format!("{template}_building");
    for sql in [
        format!("DROP DATABASE IF EXISTS \"{building}\" WITH (FORCE)"),
        format!("CREATE DATABASE \"{building}\" TEMPLATE template0"),
    ] {
        admin.batch_execute(&sql).await?;
    }
    {
        let client = connect(&with_database(server.url(), &building)).await?;
        Migrator::new(migrations)
            .up(&client, UpOptions::default())
            .await?;
    }
    // The rename needs the building connection gone; it may still be closing.
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
            &[&building],
        )
        .await?;
    for sql in [
        format!("ALTER DATABASE \"{building}\" RENAME TO \"{template}\""),
        format!("ALTER DATABASE \"{template}\" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"),
    ] {
        admin.batch_execute(&sql).await?;
    }
    Ok(())
}

/// A short hash of every migration's version, name and scripts.
fn fingerprint(migrations: &[Migration]) -> String {
    let parts = migrations.iter().flat_map(|m| {
        [
            m.version.to_string(),
            m.name.clone(),
            m.up.sql.clone(),
            m.down.as_ref().map_or_else(String::new, |d| d.sql.clone()),
        ]
    });
    sha256_hex(parts)[..16].to_owned()
}
