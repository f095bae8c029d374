//! The one server of the run: a durable cluster (PostgreSQL's default settings, so
//! `fsync` and `synchronous_commit` on) on disk under `target/queues-cluster`, stopped
//! and removed when the run ends. Tests use in-memory clusters without fsync; a queue's
//! throughput is mostly commits, so it is measured the way it runs in production.

use std::path::PathBuf;

use groundwork_provision::PersistentCluster;

pub struct DurableCluster {
    cluster: PersistentCluster,
    dir: PathBuf,
    port: u16,
}

impl DurableCluster {
    /// Starts a fresh cluster, first removing one a killed run left behind.
    pub fn start() -> Self {
        let dir = crate::python::peers_dir().join("../../target/queues-cluster");
        if let Ok(stale) = PersistentCluster::new(&dir) {
            let _ = stale.stop();
            let _ = std::fs::remove_dir_all(stale.dir());
        }
        let _ = std::fs::remove_dir_all(&dir);
        let cluster = PersistentCluster::new(&dir).expect("local PostgreSQL binaries");
        let port = cluster.start().expect("starting the durable cluster").port;
        Self { cluster, dir, port }
    }

    /// The superuser's URL for `database`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }
}

impl Drop for DurableCluster {
    fn drop(&mut self) {
        let _ = self.cluster.stop();
        let _ = std::fs::remove_dir_all(self.cluster.dir());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
