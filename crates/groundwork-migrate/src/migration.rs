use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{MigrateError, NO_TRANSACTION_MARKER};
use groundwork_support::io::io_error;

/// One direction of a migration: a SQL file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Script {
    /// Where the file is.
    pub path: PathBuf,
    /// Its contents.
    pub sql: String,
}

impl Script {
    /// Whether the file opts out of a transaction with [`NO_TRANSACTION_MARKER`] on its
    /// first non-blank line.
    pub fn no_transaction(&self) -> bool {
        self.sql
            .lines()
            .find(|line| !line.trim().is_empty())
            .is_some_and(|line| line.trim() == NO_TRANSACTION_MARKER)
    }
}

/// A migration: its version, name, up script and (if reversible) down script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Migration {
    /// The integer version; migrations apply in ascending order.
    pub version: i64,
    /// The name part of the file name.
    pub name: String,
    /// The `.up.sql` file.
    pub up: Script,
    /// The `.down.sql` file, if there is one.
    pub down: Option<Script>,
}

impl Migration {
    /// SHA-256 of the up file's bytes, as recorded when it is applied.
    pub fn checksum(&self) -> Vec<u8> {
        groundwork_support::hash::sha256([self.up.sql.as_bytes()]).to_vec()
    }

    /// Reads every migration in `dir`, sorted by version. Files that do not end in
    /// `.sql` are ignored.
    pub fn load_dir(dir: &Path) -> Result<Vec<Self>, MigrateError> {
        let entries = std::fs::read_dir(dir).map_err(io_error("reading", dir))?;
        let paths: Vec<PathBuf> = entries
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(io_error("reading", dir))?;
        let mut files = Vec::new();
        for path in paths {
            if path.extension().is_some_and(|e| e == "sql") && path.is_file() {
                let sql = std::fs::read_to_string(&path).map_err(io_error("reading", &path))?;
                files.push((path, sql));
            }
        }
        Self::from_files(files)
    }

    /// The migrations of `files` (path and contents, as [`load_dir`](Self::load_dir)
    /// would read them), sorted by version: for migrations embedded in a binary.
    pub fn from_files(
        files: impl IntoIterator<Item = (PathBuf, String)>,
    ) -> Result<Vec<Self>, MigrateError> {
        let mut ups: BTreeMap<i64, (String, Script)> = BTreeMap::new();
        let mut downs: BTreeMap<i64, Script> = BTreeMap::new();
        let mut files: Vec<(PathBuf, String)> = files.into_iter().collect();
        files.sort();
        for (path, sql) in files {
            let Some(file_name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let (stem, is_down) = if let Some(stem) = file_name.strip_suffix(".down.sql") {
                (stem, true)
            } else if let Some(stem) = file_name.strip_suffix(".up.sql") {
                (stem, false)
            } else {
                (file_name.trim_end_matches(".sql"), false)
            };
            let (version, name) =
                parse_stem(stem).ok_or_else(|| MigrateError::InvalidFileName(path.clone()))?;
            let script = Script {
                path: path.clone(),
                sql,
            };
            let previous = if is_down {
                downs.insert(version, script)
            } else {
                ups.insert(version, (name.to_owned(), script))
                    .map(|(_, s)| s)
            };
            if let Some(previous) = previous {
                return Err(MigrateError::DuplicateVersion {
                    version,
                    first: previous.path,
                    second: path,
                });
            }
        }
        if let Some((_, orphan)) = downs.iter().find(|(v, _)| !ups.contains_key(v)) {
            return Err(MigrateError::DownWithoutUp(orphan.path.clone()));
        }
        Ok(ups
            .into_iter()
            .map(|(version, (name, up))| Self {
                version,
                name,
                up,
                down: downs.remove(&version),
            })
            .collect())
    }
}

fn parse_stem(stem: &str) -> Option<(i64, &str)> {
    let (version, name) = stem.split_once('_').unwrap_or((stem, ""));
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((version.parse().ok()?, name))
}

/// The file-name part of a migration's name: lower case, with every run of characters
/// other than ASCII letters and digits turned into one `_`. A name without any ASCII
/// letter or digit is refused.
pub fn migration_slug(name: &str) -> Result<String, MigrateError> {
    let slug: String = name
        .to_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("_");
    if slug.is_empty() {
        return Err(MigrateError::InvalidName(name.to_owned()));
    }
    Ok(slug)
}

/// Creates `<UTC timestamp>_<name>.up.sql` and `.down.sql` in `dir`, each starting
/// with a comment to complete, and returns their paths. The name is made into a file
/// name by [`migration_slug`].
pub fn new_migration_files(dir: &Path, name: &str) -> Result<(PathBuf, PathBuf), MigrateError> {
    // One line, whatever was typed: the name ends up in a comment.
    let said = name.split_whitespace().collect::<Vec<_>>().join(" ");
    new_migration_files_with(dir, name, |stem| {
        (
            format!("-- Why: {said}\n\n"),
            format!("-- Reverts {stem}.up.sql\n\n"),
        )
    })
}

/// Like [`new_migration_files`], with the up and down files' contents made by
/// `contents` from the migration's file stem, `<version>_<slug>`.
pub fn new_migration_files_with(
    dir: &Path,
    name: &str,
    contents: impl FnOnce(&str) -> (String, String),
) -> Result<(PathBuf, PathBuf), MigrateError> {
    let slug = migration_slug(name)?;
    std::fs::create_dir_all(dir).map_err(io_error("creating", dir))?;
    let existing = Migration::load_dir(dir)?;
    let mut version: i64 = chrono::Utc::now()
        .format("%Y%m%d%H%M%S")
        .to_string()
        .parse()
        .unwrap_or_default();
    // Two migrations created within one second still get distinct, ordered versions.
    if let Some(last) = existing.last()
        && last.version >= version
    {
        version = last.version + 1;
    }
    let stem = format!("{version}_{slug}");
    let up = dir.join(format!("{stem}.up.sql"));
    let down = dir.join(format!("{stem}.down.sql"));
    let (up_sql, down_sql) = contents(&stem);
    std::fs::write(&up, up_sql).map_err(io_error("writing", &up))?;
    std::fs::write(&down, down_sql).map_err(io_error("writing", &down))?;
    Ok((up, down))
}
