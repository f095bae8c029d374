//! An ephemeral PgBouncer in transaction mode in front of a local server, for tests
//! and benchmarks of transaction pooling.
//!
//! It runs as the server's user, listens on a free port of 127.0.0.1, keeps its
//! configuration in a temporary directory named like an ephemeral cluster's (so
//! whatever checks for left-behind servers sees it too), and is stopped, its directory
//! deleted, by a lifeline when the handle is dropped or this process exits.

use std::fmt::Write as _;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::ProvisionError;
use crate::lifeline::Lifeline;
use crate::local::{RunAs, command, create_temp_root, free_port, process_alive, tail};

/// How an ephemeral PgBouncer pools.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PgbouncerSettings {
    /// The server's host (an address or a socket directory).
    pub server_host: String,
    /// The server's port.
    pub server_port: u16,
    /// Login roles and their passwords: PgBouncer lets them in without checking
    /// (`auth_type = trust`) and logs in to the server with these passwords.
    pub users: Vec<(String, String)>,
    /// Server connections per database and role (`default_pool_size`).
    pub pool_size: u16,
}

/// A running PgBouncer; stops when dropped.
pub struct Pgbouncer {
    port: u16,
    pid: i32,
    root: PathBuf,
    _lifeline: Lifeline,
}

const SUPERVISOR: &str = r#"
trap '' INT TERM HUP
pgbouncer=$1; ini=$2; root=$3
"$pgbouncer" "$ini" >"$root/pgbouncer.log" 2>&1 </dev/null &
pid=$!
echo "$pid"
read -r _ || true
kill -TERM "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
rm -rf "$root"
"#;

/// Settings that make a transaction pooler safe for groundwork (`docs/SCALING.md`):
/// each server connection is reset when a transaction ends, so no prepared statement,
/// `LISTEN` or session setting of one client reaches another.
pub const TRANSACTION_POOLING_SETTINGS: &[(&str, &str)] = &[
    ("pool_mode", "transaction"),
    ("server_reset_query", "DISCARD ALL"),
    ("server_reset_query_always", "1"),
];

impl Pgbouncer {
    /// Finds `pgbouncer` (on `PATH`, else `/usr/sbin`) and starts it.
    pub fn start(settings: &PgbouncerSettings) -> Result<Self, ProvisionError> {
        let program = find_pgbouncer()?;
        let run_as = RunAs::detect()?;
        let root = create_temp_root()?;
        let started = (|| {
            if let Some(user) = run_as {
                user.own(&root)?;
            }
            let port = free_port()?;
            let ini = root.join("pgbouncer.ini");
            write_config(&root, &ini, port, settings)?;
            if let Some(user) = run_as {
                user.own(&ini)?;
                user.own(&root.join("userlist.txt"))?;
            }
            let mut cmd = command(run_as, "/bin/sh");
            cmd.arg("-c")
                .arg(SUPERVISOR)
                .arg("groundwork-pgbouncer")
                .arg(&program)
                .arg(&ini)
                .arg(&root);
            let (lifeline, pid) = Lifeline::spawn(cmd)
                .map_err(|e| ProvisionError::Local(format!("starting pgbouncer: {e}")))?;
            let pid: i32 = pid
                .parse()
                .map_err(|_| ProvisionError::Local(format!("supervisor reported {pid:?}")))?;
            let deadline = Instant::now() + Duration::from_secs(10);
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                if !process_alive(pid) || Instant::now() > deadline {
                    let log = tail(&root.join("pgbouncer.log"));
                    drop(lifeline);
                    return Err(ProvisionError::Local(format!(
                        "pgbouncer on port {port} did not start: {log}"
                    )));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(Self {
                port,
                pid,
                root: root.clone(),
                _lifeline: lifeline,
            })
        })();
        if started.is_err() {
            let _ = std::fs::remove_dir_all(&root);
        }
        started
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its process id.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Its directory (configuration and log).
    pub fn dir(&self) -> &Path {
        &self.root
    }
}

fn find_pgbouncer() -> Result<PathBuf, ProvisionError> {
    std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|dir| dir.join("pgbouncer"))
        .find(|program| program.is_file())
        .ok_or_else(|| ProvisionError::ProgramNotFound {
            program: "pgbouncer".to_owned(),
        })
}

fn write_config(
    root: &Path,
    ini: &Path,
    port: u16,
    settings: &PgbouncerSettings,
) -> Result<(), ProvisionError> {
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let mut users = String::new();
    for (user, password) in &settings.users {
        let _ = writeln!(users, "{} {}", quote(user), quote(password));
    }
    let userlist = root.join("userlist.txt");
    std::fs::write(&userlist, users)
        .map_err(|e| ProvisionError::Local(format!("writing {}: {e}", userlist.display())))?;
    let mut config = format!(
        "[databases]\n* = host={} port={}\n\n[pgbouncer]\n\
         listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
         auth_type = trust\nauth_file = {}\n\
         default_pool_size = {}\nmin_pool_size = 0\nreserve_pool_size = 0\n\
         max_client_conn = 2000\nmax_db_connections = 0\n\
         ignore_startup_parameters = extra_float_digits,options\n\
         log_connections = 0\nlog_disconnections = 0\n",
        settings.server_host,
        settings.server_port,
        userlist.display(),
        settings.pool_size,
    );
    for (name, value) in TRANSACTION_POOLING_SETTINGS {
        let _ = writeln!(config, "{name} = {value}");
    }
    std::fs::write(ini, config)
        .map_err(|e| ProvisionError::Local(format!("writing {}: {e}", ini.display())))
}
