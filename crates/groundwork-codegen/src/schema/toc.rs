//! pg_dump's plain output read back as its table of contents: one entry per
//! `-- Name: ...; Type: ...; Schema: ...; Owner: ...` header, with the statements that
//! follow it.

use groundwork_migrate::split_statements;

use super::SchemaError;

/// One table-of-contents entry of pg_dump's output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    /// `Name:`: the object's name as pg_dump tags it (`users`, `users users_pkey`,
    /// `f(integer)`, `FUNCTION f(p integer)` for a comment or privileges).
    pub(crate) tag: String,
    /// `Type:`: `TABLE`, `FUNCTION`, `FK CONSTRAINT`, `ACL`, ...
    pub(crate) kind: String,
    /// `Schema:`; `None` for `-` (schemas, extensions and other database-wide
    /// objects).
    pub(crate) schema: Option<String>,
    /// `Owner:`; empty for objects without one.
    pub(crate) owner: String,
    /// The entry's statements as pg_dump wrote them, one after the other: session
    /// settings and the blank lines between statements left out.
    pub(crate) sql: String,
}

const HEADER: &str = "-- Name: ";

/// The entries of `output`, in pg_dump's order. What comes before the first entry
/// (the preamble of session settings) and psql's `\restrict` / `\unrestrict` lines
/// around the dump are left out.
pub(crate) fn parse(output: &str) -> Result<Vec<Entry>, SchemaError> {
    let text: String = output
        .split_inclusive('\n')
        .filter(|line| !line.starts_with("\\restrict ") && !line.starts_with("\\unrestrict "))
        .collect();
    let mut entries: Vec<Entry> = Vec::new();
    let mut previous_end = 0;
    for statement in split_statements(&text) {
        // Headers are comments between statements, never inside one (a function body
        // may hold any text).
        let gap = &text[previous_end..statement.offset];
        for line in gap.lines() {
            if let Some(header) = line.strip_prefix(HEADER) {
                entries.push(Entry::from_header(header)?);
            }
        }
        previous_end = statement.offset + statement.sql.len();
        if is_session_setting(statement.sql) {
            continue;
        }
        let Some(entry) = entries.last_mut() else {
            continue;
        };
        if !entry.sql.is_empty() {
            entry.sql.push_str(&separator(gap));
        }
        entry.sql.push_str(statement.sql);
    }
    Ok(entries)
}

impl Entry {
    fn from_header(header: &str) -> Result<Self, SchemaError> {
        let malformed =
            || SchemaError::PgDumpOutput(format!("a malformed header: {HEADER}{header}"));
        let (rest, owner) = header.rsplit_once("; Owner:").ok_or_else(malformed)?;
        let (rest, schema) = rest.rsplit_once("; Schema:").ok_or_else(malformed)?;
        let (tag, kind) = rest.rsplit_once("; Type:").ok_or_else(malformed)?;
        let schema = schema.trim();
        Ok(Self {
            tag: tag.to_owned(),
            kind: kind.trim().to_owned(),
            schema: (schema != "-").then(|| schema.to_owned()),
            owner: owner.trim().to_owned(),
            sql: String::new(),
        })
    }
}

/// pg_dump's `SET ...` and `SELECT pg_catalog.set_config(...)`: settings for the
/// session that restores the dump, not part of the schema.
fn is_session_setting(sql: &str) -> bool {
    sql.starts_with("SET ") || sql.starts_with("SELECT pg_catalog.set_config(")
}

/// What goes between two statements of one entry: a line break and the next
/// statement's indentation, without the blank lines pg_dump puts there.
fn separator(gap: &str) -> String {
    match gap.rfind('\n') {
        Some(last) => {
            let indent = &gap[last + 1..];
            if indent.chars().all(char::is_whitespace) {
                format!("\n{indent}")
            } else {
                "\n".to_owned()
            }
        }
        None if gap.is_empty() => "\n".to_owned(),
        None => gap.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::{Entry, parse};

    const OUTPUT: &str = "--\n-- PostgreSQL database dump\n--\n\n\\restrict abc\n\n\
        -- Dumped from database version 15.18\n\nSET statement_timeout = 0;\n\
        SELECT pg_catalog.set_config('search_path', '', false);\n\n\
        --\n-- Name: f(integer); Type: FUNCTION; Schema: app; Owner: owner\n--\n\n\
        CREATE FUNCTION app.f(p integer) RETURNS integer\n    LANGUAGE plpgsql\n    AS $$\n\
        BEGIN\n\n-- Name: not a header; Type: X; Schema: y; Owner: z\n    RETURN p;\nEND\n$$;\n\n\n\
        ALTER FUNCTION app.f(p integer) OWNER TO owner;\n\n\
        --\n-- Name: EXTENSION pgcrypto; Type: COMMENT; Schema: -; Owner: \n--\n\n\
        COMMENT ON EXTENSION pgcrypto IS 'cryptographic functions';\n\n\
        SET default_tablespace = '';\n\n\
        --\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict abc\n\n";

    #[test]
    fn reads_entries_without_settings_or_blank_lines_between_statements() {
        let entries = parse(OUTPUT).unwrap();
        assert_eq!(
            entries,
            vec![
                Entry {
                    tag: "f(integer)".into(),
                    kind: "FUNCTION".into(),
                    schema: Some("app".into()),
                    owner: "owner".into(),
                    sql: "CREATE FUNCTION app.f(p integer) RETURNS integer\n    LANGUAGE plpgsql\n    \
                          AS $$\nBEGIN\n\n-- Name: not a header; Type: X; Schema: y; Owner: z\n    \
                          RETURN p;\nEND\n$$;\nALTER FUNCTION app.f(p integer) OWNER TO owner;"
                        .into(),
                },
                Entry {
                    tag: "EXTENSION pgcrypto".into(),
                    kind: "COMMENT".into(),
                    schema: None,
                    owner: String::new(),
                    sql: "COMMENT ON EXTENSION pgcrypto IS 'cryptographic functions';".into(),
                },
            ]
        );
    }

    #[test]
    fn a_malformed_header_is_an_error() {
        let err = parse("--\n-- Name: f; Type: FUNCTION\n--\nSELECT 1;\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unexpected output from pg_dump: a malformed header: -- Name: f; Type: FUNCTION"
        );
    }
}
