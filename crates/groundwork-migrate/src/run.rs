//! Running one migration file: its statements under `lock_timeout` and
//! `statement_timeout`, retried with backoff when a lock cannot be had in time, in
//! one transaction or (with the no-transaction marker) one statement at a time.

use std::time::Duration;

use tokio_postgres::Client;
use tokio_postgres::error::{ErrorPosition, SqlState};

use super::split::split_statements;
use super::{MigrateError, Script};

/// The limits every migration statement runs under.
///
/// A migration that waits for a lock holds its place in the lock queue, and every query
/// of the table queues behind it: `lock_timeout` bounds that wait, and the runner tries
/// again later rather than stall the application. `statement_timeout` bounds a
/// statement that takes far longer than it should.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatementLimits {
    /// How long a statement may wait for a lock (`lock_timeout`; zero: forever).
    /// Default 5 s.
    pub lock_timeout: Duration,
    /// How long a statement may run (`statement_timeout`; zero: forever). Default 30
    /// min.
    pub statement_timeout: Duration,
    /// How many times a file (or, without a transaction, a statement) is tried when
    /// its lock wait times out. Default 5.
    pub attempts: u32,
    /// The wait before the second attempt; it doubles for each one after. Default 1 s.
    pub backoff: Duration,
}

impl Default for StatementLimits {
    fn default() -> Self {
        Self {
            lock_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(30 * 60),
            attempts: 5,
            backoff: Duration::from_secs(1),
        }
    }
}

impl StatementLimits {
    fn settings(&self, scope: &str) -> String {
        format!(
            "SET {scope} lock_timeout = {}; SET {scope} statement_timeout = {}",
            self.lock_timeout.as_millis(),
            self.statement_timeout.as_millis()
        )
    }

    fn backoff_before(&self, attempt: u32) -> Duration {
        self.backoff
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(2)))
    }
}

/// Runs `script` statement by statement and then `record` (the bookkeeping change),
/// all in one transaction unless the script opts out. A transaction whose lock wait
/// times out is rolled back and run again after a backoff, up to `limits.attempts`
/// times.
pub(crate) async fn run_script<'c, F, Fut>(
    client: &'c Client,
    script: &Script,
    limits: StatementLimits,
    record: F,
) -> Result<(), MigrateError>
where
    F: Fn(&'c Client) -> Fut,
    Fut: Future<Output = Result<(), tokio_postgres::Error>>,
{
    if script.no_transaction() {
        return run_outside_transaction(client, script, limits, record).await;
    }
    let mut attempt = 1;
    loop {
        client
            .batch_execute(&format!("BEGIN; {}", limits.settings("LOCAL")))
            .await?;
        let result = async {
            for statement in split_statements(&script.sql) {
                if let Err(error) = client.batch_execute(statement.sql).await {
                    return Err((statement.offset, statement.sql, error));
                }
            }
            record(client).await.map_err(|e| (0, "", e))
        }
        .await;
        match result {
            Ok(()) => {
                client.batch_execute("COMMIT").await?;
                return Ok(());
            }
            Err((offset, sql, error)) => {
                client.batch_execute("ROLLBACK").await?;
                if is_lock_timeout(&error) && attempt < limits.attempts {
                    attempt += 1;
                    tokio::time::sleep(limits.backoff_before(attempt)).await;
                    continue;
                }
                return Err(script_error(script, offset, sql, &error, attempt));
            }
        }
    }
}

/// One statement at a time, each in its own implicit transaction, with the limits set
/// for the session and restored afterwards. Before a `CREATE INDEX`, an INVALID index
/// of the same name (left by a concurrent build that failed or was killed) is dropped,
/// so the file can simply run again.
async fn run_outside_transaction<'c, F, Fut>(
    client: &'c Client,
    script: &Script,
    limits: StatementLimits,
    record: F,
) -> Result<(), MigrateError>
where
    F: Fn(&'c Client) -> Fut,
    Fut: Future<Output = Result<(), tokio_postgres::Error>>,
{
    let previous = client
        .query_one(
            "SELECT current_setting('lock_timeout'), current_setting('statement_timeout')",
            &[],
        )
        .await?;
    let (lock, statement): (String, String) = (previous.get(0), previous.get(1));
    client.batch_execute(&limits.settings("SESSION")).await?;
    let result = async {
        for statement in split_statements(&script.sql) {
            drop_invalid_index(client, statement.sql).await?;
            let mut attempt = 1;
            loop {
                match client.batch_execute(statement.sql).await {
                    Ok(()) => break,
                    Err(error) if is_lock_timeout(&error) && attempt < limits.attempts => {
                        attempt += 1;
                        tokio::time::sleep(limits.backoff_before(attempt)).await;
                        // A concurrent build that timed out leaves its index INVALID.
                        drop_invalid_index(client, statement.sql).await?;
                    }
                    Err(error) => {
                        return Err(script_error(
                            script,
                            statement.offset,
                            statement.sql,
                            &error,
                            attempt,
                        ));
                    }
                }
            }
        }
        record(client).await?;
        Ok(())
    }
    .await;
    let restored = client
        .query(
            "SELECT set_config('lock_timeout', $1, false), set_config('statement_timeout', $2, false)",
            &[&lock, &statement],
        )
        .await;
    result?;
    restored?;
    Ok(())
}

/// Drops every INVALID index that `sql`, a `CREATE [UNIQUE] INDEX` statement, names.
async fn drop_invalid_index(client: &Client, sql: &str) -> Result<(), MigrateError> {
    let words: Vec<String> = sql
        .split(|c: char| c.is_whitespace() || c == '(')
        .filter(|w| !w.is_empty())
        .take(8)
        .map(|w| w.to_ascii_lowercase())
        .collect();
    let creates_index =
        words.first().is_some_and(|w| w == "create") && words.iter().take(3).any(|w| w == "index");
    if !creates_index {
        return Ok(());
    }
    let invalid = client
        .query(
            "SELECT format('%I.%I', n.nspname, c.relname), c.relname
             FROM pg_index i
             JOIN pg_class c ON c.oid = i.indexrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE NOT i.indisvalid",
            &[],
        )
        .await?;
    for row in invalid {
        let qualified: String = row.get(0);
        let name: String = row.get(1);
        let named = words
            .iter()
            .any(|w| w.trim_matches('"') == name || w.rsplit('.').next() == Some(name.as_str()));
        if named {
            client
                .batch_execute(&format!("DROP INDEX CONCURRENTLY IF EXISTS {qualified}"))
                .await?;
        }
    }
    Ok(())
}

fn is_lock_timeout(error: &tokio_postgres::Error) -> bool {
    error.code() == Some(&SqlState::LOCK_NOT_AVAILABLE)
}

fn script_error(
    script: &Script,
    offset: usize,
    statement: &str,
    error: &tokio_postgres::Error,
    attempts: u32,
) -> MigrateError {
    let Some(db) = error.as_db_error() else {
        return MigrateError::Failed {
            file: script.path.clone(),
            line: line_at(&script.sql, offset),
            code: "-----".into(),
            message: error.to_string(),
            detail: None,
        };
    };
    // The server reports a 1-based character position within the statement we sent.
    let within = match db.position() {
        Some(ErrorPosition::Original(position)) => statement
            .char_indices()
            .nth((*position as usize).saturating_sub(1))
            .map_or(0, |(byte, _)| byte),
        _ => 0,
    };
    let line = line_at(&script.sql, offset + within);
    if is_lock_timeout(error) {
        return MigrateError::LockNotAvailable {
            file: script.path.clone(),
            line,
            attempts,
            message: db.message().to_owned(),
        };
    }
    MigrateError::Failed {
        file: script.path.clone(),
        line,
        code: db.code().code().to_owned(),
        message: db.message().to_owned(),
        detail: db.detail().map(ToOwned::to_owned),
    }
}

fn line_at(text: &str, byte: usize) -> usize {
    text.as_bytes()[..byte.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::StatementLimits;
    use std::time::Duration;

    #[test]
    fn backoff_doubles_from_the_second_attempt() {
        let limits = StatementLimits {
            backoff: Duration::from_millis(100),
            ..StatementLimits::default()
        };
        assert_eq!(limits.backoff_before(2), Duration::from_millis(100));
        assert_eq!(limits.backoff_before(3), Duration::from_millis(200));
        assert_eq!(limits.backoff_before(5), Duration::from_millis(800));
    }
}
