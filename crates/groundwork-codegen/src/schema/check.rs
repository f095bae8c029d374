//! What differs between a committed dump file and the regenerated one, by object.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

use groundwork_migrate::split_statements;

use super::object::unique_labels;

/// How one file of the committed dump differs from the regenerated dump.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileDifference {
    /// The dump has this file; the directory does not.
    Missing {
        /// The file that should be there.
        path: PathBuf,
    },
    /// A `.sql` file in the directory that the dump does not have.
    Extra {
        /// The file that should not be there.
        path: PathBuf,
    },
    /// The file's text differs.
    Changed {
        /// The file.
        path: PathBuf,
        /// What differs in it.
        objects: Vec<ObjectDifference>,
    },
}

/// A difference inside one file of the dump.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ObjectDifference {
    /// An object the committed file does not have, by label.
    Added(String),
    /// An object the dump no longer has, by label.
    Removed(String),
    /// An object whose SQL changed, by label.
    Changed(String),
    /// The first line differs (another pg_dump version, say).
    Header {
        /// The committed file's first line.
        committed: String,
        /// The regenerated file's first line.
        generated: String,
    },
    /// The same objects, in another order or with other spacing.
    Layout,
}

impl fmt::Display for ObjectDifference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Added(label) => write!(f, "added: {label}"),
            Self::Removed(label) => write!(f, "removed: {label}"),
            Self::Changed(label) => write!(f, "changed: {label}"),
            Self::Header {
                committed,
                generated,
            } => write!(f, "first line changed from {committed:?} to {generated:?}"),
            Self::Layout => write!(f, "the order of the objects or the spacing changed"),
        }
    }
}

/// One line per difference: `schema/forms.sql: changed: function forms.f(jsonb)`.
impl fmt::Display for FileDifference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing { path } => write!(f, "{}: missing", path.display()),
            Self::Extra { path } => write!(f, "{}: extra, not part of the dump", path.display()),
            Self::Changed { path, objects } => {
                for (i, object) in objects.iter().enumerate() {
                    if i > 0 {
                        writeln!(f)?;
                    }
                    write!(f, "{}: {object}", path.display())?;
                }
                Ok(())
            }
        }
    }
}

/// The differences between two texts of one dump file, object by object.
pub(crate) fn compare(committed: &str, generated: &str) -> Vec<ObjectDifference> {
    let (old_header, old) = objects(committed);
    let (new_header, new) = objects(generated);
    let mut differences = Vec::new();
    if old_header != new_header {
        differences.push(ObjectDifference::Header {
            committed: old_header.to_owned(),
            generated: new_header.to_owned(),
        });
    }
    let old_by_label: HashMap<&str, &str> = old.iter().map(|(l, s)| (l.as_str(), *s)).collect();
    let new_by_label: HashMap<&str, &str> = new.iter().map(|(l, s)| (l.as_str(), *s)).collect();
    for (label, sql) in &new {
        match old_by_label.get(label.as_str()) {
            None => differences.push(ObjectDifference::Added(label.clone())),
            Some(old_sql) if old_sql != sql => {
                differences.push(ObjectDifference::Changed(label.clone()));
            }
            Some(_) => {}
        }
    }
    for (label, _) in &old {
        if !new_by_label.contains_key(label.as_str()) {
            differences.push(ObjectDifference::Removed(label.clone()));
        }
    }
    if differences.is_empty() && committed != generated {
        differences.push(ObjectDifference::Layout);
    }
    differences
}

/// A dump file read back: its first line, and its objects by header label with
/// their SQL. A header is a `-- ` line outside any statement, so a comment inside a
/// function body is never taken for one. Text before the first header is an object
/// with an empty label.
fn objects(text: &str) -> (&str, Vec<(String, &str)>) {
    let (first, body) = text.split_once('\n').unwrap_or((text, ""));
    let spans: Vec<(usize, usize)> = split_statements(body)
        .iter()
        .map(|s| (s.offset, s.offset + s.sql.len()))
        .collect();
    let mut spans = spans.into_iter().peekable();
    // (where the header line starts, where the object's SQL starts, label)
    let mut headers: Vec<(usize, usize, &str)> = Vec::new();
    let mut position = 0;
    for line in body.split_inclusive('\n') {
        let start = position;
        position += line.len();
        while spans.peek().is_some_and(|&(_, end)| end <= start) {
            spans.next();
        }
        let inside = spans.peek().is_some_and(|&(begin, _)| begin < start);
        if !inside && let Some(label) = line.trim_end().strip_prefix("-- ") {
            headers.push((start, position, label));
        }
    }
    let mut found: Vec<(&str, &str)> = Vec::new();
    let lead = body[..headers.first().map_or(body.len(), |h| h.0)].trim();
    if !lead.is_empty() {
        found.push(("", lead));
    }
    for (i, &(_, sql_start, label)) in headers.iter().enumerate() {
        let end = headers.get(i + 1).map_or(body.len(), |next| next.0);
        found.push((label, body[sql_start..end].trim()));
    }
    let labels = unique_labels(found.iter().map(|(label, _)| *label));
    (
        first,
        labels
            .into_iter()
            .zip(found.into_iter().map(|(_, sql)| sql))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::{ObjectDifference, compare};

    const COMMITTED: &str = "-- Generated (pg_dump 15)\n\
        \n-- function app.f(integer)\nCREATE FUNCTION app.f(p integer) AS $$\n\
        -- a comment in the body, not a header\nSELECT 1;\n$$;\n\
        \n-- table app.gone\nCREATE TABLE app.gone ();\n\
        \n-- table app.kept\nCREATE TABLE app.kept ();\n";

    #[test]
    fn names_the_objects_that_differ() {
        let generated = COMMITTED
            .replace("SELECT 1;", "SELECT 2;")
            .replace("\n-- table app.gone\nCREATE TABLE app.gone ();\n", "")
            + "\n-- index app.new\nCREATE INDEX new ON app.kept (x);\n";
        assert_eq!(
            compare(COMMITTED, &generated),
            vec![
                ObjectDifference::Changed("function app.f(integer)".into()),
                ObjectDifference::Added("index app.new".into()),
                ObjectDifference::Removed("table app.gone".into()),
            ]
        );
    }

    #[test]
    fn a_new_header_line_or_order_is_reported_as_such() {
        let generated = COMMITTED.replace("(pg_dump 15)", "(pg_dump 16)");
        assert_eq!(
            compare(COMMITTED, &generated),
            vec![ObjectDifference::Header {
                committed: "-- Generated (pg_dump 15)".into(),
                generated: "-- Generated (pg_dump 16)".into(),
            }]
        );
        let generated = COMMITTED.replace("\n\n-- table app.kept", "\n\n\n-- table app.kept");
        assert_eq!(
            compare(COMMITTED, &generated),
            vec![ObjectDifference::Layout]
        );
    }
}
