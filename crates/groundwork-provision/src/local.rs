//! Clusters run from PostgreSQL server binaries on this machine.

use std::ffi::CString;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use groundwork_support::io::io_error;

use super::lifeline::Lifeline;
use super::{EPHEMERAL_DIR_PREFIX, ProvisionError};

/// The directory holding `initdb`, `pg_ctl` and `postgres`.
#[derive(Clone, Debug)]
pub struct Binaries {
    /// The directory, with symbolic links resolved.
    pub bindir: PathBuf,
}

const TOOLS: [&str; 3] = ["initdb", "pg_ctl", "postgres"];

impl Binaries {
    /// Finds the server binaries: `PATH` first, then `pg_config --bindir`, then
    /// `/usr/lib/postgresql/<version>/bin`, newest version first.
    pub fn find() -> Result<Self, ProvisionError> {
        search_dirs()
            .into_iter()
            .find(|dir| has_server(dir))
            .map(|dir| Self {
                bindir: resolve_server_dir(&dir),
            })
            .ok_or_else(|| {
                ProvisionError::Local(
                    "no initdb, pg_ctl and postgres found on PATH, via pg_config or under \
                     /usr/lib/postgresql"
                        .into(),
                )
            })
    }

    /// Finds the client program `name` (`psql`): next to the server binaries that
    /// [`find`](Self::find) picks, else in the first directory it searches that has
    /// one.
    pub fn find_program(name: &str) -> Result<PathBuf, ProvisionError> {
        let dirs = search_dirs();
        let server = dirs
            .iter()
            .find(|dir| has_server(dir))
            .map(|dir| resolve_server_dir(dir));
        server
            .into_iter()
            .chain(dirs)
            .map(|dir| dir.join(name))
            .find(|program| program.is_file())
            .ok_or_else(|| ProvisionError::ProgramNotFound {
                program: name.to_owned(),
            })
    }

    fn tool(&self, name: &str) -> PathBuf {
        self.bindir.join(name)
    }

    /// Whether the server can load `pg_stat_statements` (PostgreSQL's contrib module,
    /// which `ops.get_slow_queries` reads): its library is in the server's library
    /// directory (`pg_config --pkglibdir` next to the server, else `../lib`).
    pub fn has_pg_stat_statements(&self) -> bool {
        let pkglibdir = Command::new(self.tool("pg_config"))
            .arg("--pkglibdir")
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
        pkglibdir
            .into_iter()
            .chain(self.bindir.parent().map(|dir| dir.join("lib")))
            .any(|dir| dir.join("pg_stat_statements.so").is_file())
    }

    /// `shared_preload_libraries` for a new cluster: `pg_stat_statements` when the
    /// server has it, so that its statistics are collected from the start.
    fn preload_libraries(&self) -> Option<&'static str> {
        self.has_pg_stat_statements()
            .then_some("shared_preload_libraries=pg_stat_statements")
    }
}

/// Where PostgreSQL's programs are looked for, in order: `PATH`, `pg_config --bindir`,
/// then `/usr/lib/postgresql/<version>/bin`, newest version first.
fn search_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect())
        .unwrap_or_default();
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
    dirs
}

/// `dir` with links such as /usr/local/bin/postgres resolved, so that the server finds
/// its share directory.
fn resolve_server_dir(dir: &Path) -> PathBuf {
    std::fs::canonicalize(dir.join("postgres"))
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| dir.to_path_buf())
}

/// Whether `dir` holds every server program.
fn has_server(dir: &Path) -> bool {
    TOOLS.iter().all(|tool| dir.join(tool).is_file())
}

/// The unprivileged account the server runs as when this process is root.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RunAs {
    uid: u32,
    gid: u32,
}

impl RunAs {
    /// `None` when not root; the `postgres` user (or `GROUNDWORK_PG_USER`) when root.
    pub(crate) fn detect() -> Result<Option<Self>, ProvisionError> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Ok(None);
        }
        let name = std::env::var("GROUNDWORK_PG_USER").unwrap_or_else(|_| "postgres".into());
        let c_name = CString::new(name.clone())
            .map_err(|_| ProvisionError::Local(format!("invalid user name {name:?}")))?;
        // SAFETY: c_name is a valid NUL-terminated string; the returned record is read
        // before any other call that could overwrite it.
        let entry = unsafe { libc::getpwnam(c_name.as_ptr()) };
        if entry.is_null() {
            return Err(ProvisionError::Local(format!(
                "running as root, and there is no {name:?} user to run PostgreSQL as \
                 (initdb and postgres refuse to run as root)"
            )));
        }
        // SAFETY: entry is non-null and points to a passwd record.
        let (uid, gid) = unsafe { ((*entry).pw_uid, (*entry).pw_gid) };
        Ok(Some(Self { uid, gid }))
    }

    fn apply(self, command: &mut Command) {
        command.uid(self.uid).gid(self.gid);
    }

    pub(crate) fn own(self, path: &Path) -> Result<(), ProvisionError> {
        std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid))
            .map_err(io_error("changing the owner of", path))?;
        Ok(())
    }

    /// Whether this user may pass through every existing directory on the way to
    /// `path` (by their owner, group and other permission bits).
    fn can_reach(self, path: &Path) -> bool {
        use std::os::unix::fs::MetadataExt;
        path.ancestors()
            .skip(1)
            .filter_map(|dir| std::fs::metadata(dir).ok())
            .all(|meta| {
                let bit = if meta.uid() == self.uid {
                    0o100
                } else if meta.gid() == self.gid {
                    0o010
                } else {
                    0o001
                };
                meta.mode() & bit != 0
            })
    }
}

pub(crate) fn command(run_as: Option<RunAs>, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = Command::new(program);
    if let Some(user) = run_as {
        user.apply(&mut command);
        // PostgreSQL's programs change into their working directory to find
        // themselves; the caller's (a 0700 home, say) may be closed to that user.
        command.current_dir("/");
    }
    // The server inherits nothing that points at the caller's own databases.
    for var in [
        "PGDATA",
        "PGHOST",
        "PGPORT",
        "PGUSER",
        "PGDATABASE",
        "PGPASSWORD",
    ] {
        command.env_remove(var);
    }
    command
}

fn run(mut command: Command, what: &str) -> Result<String, ProvisionError> {
    let out = command
        .output()
        .map_err(|e| ProvisionError::Local(format!("{what}: {e}")))?;
    if !out.status.success() {
        // Keep the program's own lines: they say what went wrong.
        let output: Vec<String> = [&out.stderr, &out.stdout]
            .iter()
            .map(|bytes| String::from_utf8_lossy(bytes).trim().to_owned())
            .filter(|text| !text.is_empty())
            .collect();
        return Err(ProvisionError::Local(format!(
            "{what} failed ({}):\n{}",
            out.status,
            output.join("\n")
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn initdb(
    binaries: &Binaries,
    run_as: Option<RunAs>,
    data: &Path,
    durable: bool,
) -> Result<(), ProvisionError> {
    let mut cmd = command(run_as, binaries.tool("initdb"));
    cmd.arg("-D")
        .arg(data)
        .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C"]);
    if !durable {
        cmd.arg("--no-sync");
    }
    run(cmd, "initdb").map(drop).map_err(|e| {
        ProvisionError::Local(format!(
            "{e}\nThe cluster directory is {}; the server's user must be able to create it. \
             Set GROUNDWORK_DATA_DIR to a directory it can write to, or DATABASE_URL to use \
             a server of your own.",
            data.display()
        ))
    })
}

pub(crate) fn free_port() -> Result<u16, ProvisionError> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| ProvisionError::Local(format!("finding a free port: {e}")))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| ProvisionError::Local(format!("finding a free port: {e}")))
}

/// The eighth line of `postmaster.pid` says `ready` once connections are accepted.
fn postmaster_status(data: &Path) -> Option<(u16, String)> {
    let text = std::fs::read_to_string(data.join("postmaster.pid")).ok()?;
    let lines: Vec<&str> = text.lines().collect();
    let port = lines.get(3)?.trim().parse().ok()?;
    Some((
        port,
        lines
            .get(7)
            .map(|s| s.trim().to_owned())
            .unwrap_or_default(),
    ))
}

pub(crate) fn process_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

pub(crate) fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(8)..].join("\n")
}

/// Settings of a throw-away primary that a standby streams from. Commits flush their
/// WAL (to the page cache: `fsync` stays off), so that it is sent at once rather than
/// by the WAL writer up to 200 ms later.
pub(crate) const REPLICATION_SETTINGS: &[&str] = &[
    "synchronous_commit=on",
    "wal_level=replica",
    "max_wal_senders=4",
    "hot_standby=on",
];

/// Settings for throw-away clusters: nothing is worth an fsync.
const EPHEMERAL_SETTINGS: &[&str] = &[
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "wal_level=minimal",
    "max_wal_senders=0",
    "max_connections=300",
    "shared_buffers=128MB",
    "checkpoint_timeout=1h",
    "max_wal_size=4GB",
    "log_min_messages=warning",
    "log_checkpoints=off",
];

/// A cluster in a temporary directory, stopped and deleted by its lifeline.
pub(crate) struct EphemeralCluster {
    root: PathBuf,
    port: u16,
    pid: i32,
    _lifeline: Lifeline,
}

const SUPERVISOR: &str = r#"
trap '' INT TERM HUP
postgres=$1; data=$2; port=$3; root=$4; shift 4
"$postgres" -D "$data" -p "$port" -k "$root" -c listen_addresses=127.0.0.1 "$@" \
    >"$root/postgres.log" 2>&1 </dev/null &
pid=$!
echo "$pid"
read -r _ || true
kill -INT "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
rm -rf "$root"
"#;

impl EphemeralCluster {
    pub(crate) fn start(binaries: &Binaries) -> Result<Self, ProvisionError> {
        Self::start_with(binaries, &[])
    }

    /// A cluster with `extra` settings after the ephemeral ones (the last wins).
    pub(crate) fn start_with(binaries: &Binaries, extra: &[&str]) -> Result<Self, ProvisionError> {
        let run_as = RunAs::detect()?;
        let mut last = None;
        // A port picked as free can be taken before postgres binds it: try again.
        for _ in 0..3 {
            let root = create_temp_root()?;
            let attempt = (|| {
                if let Some(user) = run_as {
                    user.own(&root)?;
                }
                let data = root.join("data");
                initdb(binaries, run_as, &data, false)?;
                Self::launch(binaries, run_as, &root, &data, extra)
            })();
            match attempt {
                Ok(cluster) => return Ok(cluster),
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&root);
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| ProvisionError::Local("could not start".into())))
    }

    /// A hot standby of `primary` (started with [`REPLICATION_SETTINGS`]): a base
    /// backup taken with `pg_basebackup -R`, so that it streams from the primary.
    pub(crate) fn standby_of(
        binaries: &Binaries,
        primary: &EphemeralCluster,
    ) -> Result<Self, ProvisionError> {
        let run_as = RunAs::detect()?;
        let root = create_temp_root()?;
        let attempt = (|| {
            if let Some(user) = run_as {
                user.own(&root)?;
            }
            let data = root.join("data");
            let mut cmd = command(run_as, binaries.tool("pg_basebackup"));
            cmd.arg("-D")
                .arg(&data)
                .args([
                    "-R",
                    "-X",
                    "stream",
                    "--no-sync",
                    "-h",
                    "127.0.0.1",
                    "-U",
                    "postgres",
                ])
                .arg("-p")
                .arg(primary.port.to_string());
            run(cmd, "pg_basebackup")?;
            Self::launch(binaries, run_as, &root, &data, REPLICATION_SETTINGS)
        })();
        if attempt.is_err() {
            let _ = std::fs::remove_dir_all(&root);
        }
        attempt
    }

    fn launch(
        binaries: &Binaries,
        run_as: Option<RunAs>,
        root: &Path,
        data: &Path,
        extra: &[&str],
    ) -> Result<Self, ProvisionError> {
        let port = free_port()?;
        let mut cmd = command(run_as, "/bin/sh");
        cmd.arg("-c")
            .arg(SUPERVISOR)
            .arg("groundwork-postgres")
            .arg(binaries.tool("postgres"))
            .arg(data)
            .arg(port.to_string())
            .arg(root);
        for setting in EPHEMERAL_SETTINGS
            .iter()
            .copied()
            .chain(binaries.preload_libraries())
            .chain(extra.iter().copied())
        {
            cmd.arg("-c").arg(setting);
        }
        let (lifeline, pid) = Lifeline::spawn(cmd)
            .map_err(|e| ProvisionError::Local(format!("starting postgres: {e}")))?;
        let pid: i32 = pid
            .parse()
            .map_err(|_| ProvisionError::Local(format!("supervisor reported {pid:?}")))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some((_, status)) = postmaster_status(data)
                && (status == "ready" || status == "standby")
            {
                return Ok(Self {
                    root: root.to_path_buf(),
                    port,
                    pid,
                    _lifeline: lifeline,
                });
            }
            if !process_alive(pid) || Instant::now() > deadline {
                let log = tail(&root.join("postgres.log"));
                drop(lifeline);
                return Err(ProvisionError::Local(format!(
                    "postgres on port {port} did not start: {log}"
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn pid(&self) -> i32 {
        self.pid
    }
}

/// Where ephemeral clusters live: `GROUNDWORK_TMPDIR`, else `/dev/shm` (memory: cloning
/// a template database is file copying, several times faster there than on disk),
/// else the system temporary directory.
fn ephemeral_base() -> PathBuf {
    if let Some(dir) = std::env::var_os("GROUNDWORK_TMPDIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let shm = Path::new("/dev/shm");
    let writable = std::fs::metadata(shm).is_ok_and(|m| m.is_dir() && !m.permissions().readonly());
    if writable {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

pub(crate) fn create_temp_root() -> Result<PathBuf, ProvisionError> {
    use std::os::unix::fs::DirBuilderExt;
    let base = ephemeral_base();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    for attempt in 0..100u32 {
        let path = base.join(format!(
            "{EPHEMERAL_DIR_PREFIX}{}-{nanos:x}-{attempt}",
            std::process::id()
        ));
        match std::fs::DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_error("creating", path)(e).into()),
        }
    }
    Err(ProvisionError::Local(format!(
        "could not create a directory under {}",
        base.display()
    )))
}

/// The CLI's durable cluster, kept in a directory and reused across runs.
#[derive(Clone, Debug)]
pub struct PersistentCluster {
    dir: PathBuf,
    requested: PathBuf,
    binaries: Binaries,
}

/// What [`PersistentCluster::start`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Started {
    /// The port the server listens on.
    pub port: u16,
    /// Whether this call started it (`false`: it was already running).
    pub started: bool,
    /// Whether this call created the cluster.
    pub created: bool,
}

/// The database the persistent cluster creates for the application.
pub const APP_DATABASE: &str = "groundwork";

/// Where clusters go whose requested directory the server's user cannot reach.
const RELOCATED_BASE: &str = "/var/lib/groundwork";

impl PersistentCluster {
    /// A cluster kept in `dir` (created on first start), using local binaries.
    ///
    /// As root the server runs as an unprivileged user, which may not be able to
    /// reach `dir` (a project in a 0700 home directory): then, unless `dir` already
    /// holds a cluster, it is kept in `/var/lib/groundwork/<name>-<hash of dir>`
    /// instead; [`relocation`](Self::relocation) says so.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self, ProvisionError> {
        let dir = dir.into();
        let requested = if dir.is_absolute() {
            dir
        } else {
            std::env::current_dir()
                .map_err(io_error("reading", "the working directory"))?
                .join(dir)
        };
        let dir = match RunAs::detect()? {
            Some(user)
                if !requested.join("data/PG_VERSION").is_file() && !user.can_reach(&requested) =>
            {
                relocated(&requested)
            }
            _ => requested.clone(),
        };
        Ok(Self {
            dir,
            requested,
            binaries: Binaries::find()?,
        })
    }

    /// When the cluster is not kept where it was asked to be, a sentence saying where
    /// it is and why.
    pub fn relocation(&self) -> Option<String> {
        (self.dir != self.requested).then(|| {
            format!(
                "the PostgreSQL server runs as an unprivileged user that cannot reach {}, \
                 so its cluster is kept in {} (set GROUNDWORK_DATA_DIR to choose another \
                 directory)",
                self.requested.display(),
                self.dir.display()
            )
        })
    }

    /// The cluster's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The port the running server listens on, or `None` when it is stopped.
    pub fn running_port(&self) -> Option<u16> {
        let (port, status) = postmaster_status(&self.data())?;
        let pid_line = std::fs::read_to_string(self.data().join("postmaster.pid")).ok()?;
        let pid: i32 = pid_line.lines().next()?.trim().parse().ok()?;
        (status == "ready" && process_alive(pid)).then_some(port)
    }

    /// URL of the application database on the running server.
    pub fn url(&self, port: u16) -> String {
        format!("postgres://postgres@127.0.0.1:{port}/{APP_DATABASE}")
    }

    /// Creates the cluster if needed and starts it.
    pub fn start(&self) -> Result<Started, ProvisionError> {
        if let Some(port) = self.running_port() {
            return Ok(Started {
                port,
                started: false,
                created: false,
            });
        }
        let run_as = RunAs::detect()?;
        let data = self.data();
        let fresh = !data.join("PG_VERSION").is_file();
        if fresh {
            if self.dir != self.requested {
                use std::os::unix::fs::PermissionsExt;
                std::fs::create_dir_all(RELOCATED_BASE)
                    .and_then(|()| {
                        std::fs::set_permissions(
                            RELOCATED_BASE,
                            std::fs::Permissions::from_mode(0o755),
                        )
                    })
                    .map_err(io_error("creating", RELOCATED_BASE))?;
            }
            std::fs::create_dir_all(&self.dir).map_err(io_error("creating", &self.dir))?;
            if let Some(user) = run_as {
                user.own(&self.dir)?;
            }
            initdb(&self.binaries, run_as, &data, true)?;
            let port = free_port()?;
            let preload = if self.binaries.has_pg_stat_statements() {
                "shared_preload_libraries = 'pg_stat_statements'\n"
            } else {
                ""
            };
            let conf = format!(
                "\n# groundwork: local development cluster\nport = {port}\n\
                 listen_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n{preload}",
                self.dir.display()
            );
            append(&data.join("postgresql.conf"), &conf)?;
        }
        let mut cmd = command(run_as, self.binaries.tool("pg_ctl"));
        cmd.arg("start")
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(self.dir.join("postgres.log"))
            .args(["-w", "-t", "60"]);
        run(cmd, "pg_ctl start").map_err(|e| {
            ProvisionError::Local(format!("{e}\n{}", tail(&self.dir.join("postgres.log"))))
        })?;
        let port = self.running_port().ok_or_else(|| {
            ProvisionError::Local(format!(
                "pg_ctl started the server in {} but it is not ready",
                data.display()
            ))
        })?;
        Ok(Started {
            port,
            started: true,
            created: fresh,
        })
    }

    /// Stops the server if it runs. Returns whether it was running.
    pub fn stop(&self) -> Result<bool, ProvisionError> {
        if self.running_port().is_none() {
            return Ok(false);
        }
        let mut cmd = command(RunAs::detect()?, self.binaries.tool("pg_ctl"));
        cmd.arg("stop")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "fast", "-w"]);
        run(cmd, "pg_ctl stop")?;
        Ok(true)
    }
}

/// `/var/lib/groundwork/<last component of dir>-<hash of dir>`.
fn relocated(dir: &Path) -> PathBuf {
    let name = dir
        .parent()
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "cluster".to_owned());
    let hash = groundwork_support::hash::sha256_hex([dir.as_os_str().as_encoded_bytes()]);
    Path::new(RELOCATED_BASE).join(format!("{name}-{}", &hash[..16]))
}

fn append(path: &Path, text: &str) -> Result<(), ProvisionError> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(io_error("writing", path))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::run;

    #[test]
    fn a_failing_program_keeps_its_lines() {
        let mut command = std::process::Command::new("/bin/sh");
        command
            .arg("-c")
            .arg("echo 'first problem' >&2; echo 'second problem' >&2; echo out; exit 3");
        let message = run(command, "the tool").unwrap_err().to_string();
        assert!(
            message.ends_with("first problem\nsecond problem\nout"),
            "{message}"
        );
    }
}
