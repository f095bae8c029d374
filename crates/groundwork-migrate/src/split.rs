//! Splitting a SQL file into statements, so that each runs on its own and an error can
//! be traced to a line.

/// One statement of a script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Statement<'a> {
    /// The statement, from its first token to its `;` (if any).
    pub sql: &'a str,
    /// Byte offset of `sql` in the script.
    pub offset: usize,
}

/// Splits `script` at top-level semicolons, skipping comments, quoted strings,
/// quoted identifiers and dollar-quoted bodies. Comment-only stretches yield nothing.
///
/// SQL-standard function bodies (`BEGIN ATOMIC ... END`) contain bare semicolons and
/// are not supported; use a dollar-quoted body instead.
pub fn split_statements(script: &str) -> Vec<Statement<'_>> {
    let bytes = script.as_bytes();
    let mut statements = Vec::new();
    let mut start: Option<usize> = None;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'-' if bytes.get(i + 1) == Some(&b'-') => {
                i = script[i..].find('\n').map_or(bytes.len(), |n| i + n + 1);
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = skip_block_comment(bytes, i);
                continue;
            }
            b';' => {
                if let Some(s) = start.take() {
                    statements.push(Statement {
                        sql: &script[s..=i],
                        offset: s,
                    });
                }
                i += 1;
                continue;
            }
            c if c.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            _ => {}
        }
        start.get_or_insert(i);
        i = match c {
            b'\'' => {
                let escapes = i > 0
                    && matches!(bytes[i - 1], b'e' | b'E')
                    && (i < 2 || !is_ident(bytes[i - 2]));
                skip_quoted(bytes, i, b'\'', escapes)
            }
            b'"' => skip_quoted(bytes, i, b'"', false),
            b'$' if i == 0 || !is_ident(bytes[i - 1]) => skip_dollar(script, i),
            _ => i + 1,
        };
    }
    if let Some(s) = start {
        statements.push(Statement {
            sql: script[s..].trim_end(),
            offset: s,
        });
    }
    statements
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

fn skip_block_comment(bytes: &[u8], mut i: usize) -> usize {
    let mut depth = 0;
    while i < bytes.len() {
        if bytes[i] == b'/' && bytes.get(i + 1) == Some(&b'*') {
            depth += 1;
            i += 2;
        } else if bytes[i] == b'*' && bytes.get(i + 1) == Some(&b'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    i
}

fn skip_quoted(bytes: &[u8], open: usize, quote: u8, backslash_escapes: bool) -> usize {
    let mut i = open + 1;
    while i < bytes.len() {
        if backslash_escapes && bytes[i] == b'\\' {
            i += 2;
        } else if bytes[i] == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
            } else {
                return i + 1;
            }
        } else {
            i += 1;
        }
    }
    i
}

/// Skips `$tag$ ... $tag$`; a `$` that does not open a tag (a parameter like `$1`)
/// is one character.
fn skip_dollar(script: &str, open: usize) -> usize {
    let rest = &script[open + 1..];
    let tag_len = rest
        .bytes()
        .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
        .count();
    let starts_with_digit = rest.bytes().next().is_some_and(|b| b.is_ascii_digit());
    if starts_with_digit || rest.as_bytes().get(tag_len) != Some(&b'$') {
        return open + 1;
    }
    let tag = &script[open..open + tag_len + 2];
    let body = open + tag.len();
    script[body..]
        .find(tag)
        .map_or(script.len(), |n| body + n + tag.len())
}

#[cfg(test)]
mod tests {
    use super::split_statements;

    fn sqls(script: &str) -> Vec<&str> {
        split_statements(script).iter().map(|s| s.sql).collect()
    }

    #[test]
    fn splits_at_top_level_semicolons_only() {
        let script = "-- lead; comment\nCREATE TABLE a (x text DEFAULT 'a;b');\n\
            /* block; /* nested; */ */ SELECT E'it\\'s;', \"we;ird\";\n\
            CREATE FUNCTION f() RETURNS int AS $fn$ SELECT 1; $fn$ LANGUAGE sql;\n\
            DO $$ BEGIN PERFORM 1; END $$;\n-- trailing only\n";
        assert_eq!(
            sqls(script),
            vec![
                "CREATE TABLE a (x text DEFAULT 'a;b');",
                "SELECT E'it\\'s;', \"we;ird\";",
                "CREATE FUNCTION f() RETURNS int AS $fn$ SELECT 1; $fn$ LANGUAGE sql;",
                "DO $$ BEGIN PERFORM 1; END $$;",
            ]
        );
    }

    #[test]
    fn keeps_offsets_and_a_final_statement_without_semicolon() {
        let script = "SELECT 1;\n\n  SELECT $1 ";
        let statements = split_statements(script);
        assert_eq!(statements.len(), 2);
        assert_eq!(statements[1].sql, "SELECT $1");
        assert_eq!(statements[1].offset, 13);
    }
}
