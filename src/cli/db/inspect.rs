//! What the `db` commands need to know about a server: the database a URL names, the
//! server's address, and whether it answers and the database is migrated.

use std::time::Duration;

use groundwork_support::connect::{connect, describe, with_database};
use tokio_postgres::config::Host;
use tokio_postgres::{Client, Config, NoTls};

/// How long `db status` waits for a server that does not answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The database `url` names (as libpq does: its user's name when it names none).
pub(super) fn database_name(url: &str) -> Result<String, Box<dyn std::error::Error>> {
    let config: Config = url
        .parse()
        .map_err(|e| format!("reading the database URL: {e}"))?;
    config
        .get_dbname()
        .or(config.get_user())
        .map(str::to_owned)
        .ok_or_else(|| "the database URL names neither a database nor a user".into())
}

/// `host:port` of the server `url` names, for messages.
pub(super) fn address(url: &str) -> String {
    let Ok(config) = url.parse::<Config>() else {
        return "the server".to_owned();
    };
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(host)) => host.clone(),
        Some(Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}")
}

/// `name` as an SQL identifier.
pub(super) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A connection to the maintenance database of the server `url` names (`postgres`,
/// else `template1`), for creating and dropping databases.
pub(super) async fn admin(url: &str) -> Result<Client, Box<dyn std::error::Error>> {
    let postgres = with_database(url, "postgres");
    match connect(&postgres).await {
        Ok(client) => Ok(client),
        Err(first) => connect(&with_database(url, "template1"))
            .await
            .map_err(|_| format!("connecting to {}: {}", address(url), describe(&first)).into()),
    }
}

/// What connecting to a database found.
pub(super) enum DatabaseState {
    /// No server answered.
    Unreachable(String),
    /// A server answered but refused the connection or the query (a password, a
    /// privilege).
    Refused(String),
    /// The server has no such database.
    Missing,
    /// Connected; so many migrations are applied, the newest being this version.
    Connected { applied: i64, newest: Option<i64> },
}

impl DatabaseState {
    /// Whether the database exists and has a migration applied.
    pub(super) fn is_migrated(&self) -> bool {
        matches!(self, Self::Connected { applied, .. } if *applied > 0)
    }
}

/// Connects to the database `url` names and reads the migration runner's bookkeeping.
pub(super) async fn inspect(url: &str) -> DatabaseState {
    let mut config: Config = match url.parse() {
        Ok(config) => config,
        Err(e) => return DatabaseState::Refused(format!("reading the database URL: {e}")),
    };
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    let client = match config.connect(NoTls).await {
        Ok((client, connection)) => {
            tokio::spawn(connection);
            client
        }
        Err(e) => {
            return match e.as_db_error() {
                Some(db) if db.code() == &tokio_postgres::error::SqlState::INVALID_CATALOG_NAME => {
                    DatabaseState::Missing
                }
                Some(_) => DatabaseState::Refused(describe(&e)),
                None if is_io(&e) => DatabaseState::Unreachable(describe(&e)),
                None => DatabaseState::Refused(describe(&e)),
            };
        }
    };
    match applied_migrations(&client).await {
        Ok((applied, newest)) => DatabaseState::Connected { applied, newest },
        Err(e) => DatabaseState::Refused(describe(&e)),
    }
}

fn is_io(error: &tokio_postgres::Error) -> bool {
    use std::error::Error as _;
    error
        .source()
        .is_some_and(|source| source.downcast_ref::<std::io::Error>().is_some())
}

/// How many migrations `public.schema_migrations` records, and the newest version.
async fn applied_migrations(client: &Client) -> Result<(i64, Option<i64>), tokio_postgres::Error> {
    let exists: bool = client
        .query_one(
            "SELECT to_regclass('public.schema_migrations') IS NOT NULL",
            &[],
        )
        .await?
        .get(0);
    if !exists {
        return Ok((0, None));
    }
    let row = client
        .query_one(
            "SELECT count(*), max(version) FROM public.schema_migrations",
            &[],
        )
        .await?;
    Ok((row.get(0), row.get(1)))
}
