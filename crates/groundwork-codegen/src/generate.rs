use std::path::{Path, PathBuf};

use cornucopia::config::{Config, Style};

use super::docs::QueryDocs;
use super::manifest::{Manifest, files_below};
use super::split::{GeneratedCode, split};
use groundwork_migrate::{MigrateError, Migrator, UpOptions};
use groundwork_support::connect::{connect, with_database};
use groundwork_support::io::{IoError, io_error};

/// Why code generation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodegenError {
    /// A file could not be read or written.
    #[error(transparent)]
    Io(#[from] IoError),
    /// The migrations did not apply to the scratch database.
    #[error("migrating the code generation database: {0}")]
    Migrate(#[from] MigrateError),
    /// The scratch database could not be created, reached or dropped.
    #[error("code generation database: {}", groundwork_support::connect::describe(.0))]
    Database(#[from] tokio_postgres::Error),
    /// cornucopia rejected a query file; the report points at the file and line.
    #[error("query files do not compile against the migrated schema:\n{0}")]
    Query(String),
    /// The generated crate could not be split into files.
    #[error("splitting the generated code into files: {0}")]
    Split(String),
    /// The inputs changed and there is no server to regenerate with.
    #[error(
        "the generated query code is out of date; changed since the snapshot was made: \
         {files}. Regenerating needs PostgreSQL: {cause}",
        files = files.join(", ")
    )]
    Stale {
        /// The input files that changed.
        files: Vec<String>,
        /// Why no server could be had.
        cause: groundwork_provision::ProvisionError,
    },
    /// The inputs changed and the build may not regenerate (`GROUNDWORK_OFFLINE`).
    #[error(
        "the generated query code snapshot is out of date and GROUNDWORK_OFFLINE is set; \
         changed since the snapshot was made: {files}. Run `cargo run -- codegen` with a \
         database reachable and commit crates/groundwork/src/generated",
        files = files.join(", ")
    )]
    Offline {
        /// The input files that changed.
        files: Vec<String>,
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

/// The snapshot's manifest file.
const MANIFEST: &str = "codegen.lock";

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

    /// The committed snapshot of the generated code (`mod.rs` and the files it
    /// includes).
    pub fn snapshot_dir(&self) -> &Path {
        &self.snapshot
    }

    /// The snapshot's `codegen.lock`, the manifest of the inputs it was made from.
    pub fn manifest_file(&self) -> PathBuf {
        self.snapshot.join(MANIFEST)
    }

    /// The manifest of the inputs as they are on disk now.
    pub fn current_manifest(&self) -> Result<Manifest, CodegenError> {
        Ok(Manifest::compute(&self.root, &["migrations", "queries"])
            .map_err(io_error("hashing inputs under", &self.root))?)
    }

    /// The committed manifest, if present and readable.
    pub fn committed_manifest(&self) -> Option<Manifest> {
        let text = std::fs::read_to_string(self.manifest_file()).ok()?;
        Manifest::parse(&text)
    }

    /// `None` when the snapshot matches the inputs; otherwise the input files that
    /// changed (all of them if there is no snapshot).
    pub fn stale_files(&self) -> Result<Option<Vec<String>>, CodegenError> {
        let current = self.current_manifest()?;
        let committed = self.committed_manifest();
        if self.snapshot.join("mod.rs").is_file()
            && committed
                .as_ref()
                .is_some_and(|c| c.fingerprint == current.fingerprint)
        {
            return Ok(None);
        }
        let mut changed = match committed {
            Some(committed) => current.changed_files(&committed),
            None => current.files.keys().cloned().collect(),
        };
        if changed.is_empty() {
            changed.push("the code generation settings or cornucopia version".to_owned());
        }
        Ok(Some(changed))
    }

    /// Migrates a scratch database on the server at `server_url` (any database on
    /// it), compiles the query files against it and returns the code and the
    /// manifest of the inputs it came from. The scratch database is dropped.
    pub async fn generate(
        &self,
        server_url: &str,
    ) -> Result<(GeneratedCode, Manifest), CodegenError> {
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

    async fn generate_in(
        &self,
        url: &str,
        migrator: &Migrator,
    ) -> Result<GeneratedCode, CodegenError> {
        let client = connect(url).await?;
        migrator.up(&client, UpOptions::default()).await?;
        let out = tempfile::tempdir().map_err(io_error(
            "creating a temporary directory in",
            std::env::temp_dir(),
        ))?;
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
            .map_err(|e| CodegenError::Query(self.relative(&e.report())))?;
        let header = format!(
            "// Generated by `groundwork codegen` (cornucopia {}) from migrations/ and \
             queries/.\n// Do not edit: change the SQL and run `cargo run -- codegen`.\n\n",
            super::CORNUCOPIA_VERSION
        );
        let docs = QueryDocs::read(&self.root)?;
        split(out.path(), MODULE, &header, &docs).map_err(CodegenError::Split)
    }

    /// `text` (cornucopia's report) with the paths below the project root made
    /// relative to it, as cargo prints paths: `queries/identity/users.sql:3:8`.
    fn relative(&self, text: &str) -> String {
        if !self.root.is_absolute() {
            return text.to_owned();
        }
        let prefix = format!("{}/", self.root.display());
        text.replace(&prefix, "")
    }

    /// Writes `code` into `dir` (the snapshot, or a build's `OUT_DIR`), removing
    /// generated files that are no longer part of it. Returns the files it changed,
    /// relative to `dir`, those removed marked `(removed)`.
    pub fn write_code(dir: &Path, code: &GeneratedCode) -> Result<Vec<String>, CodegenError> {
        let mut changed = Vec::new();
        for stale in existing_code(dir)? {
            if !code.files.contains_key(&stale) {
                let path = dir.join(&stale);
                std::fs::remove_file(&path).map_err(io_error("removing", &path))?;
                changed.push(format!("{stale} (removed)"));
            }
        }
        for (name, text) in &code.files {
            let path = dir.join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(io_error("creating", parent))?;
            }
            if write_if_changed(&path, text)? {
                changed.push(name.clone());
            }
        }
        changed.sort();
        Ok(changed)
    }

    /// Writes the snapshot: the code and its manifest. Returns the files it changed,
    /// relative to the snapshot's directory (see [`write_code`](Self::write_code)).
    pub fn write_snapshot(
        &self,
        code: &GeneratedCode,
        manifest: &Manifest,
    ) -> Result<Vec<String>, CodegenError> {
        let mut changed = Self::write_code(&self.snapshot, code)?;
        if write_if_changed(&self.manifest_file(), &manifest.render())? {
            changed.push(MANIFEST.to_owned());
        }
        Ok(changed)
    }

    /// Regenerates and compares with the snapshot; returns the snapshot's files that
    /// differ, are missing or are left over (empty when current).
    pub async fn check(&self, server_url: &str) -> Result<Vec<PathBuf>, CodegenError> {
        let (code, manifest) = self.generate(server_url).await?;
        let mut stale: Vec<PathBuf> = code
            .files
            .iter()
            .map(|(name, text)| (self.snapshot.join(name), text))
            .filter(|(path, text)| std::fs::read_to_string(path).ok().as_deref() != Some(text))
            .map(|(path, _)| path)
            .collect();
        stale.extend(
            existing_code(&self.snapshot)?
                .into_iter()
                .filter(|name| !code.files.contains_key(name))
                .map(|name| self.snapshot.join(name)),
        );
        if std::fs::read_to_string(self.manifest_file()).ok() != Some(manifest.render()) {
            stale.push(self.manifest_file());
        }
        Ok(stale)
    }

    /// The project root.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// The `.rs` files below `dir`, relative and `/`-separated.
fn existing_code(dir: &Path) -> Result<Vec<String>, CodegenError> {
    Ok(files_below(dir, dir, "rs")
        .map_err(io_error("listing", dir))?
        .into_iter()
        .map(|(relative, _)| relative)
        .collect())
}

/// Writes `text` to `path` unless it holds it already; says whether it wrote.
fn write_if_changed(path: &Path, text: &str) -> Result<bool, CodegenError> {
    if std::fs::read_to_string(path).ok().as_deref() == Some(text) {
        return Ok(false);
    }
    std::fs::write(path, text).map_err(io_error("writing", path))?;
    Ok(true)
}
