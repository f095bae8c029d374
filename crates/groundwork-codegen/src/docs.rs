//! The documentation of the generated query functions, read from the query files.
//!
//! cornucopia documents a function only with `---` lines placed *after* its `--!`
//! annotation; groundwork's query files put them above it, where a reader of the SQL
//! looks. This module reads them from there, and the SQL below the annotation, so that
//! [`split`](super::split) can give every generated query function a doc comment: the
//! `---` lines (or, for a query without any, a line naming it), then the query file and
//! its SQL.

use std::collections::BTreeMap;
use std::path::Path;

use super::manifest::files_below;
use groundwork_support::io::{IoError, io_error};

/// The documentation of every query, by query file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct QueryDocs {
    /// By the query file's path relative to the project root without `.sql`
    /// (`queries/identity/users`), which is also its generated module's path.
    files: BTreeMap<String, BTreeMap<String, QueryDoc>>,
}

/// One query as written in its file: its documentation, SQL and plan annotations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueryDoc {
    /// The `---` lines directly above the `--!` annotation, without the `---` and one
    /// space after it.
    pub comment: Vec<String>,
    /// The SQL below the annotation, as written, up to the line ending the statement.
    pub sql: String,
    /// 1-based line of the `--!` annotation.
    pub line: usize,
    /// What `-- plan: ...` comments above the query allow, as written after `plan:`
    /// (`allow-seq-scan because the table has one row per tenant`). They are plain SQL
    /// comments, which cornucopia skips.
    pub plan: Vec<String>,
}

impl QueryDocs {
    /// Reads every `.sql` file below `root/queries`.
    pub(crate) fn read(root: &Path) -> Result<Self, IoError> {
        let dir = root.join("queries");
        let mut files = BTreeMap::new();
        for (relative, path) in files_below(root, &dir, "sql").map_err(io_error("listing", &dir))? {
            let text = std::fs::read_to_string(&path).map_err(io_error("reading", &path))?;
            let module = relative.trim_end_matches(".sql").to_owned();
            files.insert(module, parse_query_file(&text));
        }
        Ok(Self { files })
    }

    /// The queries of the file whose generated module is at `path`
    /// (`queries/identity/users`).
    pub(crate) fn module(&self, path: &str) -> Option<&BTreeMap<String, QueryDoc>> {
        self.files.get(path)
    }
}

/// The queries of one query file, by name.
pub fn parse_query_file(text: &str) -> BTreeMap<String, QueryDoc> {
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    let mut queries = BTreeMap::new();
    let mut comment = Vec::new();
    let mut plan = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        if let Some(allow) = line
            .strip_prefix("--")
            .and_then(|l| l.trim_start().strip_prefix("plan:"))
        {
            plan.push(allow.trim().to_owned());
            continue;
        }
        if let Some(text) = line.strip_prefix("---") {
            comment.push(text.strip_prefix(' ').unwrap_or(text).to_owned());
            continue;
        }
        let Some(annotation) = line.strip_prefix("--!") else {
            comment.clear();
            continue;
        };
        let name: String = annotation
            .trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let doc = QueryDoc {
            comment: std::mem::take(&mut comment),
            sql: statement(&lines[index + 1..]),
            line: index + 1,
            plan: std::mem::take(&mut plan),
        };
        queries.insert(name, doc);
    }
    queries
}

/// The SQL at the start of `lines` (those after a `--!` annotation): past cornucopia's
/// attribute (`--#`) and comment (`---`) lines, up to the next annotation, and there
/// back to the last line that ends with `;`, which leaves out the blank lines and
/// comments that separate it from the next query.
fn statement(lines: &[&str]) -> String {
    let start = lines
        .iter()
        .position(|l| !(l.starts_with("--#") || l.starts_with("---")))
        .unwrap_or(lines.len());
    let lines = &lines[start..];
    let end = lines
        .iter()
        .position(|l| l.starts_with("--!") || l.starts_with("--:"))
        .unwrap_or(lines.len());
    let lines = &lines[..end];
    let end = lines
        .iter()
        .rposition(|l| l.ends_with(';'))
        .map(|i| i + 1)
        .or_else(|| {
            lines
                .iter()
                .rposition(|l| !(l.is_empty() || l.starts_with("--")))
                .map(|i| i + 1)
        })
        .unwrap_or(0);
    lines[..end].join("\n")
}

impl QueryDoc {
    /// The doc comment of the generated function `name` of the query file `file`
    /// (`queries/identity/users.sql`), one string per line; `more` are lines that
    /// cornucopia already documented it with (`---` lines after the annotation).
    pub(crate) fn lines(&self, name: &str, file: &str, more: &[String]) -> Vec<String> {
        let mut lines: Vec<String> = self
            .comment
            .iter()
            .chain(more)
            .map(|l| literal(l))
            .collect();
        if lines.is_empty() {
            lines.push(format!("Query `{name}` of `{file}`:"));
        } else {
            lines.extend([String::new(), format!("From `{file}`:")]);
        }
        lines.push(String::new());
        lines.push("```sql".to_owned());
        lines.extend(self.sql.lines().map(str::to_owned));
        lines.push("```".to_owned());
        lines
    }
}

/// A comment line as rustdoc's Markdown, showing what SQL comments say as written:
/// brackets (`ids[i]`) and `<` are escaped outside code spans, so that they make
/// neither links nor HTML tags.
fn literal(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut in_code = false;
    for c in line.chars() {
        if c == '`' {
            in_code = !in_code;
        } else if !in_code && matches!(c, '[' | ']' | '<') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{QueryDoc, literal, parse_query_file};

    #[test]
    fn comment_text_stays_literal_outside_code_spans() {
        assert_eq!(
            literal("by (organization_ids[i], ids[i]), at <= P, `a[1]` <b>"),
            r"by (organization_ids\[i\], ids\[i\]), at \<= P, `a[1]` \<b>"
        );
    }

    const FILE: &str = "\
--: User(first_name?)

--- Case-insensitive, matching the unique index
--- on lower(email).
--! user_get_by_email : User
SELECT id, email
FROM identity.users
WHERE lower(email) = lower(:email);

--- Not this one's: a blank line follows.

-- plan: allow-seq-scan because a test says so
--! user_get : User
--# allow(dead_code)
SELECT id, email FROM identity.users WHERE id = :id;

-- Section comment, not part of the query above.
--! user_count
SELECT count(*) FROM identity.users
";

    #[test]
    fn reads_the_comment_above_each_annotation_and_the_sql_below() {
        let queries = parse_query_file(FILE);
        assert_eq!(
            queries.keys().collect::<Vec<_>>(),
            ["user_count", "user_get", "user_get_by_email"]
        );
        assert_eq!(
            queries["user_get_by_email"],
            QueryDoc {
                comment: vec![
                    "Case-insensitive, matching the unique index".to_owned(),
                    "on lower(email).".to_owned()
                ],
                sql: "SELECT id, email\nFROM identity.users\nWHERE lower(email) = lower(:email);"
                    .to_owned(),
                line: 5,
                plan: vec![],
            }
        );
        assert_eq!(
            queries["user_get"],
            QueryDoc {
                comment: vec![],
                sql: "SELECT id, email FROM identity.users WHERE id = :id;".to_owned(),
                line: 13,
                plan: vec!["allow-seq-scan because a test says so".to_owned()],
            }
        );
        assert_eq!(
            queries["user_count"].sql,
            "SELECT count(*) FROM identity.users"
        );
    }

    #[test]
    fn documents_a_query_with_its_comment_or_its_name_then_its_file_and_sql() {
        let queries = parse_query_file(FILE);
        let file = "queries/identity/users.sql";
        assert_eq!(
            queries["user_get_by_email"].lines("user_get_by_email", file, &[]),
            [
                "Case-insensitive, matching the unique index",
                "on lower(email).",
                "",
                "From `queries/identity/users.sql`:",
                "",
                "```sql",
                "SELECT id, email",
                "FROM identity.users",
                "WHERE lower(email) = lower(:email);",
                "```",
            ]
        );
        assert_eq!(
            queries["user_get"].lines("user_get", file, &[]),
            [
                "Query `user_get` of `queries/identity/users.sql`:",
                "",
                "```sql",
                "SELECT id, email FROM identity.users WHERE id = :id;",
                "```",
            ]
        );
    }
}
