//! The project root, found by walking up from the working directory, and the `.env`
//! files loaded from it.
//!
//! The root is the nearest directory, from the working directory upwards, that holds a
//! `groundwork.toml` file; failing that, the nearest one that holds a `migrations/`
//! directory. Every command acts on the root's `migrations/`, `queries/`, `schema/` and
//! embedded cluster (`.groundwork/`): the process changes into the root before the
//! command runs, while paths given on the command line stay relative to the directory
//! the user typed them in.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The file that marks a project root explicitly (its contents are not read yet).
pub(crate) const MARKER: &str = "groundwork.toml";

/// The directory whose presence marks a project root when no marker file is found.
const MIGRATIONS: &str = "migrations";

/// Where the command was started and the project it belongs to.
#[derive(Debug)]
pub(crate) struct Project {
    cwd: PathBuf,
    root: Result<PathBuf, NoProjectRoot>,
}

/// No directory from the working directory upwards looks like a project root.
#[derive(Clone, Debug)]
pub(crate) struct NoProjectRoot {
    searched: PathBuf,
}

impl fmt::Display for NoProjectRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no groundwork project in {} or any directory above it: looked for a {MARKER} \
             file or a {MIGRATIONS}/ directory; run the command inside a project, or mark \
             the project's root directory with a {MARKER} file",
            self.searched.display()
        )
    }
}

impl std::error::Error for NoProjectRoot {}

static PROJECT: OnceLock<Project> = OnceLock::new();

/// The project of this process, found on first use. `main` asks first, before the
/// command line is parsed and before the process changes directory.
pub(crate) fn current() -> &'static Project {
    PROJECT.get_or_init(|| {
        let cwd = std::env::current_dir()
            .or_else(|_| std::path::absolute("."))
            .unwrap_or_else(|_| PathBuf::from("."));
        let root = find_root(&cwd).ok_or_else(|| NoProjectRoot {
            searched: cwd.clone(),
        });
        Project { cwd, root }
    })
}

/// The nearest ancestor of `start` (or `start`) with [`MARKER`], else the nearest with
/// a `migrations/` directory.
fn find_root(start: &Path) -> Option<PathBuf> {
    let marked = start.ancestors().find(|dir| dir.join(MARKER).is_file());
    let with_migrations = || start.ancestors().find(|dir| dir.join(MIGRATIONS).is_dir());
    marked.or_else(with_migrations).map(Path::to_path_buf)
}

impl Project {
    /// The project root, or why there is none.
    pub(crate) fn root(&self) -> Result<&Path, NoProjectRoot> {
        self.root.as_deref().map_err(Clone::clone)
    }

    /// Whether the command runs somewhere else than where it was started.
    fn moves(&self) -> bool {
        self.root.as_ref().is_ok_and(|root| *root != self.cwd)
    }

    /// Changes the process into the project root, if there is one.
    pub(crate) fn enter(&self) -> Result<(), Box<dyn std::error::Error>> {
        if let Ok(root) = &self.root {
            std::env::set_current_dir(root)
                .map_err(|e| format!("changing into the project root {}: {e}", root.display()))?;
        }
        Ok(())
    }

    /// Loads `.env` from the project root, then from the working directory. A variable
    /// keeps the first value it gets: the environment's, then the root's `.env`, then the
    /// working directory's.
    ///
    /// Must run before the process starts threads: it sets environment variables.
    pub(crate) fn load_env(&self) -> Result<(), Box<dyn std::error::Error>> {
        let mut dirs: Vec<&Path> = Vec::new();
        if let Ok(root) = &self.root {
            dirs.push(root);
        }
        if !dirs.contains(&self.cwd.as_path()) {
            dirs.push(&self.cwd);
        }
        for dir in dirs {
            let file = dir.join(".env");
            if !file.is_file() {
                continue;
            }
            dotenvy::from_path(&file).map_err(|e| match e {
                dotenvy::Error::LineParse(line, index) => format!(
                    "reading {}: cannot parse {line:?} (at character {index})",
                    file.display()
                ),
                other => format!("reading {}: {other}", file.display()),
            })?;
        }
        Ok(())
    }
}

/// The default for a path option: `name` in the project root (relative when the
/// command runs where it was started, as it then resolves the same).
pub(crate) fn default_path(name: &str) -> PathBuf {
    let project = current();
    match &project.root {
        Ok(root) if project.moves() => root.join(name),
        _ => PathBuf::from(name),
    }
}

/// A clap value parser for path options: a relative path means relative to the
/// directory the command was started in, even though the command runs in the project
/// root. (Defaults pass through here too: [`default_path`]'s are absolute whenever
/// the command moves.)
pub(crate) fn user_path(value: &str) -> Result<PathBuf, String> {
    if value.is_empty() {
        return Err("an empty path names no directory".to_owned());
    }
    let path = PathBuf::from(value);
    let project = current();
    Ok(if path.is_relative() && project.moves() {
        project.cwd.join(path)
    } else {
        path
    })
}

/// Whether `path` is [`default_path`]`(name)` outside any project: the command needs
/// the project root that is missing.
pub(crate) fn needs_missing_root(path: &Path, name: &str) -> Result<(), NoProjectRoot> {
    match current().root() {
        Err(no_root) if path == Path::new(name) => Err(no_root),
        _ => Ok(()),
    }
}

/// `path` made absolute (against the directory the process is in), for messages.
pub(crate) fn shown(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}
