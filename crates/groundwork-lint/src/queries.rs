//! The query files of `queries/`, from the work tree or from a git revision, as the
//! code generator reads them.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use groundwork_codegen::{QueryDoc, parse_query_file};

/// One query file and its queries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryFile {
    /// The path relative to the project root (`queries/identity/users.sql`).
    pub path: String,
    /// Its queries by name.
    pub queries: BTreeMap<String, QueryDoc>,
}

/// Every `.sql` file below `root/queries`, sorted by path.
pub fn read_queries(root: &Path) -> std::io::Result<Vec<QueryFile>> {
    let mut files = Vec::new();
    let mut stack = vec![root.join("queries")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "sql") {
                let text = std::fs::read_to_string(&path)?;
                let relative = path.strip_prefix(root).unwrap_or(&path);
                files.push(QueryFile {
                    path: relative.to_string_lossy().replace('\\', "/"),
                    queries: parse_query_file(&text),
                });
            }
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

/// The query files of git revision `rev` of the repository at `root`.
pub fn queries_at(root: &Path, rev: &str) -> Result<Vec<QueryFile>, String> {
    let git = |args: &[&str]| -> Result<String, String> {
        let out = Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .output()
            .map_err(|e| format!("running git: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "git {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let prefix = git(&["rev-parse", "--show-prefix"])?;
    let prefix = prefix.trim();
    let listing = git(&[
        "ls-tree",
        "-r",
        "--name-only",
        rev,
        "--",
        &format!("{prefix}queries"),
    ])?;
    let mut files = Vec::new();
    for path in listing.lines().filter(|p| p.ends_with(".sql")) {
        let text = git(&["show", &format!("{rev}:{path}")])?;
        files.push(QueryFile {
            path: path.strip_prefix(prefix).unwrap_or(path).to_owned(),
            queries: parse_query_file(&text),
        });
    }
    Ok(files)
}

/// The query with cornucopia's named parameters (`:id`, `:ids`) as positional ones
/// (`$1`, `$2`), the same name getting the same number.
pub fn positional(sql: &str) -> String {
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut names: Vec<&str> = Vec::new();
    let mut i = 0;
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'\'' {
            let end = sql[i + 1..].find('\'').map_or(sql.len(), |n| i + n + 2);
            out.push_str(&sql[i..end]);
            i = end;
            continue;
        }
        if c == b'-' && bytes.get(i + 1) == Some(&b'-') {
            let end = sql[i..].find('\n').map_or(sql.len(), |n| i + n);
            out.push_str(&sql[i..end]);
            i = end;
            continue;
        }
        if c == b':'
            && bytes
                .get(i + 1)
                .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
            && (i == 0 || bytes[i - 1] != b':')
        {
            let start = i + 1;
            let end = start + bytes[start..].iter().take_while(|b| ident(**b)).count();
            let name = &sql[start..end];
            let index = names.iter().position(|n| *n == name).unwrap_or_else(|| {
                names.push(name);
                names.len() - 1
            });
            out.push_str(&format!("${}", index + 1));
            i = end;
            continue;
        }
        let ch = sql[i..].chars().next().unwrap_or(' ');
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::positional;

    #[test]
    fn named_parameters_become_positional() {
        assert_eq!(
            positional("SELECT :a::text, ':b', x::int FROM t WHERE id = :id OR y = :a -- :c"),
            "SELECT $1::text, ':b', x::int FROM t WHERE id = $2 OR y = $1 -- :c"
        );
    }
}
