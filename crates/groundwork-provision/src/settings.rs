use std::path::PathBuf;
use std::str::FromStr;

use super::ProvisionError;

/// The variable naming the server of the CLI's `migrate` and `db` commands and of the
/// tests: the application's own database URL.
pub const DATABASE_URL: &str = "DATABASE_URL";

/// The variable naming the server that code generation (`build.rs`, `groundwork
/// codegen`) and the schema dump make their scratch databases on. They never read
/// [`DATABASE_URL`], which a service developer exports for the service itself, often
/// as a role that may not create databases.
pub const CODEGEN_URL: &str = "GROUNDWORK_CODEGEN_URL";

/// Which kind of server to start when no server URL is given.
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

/// Where [`Settings::database_url`] comes from (or would come from, when unset), so
/// that messages name what the user set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UrlSource {
    /// An environment variable: [`DATABASE_URL`] or [`CODEGEN_URL`].
    Variable(&'static str),
    /// A command-line option: the CLI's `--database-url`.
    Flag(&'static str),
}

impl UrlSource {
    /// The variable's or the option's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Variable(name) | Self::Flag(name) => name,
        }
    }

    /// What to do to stop using the given URL: unset the variable or leave out the
    /// option.
    pub(crate) fn how_to_drop(self) -> String {
        match self {
            Self::Variable(name) => format!("unset {name}"),
            Self::Flag(name) => format!("leave out {name}"),
        }
    }
}

impl std::fmt::Display for UrlSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Provisioning settings, normally read from the environment.
#[derive(Clone, Debug)]
pub struct Settings {
    /// An existing server to use instead of starting one ([`DATABASE_URL`], or
    /// [`CODEGEN_URL`] for code generation and the schema dump).
    pub database_url: Option<String>,
    /// Where `database_url` comes from, or would come from when unset.
    pub url_source: UrlSource,
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
    /// The settings of the CLI's `migrate` and `db` commands and of the tests: reads
    /// [`DATABASE_URL`], `GROUNDWORK_POSTGRES`, `GROUNDWORK_POSTGRES_IMAGE` and
    /// `GROUNDWORK_DATA_DIR`. Empty variables count as unset.
    pub fn from_env() -> Result<Self, ProvisionError> {
        Self::from_lookup(DATABASE_URL, env_var)
    }

    /// The settings of code generation and the schema dump: like
    /// [`from_env`](Self::from_env), but the server URL is [`CODEGEN_URL`]'s, never
    /// [`DATABASE_URL`]'s; without it they get a throw-away server.
    pub fn codegen_from_env() -> Result<Self, ProvisionError> {
        Self::from_lookup(CODEGEN_URL, env_var)
    }

    /// Reads the settings through `lookup` (a variable's value, `None` when unset),
    /// taking the server URL from the variable `url_variable`. Empty values count as
    /// unset.
    pub fn from_lookup(
        url_variable: &'static str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ProvisionError> {
        let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        Ok(Self {
            database_url: var(url_variable),
            url_source: UrlSource::Variable(url_variable),
            strategy: var("GROUNDWORK_POSTGRES")
                .map(|s| s.parse())
                .transpose()?
                .unwrap_or_default(),
            image: var("GROUNDWORK_POSTGRES_IMAGE").unwrap_or_else(|| DEFAULT_IMAGE.to_owned()),
            data_dir: var("GROUNDWORK_DATA_DIR")
                .map_or_else(|| PathBuf::from(".groundwork"), PathBuf::from),
        })
    }

    /// Uses `url` instead, if given, naming it `source` in messages: the CLI's
    /// `--database-url`.
    pub fn with_url(mut self, url: Option<String>, source: UrlSource) -> Self {
        if let Some(url) = url {
            self.database_url = Some(url);
            self.url_source = source;
        }
        self
    }
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}
