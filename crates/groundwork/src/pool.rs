//! A deadpool-postgres pool configured from the environment.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `DATABASE_URL` | (required) | the database to connect to |
//! | `GROUNDWORK_POOL_MAX_SIZE` | 16 | most connections open at once |
//! | `GROUNDWORK_POOL_WAIT_TIMEOUT_MS` | 5000 | how long `get()` waits for a free connection |
//! | `GROUNDWORK_POOL_CREATE_TIMEOUT_MS` | 5000 | how long opening a connection may take |
//! | `GROUNDWORK_POOL_RECYCLE_TIMEOUT_MS` | 5000 | how long checking a returned connection may take |
//! | `GROUNDWORK_POOL_MODE` | `direct` | `direct`, or `transaction` behind a transaction pooler such as PgBouncer |
//!
//! Connections are handed out last-returned first, so that a service busy with fewer
//! connections than the pool holds keeps using the same few (their server processes
//! stay warm); the others idle.
//!
//! **Transaction pooling.** Behind PgBouncer in `pool_mode = transaction` each
//! transaction may run on a different server connection, so nothing the server keeps
//! per session may outlive a transaction. In [`PoolMode::Transaction`]:
//!
//! - each new connection learns every enum, domain and composite type of the
//!   database in one transaction when it is opened, so no later statement needs
//!   tokio-postgres's own (named, connection-cached) type look-ups;
//! - the statement cache lives for one transaction: [`transaction`] (and
//!   [`tenant::begin`](crate::tenant::begin)) forget what an earlier transaction
//!   prepared, and [`commit`] closes this transaction's statements before its
//!   `COMMIT`, on the server connection that prepared them;
//! - every operation of the library runs in an explicit transaction.
//!
//! The pooler must reset a server connection after each transaction
//! (`server_reset_query = DISCARD ALL`, `server_reset_query_always = 1`), which also
//! forgets any `LISTEN` a client sent through it; `LISTEN` needs a direct connection
//! (see [`crate::subscription`]). `docs/SCALING.md` lists the settings.
//!
//! **Read replicas.** [`ReplicatedPool`] holds the primary's pool and replicas'
//! (hot standbys): writes return the WAL position of their commit, and a read given
//! it runs on a replica that has replayed it, or on the primary.

mod replicas;

pub use replicas::{InvalidLsn, Lsn, ReplicatedPool, Route};

use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use deadpool_postgres::{
    ClientWrapper, Hook, HookError, Manager, ManagerConfig, Pool, QueueMode, RecyclingMethod,
    Runtime, StatementCache, Transaction,
};
use tokio_postgres::types::{Kind, Type};
use tokio_postgres::{NoTls, SimpleQueryMessage};

use crate::Error;

/// Why the pool could not be configured.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `DATABASE_URL` is not set (or empty).
    #[error("DATABASE_URL is not set")]
    MissingUrl,
    /// The database URL does not parse.
    #[error("the database URL does not parse: {0}")]
    InvalidUrl(#[source] tokio_postgres::Error),
    /// A variable that holds a number holds something else.
    #[error("{variable}={value:?} is not a whole number")]
    NotANumber {
        /// The variable.
        variable: &'static str,
        /// What it holds.
        value: String,
    },
    /// `GROUNDWORK_POOL_MAX_SIZE` is 0.
    #[error("GROUNDWORK_POOL_MAX_SIZE must be at least 1")]
    EmptyPool,
    /// `GROUNDWORK_POOL_MODE` is neither `direct` nor `transaction`.
    #[error("GROUNDWORK_POOL_MODE={0:?} is neither \"direct\" nor \"transaction\"")]
    UnknownMode(String),
    /// deadpool refused the settings.
    #[error("building the pool: {0}")]
    Build(#[source] deadpool_postgres::BuildError),
}

/// How the pool's connections reach the server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoolMode {
    /// Each connection is a server session of its own (the default): statements are
    /// prepared once per connection and cached.
    #[default]
    Direct,
    /// Through a pooler in transaction mode (PgBouncer's `pool_mode = transaction`):
    /// nothing session-level outlives a transaction (see the module documentation).
    Transaction,
}

impl std::str::FromStr for PoolMode {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "direct" => Ok(Self::Direct),
            "transaction" => Ok(Self::Transaction),
            other => Err(ConfigError::UnknownMode(other.to_owned())),
        }
    }
}

/// Pool settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    /// The database URL.
    pub url: String,
    /// Most connections open at once.
    pub max_size: usize,
    /// How long `get()` waits for a free connection.
    pub wait_timeout: Duration,
    /// How long opening a connection may take.
    pub create_timeout: Duration,
    /// How long checking a returned connection may take.
    pub recycle_timeout: Duration,
    /// Direct connections, or through a transaction pooler.
    pub mode: PoolMode,
}

impl PoolConfig {
    /// Settings for `url` with the defaults above.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            max_size: 16,
            wait_timeout: Duration::from_secs(5),
            create_timeout: Duration::from_secs(5),
            recycle_timeout: Duration::from_secs(5),
            mode: PoolMode::Direct,
        }
    }

    /// Reads the variables in the module table.
    pub fn from_env() -> Result<Self, Error> {
        let url = std::env::var("DATABASE_URL")
            .ok()
            .filter(|v| !v.trim().is_empty())
            .ok_or(ConfigError::MissingUrl)?;
        let mut config = Self::new(url);
        if let Some(n) = env_number("GROUNDWORK_POOL_MAX_SIZE")? {
            config.max_size = usize::try_from(n)
                .ok()
                .filter(|n| *n > 0)
                .ok_or(ConfigError::EmptyPool)?;
        }
        for (name, slot) in [
            ("GROUNDWORK_POOL_WAIT_TIMEOUT_MS", &mut config.wait_timeout),
            (
                "GROUNDWORK_POOL_CREATE_TIMEOUT_MS",
                &mut config.create_timeout,
            ),
            (
                "GROUNDWORK_POOL_RECYCLE_TIMEOUT_MS",
                &mut config.recycle_timeout,
            ),
        ] {
            if let Some(ms) = env_number(name)? {
                *slot = Duration::from_millis(ms);
            }
        }
        if let Ok(mode) = std::env::var("GROUNDWORK_POOL_MODE")
            && !mode.trim().is_empty()
        {
            config.mode = mode.parse()?;
        }
        Ok(config)
    }

    /// The same settings in `mode`.
    pub fn mode(mut self, mode: PoolMode) -> Self {
        self.mode = mode;
        self
    }

    /// Builds the pool; connections open lazily on first use.
    pub fn build(&self) -> Result<Pool, Error> {
        let pg: tokio_postgres::Config = self.url.parse().map_err(ConfigError::InvalidUrl)?;
        let manager = Manager::from_config(
            pg,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let mut builder = Pool::builder(manager);
        if self.mode == PoolMode::Transaction {
            builder = builder.post_create(Hook::async_fn(|client, _| {
                Box::pin(async move { prepare_for_transaction_pooling(client).await })
            }));
        }
        builder
            // The connection returned last is handed out first: a service that needs
            // fewer connections than it has keeps working on the same few, whose server
            // processes stay warm in the CPU's caches. Handed out in turn, eight idle
            // connections made one task's event-store decisions a quarter slower.
            .queue_mode(QueueMode::Lifo)
            .max_size(self.max_size)
            .wait_timeout(Some(self.wait_timeout))
            .create_timeout(Some(self.create_timeout))
            .recycle_timeout(Some(self.recycle_timeout))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| ConfigError::Build(e).into())
    }
}

fn env_number(name: &'static str) -> Result<Option<u64>, ConfigError> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => {
            v.trim()
                .parse()
                .map(Some)
                .map_err(|_| ConfigError::NotANumber {
                    variable: name,
                    value: v.clone(),
                })
        }
        _ => Ok(None),
    }
}

/// A pool for `DATABASE_URL` with the settings from the environment.
pub fn from_env() -> Result<Pool, Error> {
    PoolConfig::from_env()?.build()
}

/// The statement caches of connections made for transaction pooling.
static TRANSACTION_POOLED: Mutex<Vec<Weak<StatementCache>>> = Mutex::new(Vec::new());

pub(crate) fn is_transaction_pooled(cache: &Arc<StatementCache>) -> bool {
    TRANSACTION_POOLED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .any(|known| std::ptr::eq(known.as_ptr(), Arc::as_ptr(cache)))
}

/// Lists the database's own types (enums, domains, composite types, base types of
/// extensions, and their arrays; not the row types of tables).
const TYPE_LIST: &str = "SELECT t.oid FROM pg_catalog.pg_type t \
     JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace \
     LEFT JOIN pg_catalog.pg_type e ON e.oid = t.typelem AND t.typcategory = 'A' \
     JOIN pg_catalog.pg_type o ON o.oid = coalesce(e.oid, t.oid) \
     LEFT JOIN pg_catalog.pg_class c ON c.oid = o.typrelid \
     WHERE n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%' \
     AND o.typtype <> 'p' AND (c.oid IS NULL OR c.relkind = 'c')";

/// A statement that takes one parameter of each listed type and uses none: preparing
/// it makes tokio-postgres look every type up.
const TYPE_WARM: &str = "SELECT 1";

/// Readies a new connection for a transaction pooler: in one transaction, every type
/// of the database is looked up and cached on the client, then the connection is
/// marked so that its statements live one transaction each.
async fn prepare_for_transaction_pooling(client: &mut ClientWrapper) -> Result<(), HookError> {
    warm_types(client).await.map_err(HookError::Backend)?;
    let mut known = TRANSACTION_POOLED
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    known.retain(|cache| cache.strong_count() > 0);
    known.push(Arc::downgrade(&client.statement_cache));
    Ok(())
}

async fn warm_types(client: &mut ClientWrapper) -> Result<(), tokio_postgres::Error> {
    let tx = client.transaction().await?;
    let oids: Vec<u32> = tx
        .query(TYPE_LIST, &[])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let types: Vec<Type> = oids
        .iter()
        .map(|oid| Type::new(String::new(), *oid, Kind::Pseudo, String::new()))
        .collect();
    drop(tx.prepare_typed(TYPE_WARM, &types).await?);
    tx.commit().await
}

/// Begins a transaction on a pooled connection, as every operation of the library
/// does. In [`PoolMode::Transaction`] it first forgets the statements an earlier
/// transaction prepared: they may not exist on the server connection this one gets.
pub async fn transaction(client: &mut deadpool_postgres::Client) -> Result<Transaction<'_>, Error> {
    forget_statements(&client.statement_cache);
    Ok(client.transaction().await?)
}

/// Commits `tx`. In [`PoolMode::Transaction`] the statements it prepared are closed
/// first, inside the transaction, so that none outlives it on the server connection.
pub async fn commit(tx: Transaction<'_>) -> Result<(), Error> {
    forget_statements(&tx.statement_cache);
    Ok(tx.commit().await?)
}

/// Runs `work` in a transaction on a connection from `pool` and commits it if `work`
/// returns `Ok`: how the library's own statements that act for no tenant run.
#[cfg(feature = "jobs")]
pub(crate) async fn in_transaction<T, F>(pool: &Pool, work: F) -> Result<T, Error>
where
    F: AsyncFnOnce(&Transaction<'_>) -> Result<T, Error>,
{
    let mut client = pool.get().await?;
    let tx = transaction(&mut client).await?;
    let value = work(&tx).await?;
    commit(tx).await?;
    Ok(value)
}

/// Drops a transaction-pooled connection's cached statements (each sends its
/// `Close` ahead of whatever the client sends next); a no-op on direct connections.
pub(crate) fn forget_statements(cache: &Arc<StatementCache>) {
    if cache.size() > 0 && is_transaction_pooled(cache) {
        cache.clear();
    }
}

/// Sends `LISTEN` for `channel` on `client` and checks that it holds: the server
/// session that took it must be the one that answers the next statement, and still
/// be listening. Through a transaction pooler the next statement may reach another
/// server connection, and the pooler's reset (`DISCARD ALL`) ends the `LISTEN` when
/// the statement's transaction ends: either way it is refused with
/// [`Error::ListenNeedsDirectConnection`], since notifications would reach whichever
/// client next gets that server connection rather than this one.
///
/// The channel name must need no quoting beyond double quotes (the library's are
/// letters, digits and underscores).
pub(crate) async fn listen(client: &tokio_postgres::Client, channel: &str) -> Result<(), Error> {
    let first = session_of(client, &format!("LISTEN \"{channel}\"; {SESSION}")).await?;
    let then = session_of(client, SESSION).await?;
    let holds = first.0.is_some()
        && first.0 == then.0
        && then.1.iter().any(|listening| listening == channel);
    if holds {
        Ok(())
    } else {
        Err(Error::ListenNeedsDirectConnection {
            channel: channel.to_owned(),
        })
    }
}

/// The server process that answers, and the channels it listens on (a row with none
/// when it listens on nothing; a `LISTEN` counts once its transaction has committed).
const SESSION: &str = "SELECT pg_backend_pid()::text, c \
     FROM (SELECT) AS session LEFT JOIN pg_listening_channels() AS c ON true";

async fn session_of(
    client: &tokio_postgres::Client,
    statements: &str,
) -> Result<(Option<String>, Vec<String>), Error> {
    let mut pid = None;
    let mut channels = Vec::new();
    for message in client.simple_query(statements).await? {
        if let SimpleQueryMessage::Row(row) = message {
            pid = row.get(0).map(str::to_owned);
            channels.extend(row.get(1).map(str::to_owned));
        }
    }
    Ok((pid, channels))
}
