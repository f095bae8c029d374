//! What the linter reports: findings, their severity, and the two output formats.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A risk to data or compatibility worth a second look (a rename, a dropped column,
    /// a type choice that is hard to change later); fails only with `--deny warnings`.
    Warning,
    /// Blocks reads or writes of a populated table for as long as the table is large,
    /// rewrites it, or fails on existing rows; always fails the lint.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Warning => "warning",
            Self::Error => "error",
        })
    }
}

/// Where a finding comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// A rule over the parsed statement.
    Static,
    /// What running the statement on a populated database showed.
    Trace,
    /// A query's plan on a populated database.
    Plan,
}

/// One problem with one statement of a migration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The migration file.
    pub file: PathBuf,
    /// 1-based line of the statement's first token.
    pub line: usize,
    /// How bad it is.
    pub severity: Severity,
    /// The rule's name (see `docs/MIGRATIONS.md`).
    pub rule: &'static str,
    /// What is wrong, naming the object.
    pub message: String,
    /// The safe way to do it.
    pub hint: String,
    /// Static rule or trace.
    pub origin: Origin,
}

impl fmt::Display for Finding {
    /// `file:line: severity rule: message`, then `  hint: ...` on the next line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {} {}: {}\n  hint: {}",
            self.file.display(),
            self.line,
            self.severity,
            self.rule,
            self.message,
            self.hint
        )
    }
}

/// The statements a finding may point at: the migration file and the line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
}

impl Location {
    /// A finding at this location.
    pub fn finding(
        &self,
        severity: Severity,
        rule: &'static str,
        message: impl Into<String>,
        hint: impl Into<String>,
        origin: Origin,
    ) -> Finding {
        Finding {
            file: self.file.clone(),
            line: self.line,
            severity,
            rule,
            message: message.into(),
            hint: hint.into(),
            origin,
        }
    }
}

/// 1-based line number of byte `offset` in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}
