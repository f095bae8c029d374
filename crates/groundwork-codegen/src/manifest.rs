use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use groundwork_support::hash::sha256_hex;

use super::{CORNUCOPIA_VERSION, SETTINGS};

/// What the generated code was produced from: a hash per input file and one
/// fingerprint over all of them plus the settings and cornucopia version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// SHA-256 over the settings, the cornucopia version and every file below.
    pub fingerprint: String,
    /// Input files (paths relative to the project root, `/`-separated) and their
    /// SHA-256.
    pub files: BTreeMap<String, String>,
}

const HEADER: &str =
    "# Inputs of this generated code; written by `groundwork codegen`, do not edit.";

impl Manifest {
    /// Hashes every file below `root/dir` for each of `dirs`.
    pub fn compute(root: &Path, dirs: &[&str]) -> std::io::Result<Self> {
        let mut files = BTreeMap::new();
        for dir in dirs {
            for (relative, path) in files_below(root, &root.join(dir), "sql")? {
                files.insert(relative, sha256_hex([std::fs::read(&path)?]));
            }
        }
        let parts = [SETTINGS, CORNUCOPIA_VERSION].into_iter().chain(
            files
                .iter()
                .flat_map(|(path, hash)| [path.as_str(), hash.as_str()]),
        );
        Ok(Self {
            fingerprint: sha256_hex(parts),
            files,
        })
    }

    /// The manifest as stored in `codegen.lock`.
    pub fn render(&self) -> String {
        let mut out = format!(
            "{HEADER}\nfingerprint {}\ncornucopia {CORNUCOPIA_VERSION}\n",
            self.fingerprint
        );
        for (path, hash) in &self.files {
            out.push_str(&format!("file {hash} {path}\n"));
        }
        out
    }

    /// Parses `codegen.lock`; `None` if it is not one.
    pub fn parse(text: &str) -> Option<Self> {
        let mut fingerprint = None;
        let mut files = BTreeMap::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            match line.split_once(' ') {
                Some(("fingerprint", value)) => fingerprint = Some(value.to_owned()),
                Some(("file", rest)) => {
                    let (hash, path) = rest.split_once(' ')?;
                    files.insert(path.to_owned(), hash.to_owned());
                }
                _ => {}
            }
        }
        Some(Self {
            fingerprint: fingerprint?,
            files,
        })
    }

    /// Input files that differ between `self` (on disk) and `committed`: added,
    /// changed or removed.
    pub fn changed_files(&self, committed: &Self) -> Vec<String> {
        let mut changed: Vec<String> = self
            .files
            .iter()
            .filter(|(path, hash)| committed.files.get(*path) != Some(hash))
            .map(|(path, _)| path.clone())
            .collect();
        changed.extend(
            committed
                .files
                .keys()
                .filter(|path| !self.files.contains_key(*path))
                .map(|path| format!("{path} (removed)")),
        );
        changed
    }
}

/// Every file with extension `extension` below `dir` (none if `dir` is missing), as
/// `/`-separated paths relative to `base`, with their full paths, sorted.
pub(crate) fn files_below(
    base: &Path,
    dir: &Path,
    extension: &str,
) -> std::io::Result<Vec<(String, PathBuf)>> {
    fn walk(
        base: &Path,
        dir: &Path,
        extension: &str,
        found: &mut Vec<(String, PathBuf)>,
    ) -> std::io::Result<()> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                walk(base, &path, extension, found)?;
            } else if path.extension().is_some_and(|e| e == extension) {
                let relative = path
                    .strip_prefix(base)
                    .unwrap_or(&path)
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                found.push((relative, path));
            }
        }
        Ok(())
    }
    let mut found = Vec::new();
    walk(base, dir, extension, &mut found)?;
    found.sort();
    Ok(found)
}
