use std::path::PathBuf;
use std::str::FromStr;

use super::ProvisionError;

/// Which kind of server to start when no `DATABASE_URL` is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Local binaries if found, otherwise a container.
    #[default]
    Auto,
    /// Local binaries only.
    Local,
    /// A container only.
    Container,
}

impl FromStr for Strategy {
    type Err = ProvisionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(Self::Auto),
            "local" => Ok(Self::Local),
            "container" => Ok(Self::Container),
            _ => Err(ProvisionError::InvalidStrategy(s.to_owned())),
        }
    }
}

/// Provisioning settings, normally read from the environment.
#[derive(Clone, Debug)]
pub struct Settings {
    /// An existing server to use instead of starting one (`DATABASE_URL`).
    pub database_url: Option<String>,
    /// What to start otherwise (`GROUNDWORK_POSTGRES`).
    pub strategy: Strategy,
    /// Container image for the container strategy (`GROUNDWORK_POSTGRES_IMAGE`).
    pub image: String,
    /// Directory of the CLI's persistent cluster (`GROUNDWORK_DATA_DIR`, default
    /// `.groundwork` under the working directory).
    pub data_dir: PathBuf,
}

/// The image used when `GROUNDWORK_POSTGRES_IMAGE` is not set.
pub const DEFAULT_IMAGE: &str = "postgres:15";

impl Settings {
    /// Reads `DATABASE_URL`, `GROUNDWORK_POSTGRES`, `GROUNDWORK_POSTGRES_IMAGE` and
    /// `GROUNDWORK_DATA_DIR`. Empty variables count as unset.
    pub fn from_env() -> Result<Self, ProvisionError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Ok(Self {
            database_url: var("DATABASE_URL"),
            strategy: var("GROUNDWORK_POSTGRES")
                .map(|s| s.parse())
                .transpose()?
                .unwrap_or_default(),
            image: var("GROUNDWORK_POSTGRES_IMAGE").unwrap_or_else(|| DEFAULT_IMAGE.to_owned()),
            data_dir: var("GROUNDWORK_DATA_DIR")
                .map_or_else(|| PathBuf::from(".groundwork"), PathBuf::from),
        })
    }
}
