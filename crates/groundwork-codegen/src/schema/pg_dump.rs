use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use groundwork_provision::{Binaries, Origin, Postgres};

use super::SchemaError;
use super::connect::connect;
use super::io::io_error;

/// The migration runner's bookkeeping table: history, not schema, so never dumped.
const BOOKKEEPING_TABLE: &str = "public.schema_migrations";

/// A `pg_dump` program and its major version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgDump {
    path: PathBuf,
    major: u32,
}

impl PgDump {
    /// Finds the pg_dump for `server`, asking it for its version: for a cluster
    /// started from local binaries, the pg_dump next to them comes first; then as in
    /// [`find`](Self::find).
    pub async fn for_server(server: &Postgres) -> Result<Self, SchemaError> {
        let client = connect(&server.database_url("postgres")).await?;
        let version: i32 = client
            .query_one("SELECT current_setting('server_version_num')::int", &[])
            .await?
            .get(0);
        let server_major = u32::try_from(version / 10_000).unwrap_or(0);
        let local = server.origin() == Origin::Local;
        tokio::task::spawn_blocking(move || {
            let bindir = local
                .then(|| Binaries::find().ok())
                .flatten()
                .map(|b| b.bindir);
            Self::find(server_major, bindir.as_deref())
        })
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
    }

    /// Finds a pg_dump that can dump a server of major version `server_major`:
    /// `server_bindir` (the directory the server's own programs came from) first, then
    /// `PATH`, then `pg_config --bindir`, then `/usr/lib/postgresql/<version>/bin`,
    /// newest version first. The first pg_dump of the server's major version wins
    /// (its output is what the committed dump is compared with); failing that, the
    /// oldest newer one (pg_dump reads older servers, not newer ones).
    pub fn find(server_major: u32, server_bindir: Option<&Path>) -> Result<Self, SchemaError> {
        let mut newer: Option<Self> = None;
        let mut older = Vec::new();
        for path in candidates(server_bindir) {
            let Some(major) = major_version(&path) else {
                continue;
            };
            if major == server_major {
                return Ok(Self { path, major });
            }
            if major < server_major {
                older.push((path, major));
            } else if newer.as_ref().is_none_or(|n| major < n.major) {
                newer = Some(Self { path, major });
            }
        }
        newer.ok_or(SchemaError::PgDumpNotFound {
            server_major,
            found: older,
        })
    }

    /// The program.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its major version (15 for pg_dump 15.18).
    pub fn major(&self) -> u32 {
        self.major
    }

    /// The schema of the database at `url` (no data), in pg_dump's plain format,
    /// without the migration runner's bookkeeping table. A password in `url` is
    /// handed over in the environment, not on the command line.
    pub async fn dump_schema(&self, url: &str) -> Result<String, SchemaError> {
        let (url, password) = without_password(url);
        let mut command = tokio::process::Command::new(&self.path);
        command
            .args(["--schema-only", "--encoding=UTF8"])
            .arg(format!("--exclude-table={BOOKKEEPING_TABLE}"))
            .arg(format!("--dbname={url}"))
            .stdin(Stdio::null())
            .kill_on_drop(true);
        if let Some(password) = password {
            command.env("PGPASSWORD", password);
        }
        let out = command
            .output()
            .await
            .map_err(io_error("running", &self.path))?;
        if !out.status.success() {
            return Err(SchemaError::PgDumpFailed {
                path: self.path.clone(),
                status: out.status,
                message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        String::from_utf8(out.stdout)
            .map_err(|e| SchemaError::PgDumpOutput(format!("not UTF-8: {e}")))
    }
}

/// Every `pg_dump` to consider, in order, each once.
fn candidates(server_bindir: Option<&Path>) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = server_bindir.map(Path::to_path_buf).into_iter().collect();
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output()
        && out.status.success()
    {
        dirs.push(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    }
    let mut versioned: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    versioned.sort_by_key(|(version, _)| std::cmp::Reverse(*version));
    dirs.extend(versioned.into_iter().map(|(_, dir)| dir));
    // The same program reached twice (`/bin` linked to `/usr/bin`) counts once.
    let mut seen: Vec<PathBuf> = Vec::new();
    let mut programs: Vec<PathBuf> = Vec::new();
    for dir in dirs {
        let program = dir.join("pg_dump");
        let Ok(real) = std::fs::canonicalize(&program) else {
            continue;
        };
        if real.is_file() && !seen.contains(&real) {
            seen.push(real);
            programs.push(program);
        }
    }
    programs
}

/// The major version `program --version` reports ("pg_dump (PostgreSQL) 15.18 ..."),
/// or `None` when it does not run or says something else.
fn major_version(program: &Path) -> Option<u32> {
    let out = Command::new(program).arg("--version").output().ok()?;
    if !out.status.success() {
        return None;
    }
    parse_major(&String::from_utf8_lossy(&out.stdout))
}

fn parse_major(version: &str) -> Option<u32> {
    let number = version
        .split_whitespace()
        .find(|word| word.starts_with(|c: char| c.is_ascii_digit()))?;
    let digits: String = number.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// `url` without its password, and the password (percent-decoded): for
/// `postgres://user:password@host/db` URLs and `key=value` connection strings.
fn without_password(url: &str) -> (String, Option<OsString>) {
    use std::os::unix::ffi::OsStrExt;
    let password = url
        .parse::<tokio_postgres::Config>()
        .ok()
        .and_then(|config| {
            config
                .get_password()
                .map(|p| std::ffi::OsStr::from_bytes(p).to_owned())
        });
    if password.is_none() {
        return (url.to_owned(), None);
    }
    let stripped = match url.find("://") {
        Some(scheme_end) => {
            let rest = scheme_end + 3;
            let authority_end = url[rest..].find(['/', '?']).map_or(url.len(), |i| rest + i);
            match url[rest..authority_end].rfind('@') {
                Some(at) => {
                    let userinfo = &url[rest..rest + at];
                    let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
                    let query = &url[authority_end..];
                    // A password given as a query parameter goes too.
                    let query = strip_query_password(query);
                    format!(
                        "{}{user}{}{query}",
                        &url[..rest],
                        &url[rest + at..authority_end]
                    )
                }
                None => format!(
                    "{}{}",
                    &url[..authority_end],
                    strip_query_password(&url[authority_end..])
                ),
            }
        }
        None => strip_keyword_password(url),
    };
    (stripped, password)
}

/// `/db?password=x&sslmode=disable` -> `/db?sslmode=disable`.
fn strip_query_password(tail: &str) -> String {
    let Some((path, query)) = tail.split_once('?') else {
        return tail.to_owned();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.starts_with("password="))
        .collect();
    if kept.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", kept.join("&"))
    }
}

/// `host=h password='a b' user=u` -> `host=h user=u`.
fn strip_keyword_password(conninfo: &str) -> String {
    let bytes = conninfo.as_bytes();
    let mut kept: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let start = i;
        let mut quoted = false;
        while i < bytes.len() && (quoted || !bytes[i].is_ascii_whitespace()) {
            match bytes[i] {
                b'\\' => i += 1,
                b'\'' => quoted = !quoted,
                _ => {}
            }
            i += 1;
        }
        let pair = &conninfo[start..i.min(bytes.len())];
        let key = pair.split('=').next().unwrap_or_default().trim();
        if !pair.is_empty() && key != "password" {
            kept.push(pair);
        }
    }
    kept.join(" ")
}

#[cfg(test)]
mod tests {
    use super::{parse_major, without_password};

    #[test]
    fn reads_the_major_version() {
        assert_eq!(
            parse_major("pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n"),
            Some(15)
        );
        assert_eq!(parse_major("pg_dump (PostgreSQL) 18devel"), Some(18));
        assert_eq!(parse_major("something else"), None);
    }

    #[test]
    fn takes_the_password_out_of_the_url() {
        let (url, password) = without_password("postgres://ada:s%40cret@h:5/db?sslmode=disable");
        assert_eq!(url, "postgres://ada@h:5/db?sslmode=disable");
        assert_eq!(password.as_deref(), Some("s@cret".as_ref()));

        let (url, password) = without_password("postgres://ada@h/db?password=pw&sslmode=disable");
        assert_eq!(url, "postgres://ada@h/db?sslmode=disable");
        assert_eq!(password.as_deref(), Some("pw".as_ref()));

        let (url, password) = without_password("host=h password='a b\\'c' user=u dbname=d");
        assert_eq!(url, "host=h user=u dbname=d");
        assert_eq!(password.as_deref(), Some("a b'c".as_ref()));

        let (url, password) = without_password("postgres://postgres@127.0.0.1:5432/postgres");
        assert_eq!(url, "postgres://postgres@127.0.0.1:5432/postgres");
        assert_eq!(password, None);
    }
}
