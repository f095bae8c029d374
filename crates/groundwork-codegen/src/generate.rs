use std::path::{Path, PathBuf};

use cornucopia::config::{Config, Style};

use super::flatten::flatten;
use super::manifest::Manifest;
use groundwork_migrate::connect::{connect, with_database};
use groundwork_migrate::{MigrateError, Migrator, UpOptions};

/// Why code generation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodegenError {
    /// A file could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The migrations did not apply to the scratch database.
    #[error("migrating the code generation database: {0}")]
    Migrate(#[from] MigrateError),
    /// The scratch database could not be created, reached or dropped.
    #[error("code generation database: {}", groundwork_migrate::connect::describe(.0))]
    Database(#[from] tokio_postgres::Error),
    /// cornucopia rejected a query file; the report points at the file and line.
    #[error("query files do not compile against the migrated schema:\n{0}")]
    Query(String),
    /// The generated crate could not be flattened.
    #[error("flattening the generated code: {0}")]
    Flatten(String),
    /// The inputs changed and there is no server to regenerate with.
    #[error(
        "the generated query code (src/generated/cornucopia.rs) is out of date; changed \
         since it was generated: {files}. Regenerating needs PostgreSQL: {cause}",
        files = files.join(", ")
    )]
    Stale {
        /// The input files that changed.
        files: Vec<String>,
        /// Why no server could be had.
        cause: groundwork_provision::ProvisionError,
    },
}

/// A project laid out the groundwork way: `migrations/` and `queries/` at its root,
/// the generated code's committed snapshot in `crates/groundwork/src/generated/`.
#[derive(Clone, Debug)]
pub struct Project {
    root: PathBuf,
    snapshot: PathBuf,
}

/// The module the generated code lives in, inside the including crate.
const MODULE: &str = "generated";

impl Project {
    /// The project whose `Cargo.toml` is in `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        let snapshot = root.join("crates/groundwork/src").join(MODULE);
        Self { root, snapshot }
    }

    /// `migrations/`.
    pub fn migrations_dir(&self) -> PathBuf {
        self.root.join("migrations")
    }

    /// `queries/`.
    pub fn queries_dir(&self) -> PathBuf {
        self.root.join("queries")
    }

    /// `src/generated/cornucopia.rs`, the committed generated code.
    pub fn output_file(&self) -> PathBuf {
        self.snapshot.join("cornucopia.rs")
    }

    /// `src/generated/codegen.lock`, the committed manifest.
    pub fn manifest_file(&self) -> PathBuf {
        self.snapshot.join("codegen.lock")
    }

    /// The manifest of the inputs as they are on disk now.
    pub fn current_manifest(&self) -> Result<Manifest, CodegenError> {
        Manifest::compute(&self.root, &["migrations", "queries"]).map_err(|source| {
            CodegenError::Io {
                action: "hashing inputs under",
                path: self.root.clone(),
                source,
            }
        })
    }

    /// The committed manifest, if present and readable.
    pub fn committed_manifest(&self) -> Option<Manifest> {
        let text = std::fs::read_to_string(self.manifest_file()).ok()?;
        Manifest::parse(&text)
    }

    /// `None` when the committed code matches the inputs; otherwise the input files
    /// that changed (all of them if there is no committed manifest).
    pub fn stale_files(&self) -> Result<Option<Vec<String>>, CodegenError> {
        let current = self.current_manifest()?;
        let committed = self.committed_manifest();
        if self.output_file().is_file()
            && committed
                .as_ref()
                .is_some_and(|c| c.fingerprint == current.fingerprint)
        {
            return Ok(None);
        }
        Ok(Some(match committed {
            Some(committed) => current.changed_files(&committed),
            None => current.files.keys().cloned().collect(),
        }))
    }

    /// Migrates a scratch database on the server at `server_url` (any database on
    /// it), compiles the query files against it and returns the flattened code and
    /// the manifest of the inputs it came from. The scratch database is dropped.
    pub async fn generate(&self, server_url: &str) -> Result<(String, Manifest), CodegenError> {
        let manifest = self.current_manifest()?;
        let migrator = Migrator::from_dir(self.migrations_dir())?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let scratch = format!("groundwork_codegen_{}_{nanos:x}", std::process::id());
        let admin = connect(&with_database(server_url, "postgres")).await?;
        admin
            .batch_execute(&format!("CREATE DATABASE \"{scratch}\""))
            .await?;
        let result = self
            .generate_in(&with_database(server_url, &scratch), &migrator)
            .await;
        let dropped = admin
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS \"{scratch}\" WITH (FORCE)"
            ))
            .await;
        let code = result?;
        dropped?;
        Ok((code, manifest))
    }

    async fn generate_in(&self, url: &str, migrator: &Migrator) -> Result<String, CodegenError> {
        let client = connect(url).await?;
        migrator.up(&client, UpOptions::default()).await?;
        let out = tempfile::tempdir().map_err(|source| CodegenError::Io {
            action: "creating a temporary directory in",
            path: std::env::temp_dir(),
            source,
        })?;
        let mut style = Style::default();
        style.enum_variant_camel_case = true;
        let config = Config::builder()
            .queries(self.queries_dir())
            .destination(out.path())
            .r#async(true)
            .sync(false)
            .derive_traits(vec!["serde::Serialize", "serde::Deserialize"])
            .style(style)
            .build();
        // cornucopia blocks on the client's futures; the connection keeps running on
        // this runtime while the blocking thread waits.
        tokio::task::spawn_blocking(move || cornucopia::gen_live(&client, config))
            .await
            .map_err(|e| CodegenError::Query(e.to_string()))?
            .map_err(|e| CodegenError::Query(e.report()))?;
        let code = flatten(out.path(), MODULE).map_err(CodegenError::Flatten)?;
        Ok(format!(
            "// Generated by `groundwork codegen` (cornucopia {}) from migrations/ and \
             queries/.\n// Do not edit: change the SQL and rebuild.\n\n{code}",
            super::CORNUCOPIA_VERSION
        ))
    }

    /// Writes the generated code and its manifest.
    pub fn write(&self, code: &str, manifest: &Manifest) -> Result<(), CodegenError> {
        let output = self.output_file();
        if let Some(dir) = output.parent() {
            std::fs::create_dir_all(dir).map_err(|source| CodegenError::Io {
                action: "creating",
                path: dir.to_path_buf(),
                source,
            })?;
        }
        write_if_changed(&output, code)?;
        write_if_changed(&self.manifest_file(), &manifest.render())
    }

    /// Regenerates and compares with the committed files; returns the names of the
    /// committed files that differ (empty when current).
    pub async fn check(&self, server_url: &str) -> Result<Vec<PathBuf>, CodegenError> {
        let (code, manifest) = self.generate(server_url).await?;
        let mut stale = Vec::new();
        for (path, expected) in [
            (self.output_file(), code),
            (self.manifest_file(), manifest.render()),
        ] {
            if std::fs::read_to_string(&path).ok().as_deref() != Some(expected.as_str()) {
                stale.push(path);
            }
        }
        Ok(stale)
    }

    /// The project root.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

fn write_if_changed(path: &Path, text: &str) -> Result<(), CodegenError> {
    if std::fs::read_to_string(path).ok().as_deref() == Some(text) {
        return Ok(());
    }
    std::fs::write(path, text).map_err(|source| CodegenError::Io {
        action: "writing",
        path: path.to_path_buf(),
        source,
    })
}
