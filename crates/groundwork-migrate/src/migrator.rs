use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use tokio_postgres::Client;

use super::run::{StatementLimits, run_script};
use super::{Drift, MigrateError, Migration};

/// Key of the session-level advisory lock that serialises migration runners.
const LOCK_KEY: i64 = 0x6772_6e64_776b_6d67; // "grndwkmg"

/// What `schema_migrations` says about one applied migration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedRecord {
    /// The version.
    pub version: i64,
    /// The name recorded when it was applied.
    pub name: String,
    /// SHA-256 of the up file that was applied.
    pub checksum: Vec<u8>,
    /// When it was applied.
    pub applied_at: chrono::DateTime<chrono::Utc>,
    /// How long it took, in milliseconds.
    pub execution_ms: i64,
}

/// The state of one migration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MigrationState {
    /// Applied, with its record; `changed` if the file no longer matches.
    Applied {
        /// The bookkeeping row.
        record: AppliedRecord,
        /// The file's checksum differs from the recorded one.
        changed: bool,
    },
    /// Applied, but the file is gone.
    Missing(AppliedRecord),
    /// Not applied yet.
    Pending,
}

/// One line of `migrate status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationStatus {
    /// The version.
    pub version: i64,
    /// The name.
    pub name: String,
    /// Applied, missing or pending.
    pub state: MigrationState,
}

/// A migration that was (or with `dry_run`, would be) applied or reverted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// The version.
    pub version: i64,
    /// The name.
    pub name: String,
    /// How long it took (zero for a dry run).
    pub duration: Duration,
}

/// Options for [`Migrator::up`].
#[derive(Clone, Copy, Debug, Default)]
pub struct UpOptions {
    /// Apply only migrations up to and including this version.
    pub to: Option<i64>,
    /// Report what would run without running it.
    pub dry_run: bool,
}

/// How far [`Migrator::down`] goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DownTarget {
    /// Revert the newest N applied migrations.
    Steps(usize),
    /// Revert every applied migration newer than this version.
    To(i64),
    /// Revert everything.
    All,
}

/// Options for [`Migrator::down`].
#[derive(Clone, Copy, Debug)]
pub struct DownOptions {
    /// How far to go.
    pub target: DownTarget,
    /// Report what would run without running it.
    pub dry_run: bool,
    /// The environment is production (`GROUNDWORK_ENV=production`).
    pub production: bool,
    /// Revert even in production.
    pub allow_production: bool,
}

impl DownOptions {
    /// Options for `target`, with `production` read from `GROUNDWORK_ENV`.
    pub fn from_env(target: DownTarget) -> Self {
        Self {
            target,
            dry_run: false,
            production: std::env::var("GROUNDWORK_ENV")
                .is_ok_and(|v| v.eq_ignore_ascii_case("production")),
            allow_production: false,
        }
    }
}

/// Applies, reverts and checks a set of migrations against a database.
#[derive(Clone, Debug)]
pub struct Migrator {
    migrations: Vec<Migration>,
    lock_timeout: Duration,
    limits: StatementLimits,
}

impl Migrator {
    /// A migrator for `migrations` (sorted by version here).
    pub fn new(mut migrations: Vec<Migration>) -> Self {
        migrations.sort_by_key(|m| m.version);
        Self {
            migrations,
            lock_timeout: Duration::from_secs(600),
            limits: StatementLimits::default(),
        }
    }

    /// A migrator for the migration files in `dir`.
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self, MigrateError> {
        Ok(Self::new(Migration::load_dir(dir.as_ref())?))
    }

    /// How long to wait for another runner's lock before giving up (default 10 min).
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout;
        self
    }

    /// The `lock_timeout`, `statement_timeout` and lock-timeout retries every
    /// migration runs with (see [`StatementLimits`]).
    pub fn with_limits(mut self, limits: StatementLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The migrations, oldest first.
    pub fn migrations(&self) -> &[Migration] {
        &self.migrations
    }

    /// Every migration known to the files or the database, in version order.
    pub async fn status(&self, client: &Client) -> Result<Vec<MigrationStatus>, MigrateError> {
        let mut applied = applied(client).await?;
        let mut status: Vec<MigrationStatus> = self
            .migrations
            .iter()
            .map(|m| MigrationStatus {
                version: m.version,
                name: m.name.clone(),
                state: match applied.remove(&m.version) {
                    Some(record) => MigrationState::Applied {
                        changed: record.checksum != m.checksum(),
                        record,
                    },
                    None => MigrationState::Pending,
                },
            })
            .collect();
        status.extend(applied.into_values().map(|record| MigrationStatus {
            version: record.version,
            name: record.name.clone(),
            state: MigrationState::Missing(record),
        }));
        status.sort_by_key(|s| s.version);
        Ok(status)
    }

    /// Fails with [`MigrateError::Drift`] listing every drifted migration.
    pub async fn verify(&self, client: &Client) -> Result<(), MigrateError> {
        let drift = drift(&self.status(client).await?);
        if drift.is_empty() {
            Ok(())
        } else {
            Err(MigrateError::Drift(drift))
        }
    }

    /// Applies pending migrations in version order.
    pub async fn up(&self, client: &Client, options: UpOptions) -> Result<Vec<Step>, MigrateError> {
        if let Some(to) = options.to
            && !self.migrations.iter().any(|m| m.version == to)
        {
            return Err(MigrateError::UnknownVersion(to));
        }
        self.locked(client, async {
            let status = self.status(client).await?;
            if let Some(changed) = drift(&status)
                .into_iter()
                .find(|d| matches!(d, Drift::Changed { .. }))
            {
                return Err(MigrateError::AppliedChanged(changed));
            }
            let pending: Vec<&Migration> = self
                .migrations
                .iter()
                .filter(|m| options.to.is_none_or(|to| m.version <= to))
                .filter(|m| {
                    status
                        .iter()
                        .any(|s| s.version == m.version && s.state == MigrationState::Pending)
                })
                .collect();
            let mut steps = Vec::with_capacity(pending.len());
            for migration in pending {
                let started = Instant::now();
                if !options.dry_run {
                    run_script(client, &migration.up, self.limits, |client| async move {
                        client
                            .execute(
                                "INSERT INTO public.schema_migrations \
                                 (version, name, checksum, execution_ms) VALUES ($1, $2, $3, $4)",
                                &[
                                    &migration.version,
                                    &migration.name,
                                    &migration.checksum(),
                                    &i64::try_from(started.elapsed().as_millis())
                                        .unwrap_or(i64::MAX),
                                ],
                            )
                            .await
                            .map(drop)
                    })
                    .await?;
                }
                steps.push(step(
                    migration.version,
                    &migration.name,
                    started,
                    options.dry_run,
                ));
            }
            Ok(steps)
        })
        .await
    }

    /// Reverts applied migrations, newest first.
    pub async fn down(
        &self,
        client: &Client,
        options: DownOptions,
    ) -> Result<Vec<Step>, MigrateError> {
        if options.production && !options.allow_production {
            return Err(MigrateError::ProductionRefused);
        }
        if let DownTarget::To(to) = options.target
            && !self.migrations.iter().any(|m| m.version == to)
        {
            return Err(MigrateError::UnknownVersion(to));
        }
        self.locked(client, async {
            let mut records: Vec<AppliedRecord> = applied(client).await?.into_values().collect();
            records.reverse();
            let chosen: Vec<AppliedRecord> = match options.target {
                DownTarget::Steps(n) => records.into_iter().take(n).collect(),
                DownTarget::To(to) => records.into_iter().filter(|r| r.version > to).collect(),
                DownTarget::All => records,
            };
            // Check every step before running any, so that a missing down file does not
            // leave the database half-way.
            let mut plan = Vec::with_capacity(chosen.len());
            for record in &chosen {
                let migration = self
                    .migrations
                    .iter()
                    .find(|m| m.version == record.version)
                    .ok_or_else(|| MigrateError::MissingFiles {
                        version: record.version,
                        name: record.name.clone(),
                    })?;
                let down = migration
                    .down
                    .as_ref()
                    .ok_or_else(|| MigrateError::Irreversible {
                        version: record.version,
                        name: record.name.clone(),
                    })?;
                plan.push((migration, down));
            }
            let mut steps = Vec::with_capacity(plan.len());
            for (migration, down) in plan {
                let started = Instant::now();
                if !options.dry_run {
                    run_script(client, down, self.limits, |client| async move {
                        client
                            .execute(
                                "DELETE FROM public.schema_migrations WHERE version = $1",
                                &[&migration.version],
                            )
                            .await
                            .map(drop)
                    })
                    .await?;
                }
                steps.push(step(
                    migration.version,
                    &migration.name,
                    started,
                    options.dry_run,
                ));
            }
            Ok(steps)
        })
        .await
    }

    /// Runs `work` while holding the migration lock, with the bookkeeping table present.
    async fn locked<T>(
        &self,
        client: &Client,
        work: impl Future<Output = Result<T, MigrateError>>,
    ) -> Result<T, MigrateError> {
        groundwork_support::lock::with_session_lock(client, LOCK_KEY, self.lock_timeout, async {
            client
                .batch_execute(
                    "CREATE TABLE IF NOT EXISTS public.schema_migrations (
                        version bigint PRIMARY KEY,
                        name text NOT NULL,
                        checksum bytea NOT NULL,
                        applied_at timestamptz NOT NULL DEFAULT now(),
                        execution_ms bigint NOT NULL
                    )",
                )
                .await?;
            work.await
        })
        .await
    }
}

fn step(version: i64, name: &str, started: Instant, dry_run: bool) -> Step {
    Step {
        version,
        name: name.to_owned(),
        duration: if dry_run {
            Duration::ZERO
        } else {
            started.elapsed()
        },
    }
}

fn drift(status: &[MigrationStatus]) -> Vec<Drift> {
    let newest_applied = status
        .iter()
        .filter(|s| !matches!(s.state, MigrationState::Pending))
        .map(|s| s.version)
        .max();
    status
        .iter()
        .filter_map(|s| match &s.state {
            MigrationState::Applied { changed: true, .. } => Some(Drift::Changed {
                version: s.version,
                name: s.name.clone(),
            }),
            MigrationState::Missing(record) => Some(Drift::Missing {
                version: s.version,
                name: record.name.clone(),
            }),
            MigrationState::Pending => {
                newest_applied
                    .filter(|newest| *newest > s.version)
                    .map(|newest_applied| Drift::OutOfOrder {
                        version: s.version,
                        name: s.name.clone(),
                        newest_applied,
                    })
            }
            MigrationState::Applied { changed: false, .. } => None,
        })
        .collect()
}

async fn applied(client: &Client) -> Result<BTreeMap<i64, AppliedRecord>, MigrateError> {
    let exists: bool = client
        .query_one(
            "SELECT to_regclass('public.schema_migrations') IS NOT NULL",
            &[],
        )
        .await?
        .get(0);
    if !exists {
        return Ok(BTreeMap::new());
    }
    let rows = client
        .query(
            "SELECT version, name, checksum, applied_at, execution_ms \
             FROM public.schema_migrations ORDER BY version",
            &[],
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let record = AppliedRecord {
                version: row.get(0),
                name: row.get(1),
                checksum: row.get(2),
                applied_at: row.get(3),
                execution_ms: row.get(4),
            };
            (record.version, record)
        })
        .collect())
}
