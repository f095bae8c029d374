use groundwork_support::connect::describe;

use super::UrlSource;

/// Why PostgreSQL could not be provided.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProvisionError {
    /// Neither a server URL, local binaries nor a container engine worked.
    #[error(
        "no PostgreSQL server is available ({attempts}); provide one of: \
         {url_source}=postgres://user@host/db (or the CLI's --database-url); \
         PostgreSQL server binaries (initdb, pg_ctl, postgres) on PATH, via pg_config or \
         under /usr/lib/postgresql/<version>/bin; \
         a Docker engine with GROUNDWORK_POSTGRES=container \
         (scripts/container-engine.sh start sets one up)"
    )]
    Unavailable {
        /// What was tried and why each attempt failed.
        attempts: String,
        /// The variable that would have named a server.
        url_source: UrlSource,
    },
    /// The server given by URL is for tests, code generation or the schema dump, which
    /// make databases of their own on it, but its role may not create databases.
    #[error(
        "{url_source} connects as role {role:?}, which cannot create databases: tests, code \
         generation and the schema dump make databases of their own on that server, so the \
         role needs CREATEDB (and CREATEROLE, for the roles the migrations create); grant \
         them, or {} to use a throw-away server",
        url_source.how_to_drop()
    )]
    CannotCreateDatabases {
        /// Where the URL came from.
        url_source: UrlSource,
        /// The role the URL connects as.
        role: String,
    },
    /// The server given by URL could not be reached or asked about its role.
    #[error("connecting to the server {url_source} names: {}", describe(.error))]
    Url {
        /// Where the URL came from.
        url_source: UrlSource,
        /// The driver's error.
        error: tokio_postgres::Error,
    },
    /// `GROUNDWORK_POSTGRES` holds something other than auto, local or container.
    #[error("GROUNDWORK_POSTGRES={0:?} is not one of auto, local, container")]
    InvalidStrategy(String),
    /// The local cluster could not be created or started.
    #[error("local postgres: {0}")]
    Local(String),
    /// The container could not be started.
    #[error("container postgres: {0}")]
    Container(String),
    /// A file or directory operation failed.
    #[error(transparent)]
    Io(#[from] groundwork_support::io::IoError),
    /// The server was started but does not accept connections.
    #[error("connecting to {url}: {}", describe(source))]
    Connect {
        /// The URL (without password) that was tried.
        url: String,
        /// The driver's error.
        source: tokio_postgres::Error,
    },
    /// The development login roles could not be read or made.
    #[error(
        "making the development login roles: {}",
        groundwork_support::connect::describe(.0)
    )]
    DevRoles(#[source] tokio_postgres::Error),
    /// A PostgreSQL client program (`psql`) is not installed where groundwork looks.
    #[error(
        "no {program} found next to the PostgreSQL server binaries, on PATH, via pg_config \
         or under /usr/lib/postgresql/<version>/bin; install PostgreSQL's client programs \
         (Debian: postgresql-client)"
    )]
    ProgramNotFound {
        /// The program's name.
        program: String,
    },
}
