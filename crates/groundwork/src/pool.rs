//! A deadpool-postgres pool configured from the environment.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `DATABASE_URL` | (required) | the database to connect to |
//! | `GROUNDWORK_POOL_MAX_SIZE` | 16 | most connections open at once |
//! | `GROUNDWORK_POOL_WAIT_TIMEOUT_MS` | 5000 | how long `get()` waits for a free connection |
//! | `GROUNDWORK_POOL_CREATE_TIMEOUT_MS` | 5000 | how long opening a connection may take |
//! | `GROUNDWORK_POOL_RECYCLE_TIMEOUT_MS` | 5000 | how long checking a returned connection may take |

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

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
    /// deadpool refused the settings.
    #[error("building the pool: {0}")]
    Build(#[source] deadpool_postgres::BuildError),
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
        Ok(config)
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
        Pool::builder(manager)
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
