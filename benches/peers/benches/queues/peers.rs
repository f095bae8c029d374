//! The peers, each in a database of its own on the same server, driven by the scripts
//! beside this file: graphile-worker from Node (`graphile.js`, installed from
//! `package.json` / `package-lock.json` into `target/queues-node`), procrastinate and
//! pgqueuer from Python (`queues.py`, in the peer benches' virtual environment).
//!
//! Each peer first enqueues the jobs (in batches of 1,000, timed), the server
//! checkpoints, then a fresh process runs the peer's worker until every job ran and is
//! recorded as done.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::cpu::{self, Cpu};
use crate::python::{peers_dir, python};

/// One peer configuration's figures, as its script reported them.
pub struct Figures {
    pub version: String,
    pub settings: String,
    pub enqueue_per_s: f64,
    pub drain_per_s: f64,
    /// CPU time of the drain (the script's whole process), client and server.
    pub cpu: Cpu,
}

fn bench_dir() -> PathBuf {
    peers_dir().join("benches/queues")
}

/// `target/queues-node/node_modules`, with graphile-worker installed by `npm ci` from
/// the lock file beside this bench (again whenever the lock file changes).
fn node_modules() -> PathBuf {
    let dir = peers_dir().join("../../target/queues-node");
    let lock = bench_dir().join("package-lock.json");
    let stamp = dir.join("package-lock.json");
    let installed = dir
        .join("node_modules/graphile-worker/package.json")
        .exists();
    if !installed || std::fs::read(&stamp).ok() != std::fs::read(&lock).ok() {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(bench_dir().join("package.json"), dir.join("package.json")).unwrap();
        std::fs::copy(&lock, &stamp).unwrap();
        let status = Command::new("npm")
            .args(["ci", "--silent", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("running npm (Node.js 20 and npm are needed)");
        assert!(status.success(), "npm ci in {} failed", dir.display());
    }
    dir.join("node_modules")
}

/// Installs the peers (Node packages, Python environment) before anything is timed.
pub struct Installed {
    node_modules: PathBuf,
    python: PathBuf,
}

pub fn install() -> Installed {
    Installed {
        node_modules: node_modules(),
        python: python(),
    }
}

fn report(mut command: Command, what: &str) -> Value {
    let out = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{what} printed no report ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// A peer configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    /// graphile-worker as documented out of the box.
    GraphileDefault,
    /// graphile-worker with the batching options of its performance page.
    GraphileBatched,
    Procrastinate,
    Pgqueuer,
}

impl Peer {
    pub const ALL: [Self; 4] = [
        Self::GraphileDefault,
        Self::GraphileBatched,
        Self::Procrastinate,
        Self::Pgqueuer,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::GraphileDefault => "graphile-worker (default)",
            Self::GraphileBatched => "graphile-worker (batched)",
            Self::Procrastinate => "procrastinate",
            Self::Pgqueuer => "pgqueuer",
        }
    }

    /// The database it runs in.
    pub fn database(self) -> &'static str {
        match self {
            Self::GraphileDefault | Self::GraphileBatched => "graphile_worker_bench",
            Self::Procrastinate => "procrastinate_bench",
            Self::Pgqueuer => "pgqueuer_bench",
        }
    }
}

impl Installed {
    fn command(&self, peer: Peer, mode: &str, url: &str, jobs: usize) -> Command {
        let jobs = jobs.to_string();
        match peer {
            Peer::GraphileDefault | Peer::GraphileBatched => {
                let settings = if peer == Peer::GraphileDefault {
                    "default"
                } else {
                    "batched"
                };
                let mut command = Command::new("node");
                command
                    .arg(bench_dir().join("graphile.js"))
                    .args([mode, url, &jobs, settings])
                    .env("NODE_PATH", &self.node_modules)
                    // No graphile-worker configuration file of the caller's is picked up.
                    .current_dir(self.node_modules.parent().unwrap_or(Path::new("/")));
                command
            }
            Peer::Procrastinate | Peer::Pgqueuer => {
                let system = if peer == Peer::Procrastinate {
                    "procrastinate"
                } else {
                    "pgqueuer"
                };
                let mut command = Command::new(&self.python);
                command
                    .arg(bench_dir().join("queues.py"))
                    .args([system, mode, url, &jobs]);
                command
            }
        }
    }

    /// Installs the peer's schema if needed and enqueues `jobs` no-op jobs in batches
    /// of 1,000: jobs per second.
    pub fn enqueue(&self, peer: Peer, url: &str, jobs: usize) -> f64 {
        let what = format!("{}: enqueue", peer.name());
        let enqueued = report(self.command(peer, "enqueue", url, jobs), &what);
        enqueued["enqueue_per_s"].as_f64().unwrap_or(f64::NAN)
    }

    /// Runs the peer's worker until `jobs` jobs ran and are recorded as done.
    pub fn drain(&self, peer: Peer, url: &str, jobs: usize, postmaster: Option<u32>) -> Figures {
        let what = format!("{}: drain", peer.name());
        let before = cpu::now(postmaster);
        let drained = report(self.command(peer, "drain", url, jobs), &what);
        let cpu = cpu::now(postmaster) - before;
        Figures {
            version: drained["version"].as_str().unwrap_or("?").to_owned(),
            settings: drained["settings"].to_string(),
            enqueue_per_s: f64::NAN,
            drain_per_s: drained["drain_per_s"].as_f64().unwrap_or(f64::NAN),
            cpu,
        }
    }
}
