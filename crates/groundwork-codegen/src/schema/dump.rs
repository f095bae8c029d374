use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use groundwork_migrate::{Migrator, UpOptions};
use groundwork_provision::Postgres;

use super::check::{FileDifference, compare};
use super::connect::{connect, with_database};
use super::io::io_error;
use super::object::{DATABASE, SchemaObject, group};
use super::{PgDump, SchemaError, toc};

/// The file that holds what belongs to the database rather than to one schema:
/// extensions, and the privileges taken from or given on `pg_catalog`'s functions.
pub const DATABASE_FILE: &str = "database.sql";

/// The schema the migrations build, one file per PostgreSQL schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaDump {
    files: BTreeMap<String, SchemaFile>,
}

/// One file of the dump: `<schema>.sql`, or [`DATABASE_FILE`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaFile {
    name: String,
    pg_dump_major: u32,
    objects: Vec<SchemaObject>,
}

impl SchemaDump {
    /// Migrates a scratch database on `server` with the migrations in `migrations`,
    /// dumps it with the pg_dump [`PgDump::for_server`] finds, and drops it.
    pub async fn generate(migrations: &Path, server: &Postgres) -> Result<Self, SchemaError> {
        let pg_dump = PgDump::for_server(server).await?;
        Self::generate_with(migrations, server.url(), &pg_dump).await
    }

    /// Migrates a scratch database on the server at `server_url` (any database on
    /// it) with the migrations in `migrations`, dumps it with `pg_dump` and drops it.
    pub async fn generate_with(
        migrations: &Path,
        server_url: &str,
        pg_dump: &PgDump,
    ) -> Result<Self, SchemaError> {
        let migrator = Migrator::from_dir(migrations)?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let scratch = format!("groundwork_schema_{}_{nanos:x}", std::process::id());
        let admin = connect(&with_database(server_url, "postgres")).await?;
        admin
            .batch_execute(&format!("CREATE DATABASE \"{scratch}\""))
            .await?;
        let url = with_database(server_url, &scratch);
        let result = async {
            migrator
                .up(&connect(&url).await?, UpOptions::default())
                .await?;
            pg_dump.dump_schema(&url).await
        }
        .await;
        let dropped = admin
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS \"{scratch}\" WITH (FORCE)"
            ))
            .await;
        let output = result?;
        dropped?;
        Self::from_pg_dump(&output, pg_dump.major())
    }

    /// The dump of `output`, the plain-format output of `pg_dump --schema-only` of
    /// major version `pg_dump_major`.
    pub fn from_pg_dump(output: &str, pg_dump_major: u32) -> Result<Self, SchemaError> {
        let files = group(toc::parse(output)?)?
            .into_iter()
            .map(|(stem, objects)| {
                let name = format!("{stem}.sql");
                let file = SchemaFile {
                    name: name.clone(),
                    pg_dump_major,
                    objects,
                };
                (name, file)
            })
            .collect();
        Ok(Self { files })
    }

    /// The files, by name.
    pub fn files(&self) -> impl Iterator<Item = &SchemaFile> {
        self.files.values()
    }

    /// The file called `name` (`forms.sql`), if the dump has it.
    pub fn file(&self, name: &str) -> Option<&SchemaFile> {
        self.files.get(name)
    }

    /// Writes the files into `dir` (created if needed) and removes the `.sql` files
    /// there that are not part of the dump. Returns the files written or removed;
    /// files that already hold their text are left alone.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>, SchemaError> {
        std::fs::create_dir_all(dir).map_err(io_error("creating", dir))?;
        let mut changed = Vec::new();
        for name in sql_files(dir)? {
            if !self.files.contains_key(&name) {
                let path = dir.join(&name);
                std::fs::remove_file(&path).map_err(io_error("removing", &path))?;
                changed.push(path);
            }
        }
        for file in self.files.values() {
            let path = dir.join(&file.name);
            let text = file.render();
            if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                std::fs::write(&path, text).map_err(io_error("writing", &path))?;
                changed.push(path);
            }
        }
        Ok(changed)
    }

    /// Compares the dump with the files in `dir`, writing nothing: what differs,
    /// file by file and object by object (empty when `dir` is current).
    pub fn check(&self, dir: &Path) -> Result<Vec<FileDifference>, SchemaError> {
        let committed = if dir.is_dir() {
            sql_files(dir)?
        } else {
            Vec::new()
        };
        let mut differences = Vec::new();
        for file in self.files.values() {
            let path = dir.join(&file.name);
            if !committed.contains(&file.name) {
                differences.push(FileDifference::Missing { path });
                continue;
            }
            let text = std::fs::read_to_string(&path).map_err(io_error("reading", &path))?;
            let generated = file.render();
            if text != generated {
                let objects = compare(&text, &generated);
                differences.push(FileDifference::Changed { path, objects });
            }
        }
        for name in committed {
            if !self.files.contains_key(&name) {
                differences.push(FileDifference::Extra {
                    path: dir.join(name),
                });
            }
        }
        Ok(differences)
    }
}

impl SchemaFile {
    /// The file name: `<schema>.sql`, or [`DATABASE_FILE`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The schema the file holds; `None` for [`DATABASE_FILE`].
    pub fn schema(&self) -> Option<&str> {
        let stem = self.name.strip_suffix(".sql").unwrap_or(&self.name);
        (stem != DATABASE).then_some(stem)
    }

    /// The objects, in pg_dump's order.
    pub fn objects(&self) -> &[SchemaObject] {
        &self.objects
    }

    /// The file's text: a line saying it is generated, then each object under a
    /// `-- <label>` header, one blank line between objects.
    pub fn render(&self) -> String {
        let mut text = format!(
            "-- Generated by `groundwork schema dump` (pg_dump {}); do not edit: change the \
             migrations and run `cargo run -- schema dump`.\n",
            self.pg_dump_major
        );
        for object in &self.objects {
            text.push_str(&format!("\n-- {}\n{}\n", object.label(), object.sql()));
        }
        text
    }
}

/// The names of the `.sql` files in `dir`, sorted.
fn sql_files(dir: &Path) -> Result<Vec<String>, SchemaError> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io_error("listing", dir))? {
        let entry = entry.map_err(io_error("listing", dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".sql") && entry.path().is_file() {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}
