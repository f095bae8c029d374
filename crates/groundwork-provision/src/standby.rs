//! A throw-away primary and a hot standby that streams from it, for tests of read
//! replicas.

use crate::ProvisionError;
use crate::local::{Binaries, EphemeralCluster, REPLICATION_SETTINGS};

/// A primary (`wal_level=replica`) and a hot standby made from it with
/// `pg_basebackup -R`, in `groundwork-pg-*` directories; both stop, and their
/// directories go, when this is dropped or the process exits.
pub struct StandbyPair {
    // Dropped first: the standby stops before its primary.
    standby: EphemeralCluster,
    primary: EphemeralCluster,
}

impl StandbyPair {
    /// Starts the primary, takes a base backup and starts the standby on it.
    pub fn start() -> Result<Self, ProvisionError> {
        let binaries = Binaries::find()?;
        let primary = EphemeralCluster::start_with(&binaries, REPLICATION_SETTINGS)?;
        let standby = EphemeralCluster::standby_of(&binaries, &primary)?;
        Ok(Self { standby, primary })
    }

    /// The primary's URL for `database`, as its superuser.
    pub fn primary_url(&self, database: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{database}",
            self.primary.port()
        )
    }

    /// The standby's URL for `database`, as the primary's superuser.
    pub fn standby_url(&self, database: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{database}",
            self.standby.port()
        )
    }
}
