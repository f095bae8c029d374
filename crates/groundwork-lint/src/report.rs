//! A lint run's result and its text and JSON forms.

use serde::Serialize;

use super::finding::{Finding, Severity};
use super::trace::LockRecord;

/// How `groundwork migrate lint` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `file:line: severity rule: message` and a hint line per finding.
    Text,
    /// One JSON document: findings and the trace's lock records.
    Json,
}

/// Everything one lint run found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// Migrations linted.
    pub migrations: usize,
    /// The findings, in file and line order.
    pub findings: Vec<Finding>,
    /// Per migration and existing relation, the strongest lock the trace saw.
    pub locks: Vec<LockRecord>,
    /// What was not checked, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Report {
    /// Findings sorted by file and line, duplicates (same place, same rule) merged.
    pub fn sort(&mut self) {
        self.findings.sort_by(|a, b| {
            (&a.file, a.line, a.rule, a.origin as u8).cmp(&(
                &b.file,
                b.line,
                b.rule,
                b.origin as u8,
            ))
        });
        self.findings
            .dedup_by(|a, b| a.file == b.file && a.line == b.line && a.rule == b.rule);
    }

    /// How many findings have `severity`.
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    /// Whether the run fails: any error, or any warning when warnings are denied.
    pub fn fails(&self, deny_warnings: bool) -> bool {
        self.count(Severity::Error) > 0 || deny_warnings && self.count(Severity::Warning) > 0
    }

    /// The report in `format`.
    pub fn render(&self, format: Format) -> String {
        match format {
            Format::Json => serde_json::to_string_pretty(self).unwrap_or_default(),
            Format::Text => {
                let mut out = String::new();
                for finding in &self.findings {
                    out.push_str(&finding.to_string());
                    out.push('\n');
                }
                for lock in &self.locks {
                    out.push_str(&lock.to_string());
                    out.push('\n');
                }
                for note in &self.notes {
                    out.push_str(&format!("note: {note}\n"));
                }
                out.push_str(&format!(
                    "{} migrations: {} errors, {} warnings\n",
                    self.migrations,
                    self.count(Severity::Error),
                    self.count(Severity::Warning)
                ));
                out
            }
        }
    }
}
