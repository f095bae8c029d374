//! The generated query functions carry their query file's documentation: the `---`
//! lines above each `--!` annotation, or a line naming the query, then the file and
//! the SQL.

use std::path::Path;

/// Every query in `queries/`: its file (relative to the project root), name and the
/// `---` lines directly above its annotation.
fn queries(root: &Path) -> Vec<(String, String, Vec<String>)> {
    let mut found = Vec::new();
    for schema in std::fs::read_dir(root.join("queries")).unwrap() {
        for file in std::fs::read_dir(schema.unwrap().path()).unwrap() {
            let path = file.unwrap().path();
            let relative = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let mut comment = Vec::new();
            for line in std::fs::read_to_string(&path).unwrap().lines() {
                if let Some(text) = line.strip_prefix("--- ") {
                    comment.push(text.trim_end().to_owned());
                } else if let Some(annotation) = line.strip_prefix("--! ") {
                    let name = annotation.split([' ', '(', ':']).next().unwrap().to_owned();
                    found.push((relative.clone(), name, std::mem::take(&mut comment)));
                } else {
                    comment.clear();
                }
            }
        }
    }
    found
}

/// The `///` lines right above `pub fn <name>()` in `code`, without the `/// `.
fn doc_of(code: &str, name: &str) -> Vec<String> {
    let lines: Vec<&str> = code.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with(&format!("pub fn {name}()")))
        .unwrap_or_else(|| panic!("no function {name}"));
    let start = lines[..at]
        .iter()
        .rposition(|l| !l.starts_with("///"))
        .map_or(0, |i| i + 1);
    lines[start..at]
        .iter()
        .map(|l| l.trim_start_matches("///").trim_start().to_owned())
        .collect()
}

#[test]
fn every_generated_query_function_is_documented_from_its_query_file() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let snapshot = root.join("crates/groundwork/src/generated");
    let queries = queries(root);
    assert!(queries.len() > 100, "{} queries", queries.len());
    let mut commented = 0;
    for (file, name, comment) in &queries {
        let generated = snapshot.join(file.replace(".sql", ".rs"));
        let code = std::fs::read_to_string(&generated).unwrap();
        let doc = doc_of(&code, name);
        let tail = if comment.is_empty() {
            assert_eq!(doc[0], format!("Query `{name}` of `{file}`:"), "{name}");
            &doc[1..]
        } else {
            commented += 1;
            // Brackets and `<` are escaped for rustdoc; the text is the comment's.
            let unescaped: Vec<String> = doc[..comment.len()]
                .iter()
                .map(|l| {
                    l.replace("\\[", "[")
                        .replace("\\]", "]")
                        .replace("\\<", "<")
                })
                .collect();
            assert_eq!(&unescaped, comment, "{name}");
            assert_eq!(doc[comment.len()..][..2], ["", &format!("From `{file}`:")]);
            &doc[comment.len() + 2..]
        };
        assert_eq!(tail[..2], ["", "```sql"], "{name}");
        assert_eq!(tail.last().map(String::as_str), Some("```"), "{name}");
        assert!(tail[tail.len() - 2].ends_with(';'), "{name}: {tail:?}");
    }
    assert!(commented > 50, "{commented} queries with comments");
}

#[test]
fn every_generated_query_module_names_its_file() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let module =
        std::fs::read_to_string(root.join("crates/groundwork/src/generated/mod.rs")).unwrap();
    for (file, _, _) in queries(root) {
        let table = Path::new(&file).file_stem().unwrap().to_string_lossy();
        let documented = format!("/// The queries of `{file}`.\n        pub mod {table} {{\n");
        assert!(module.contains(&documented), "{file} is not documented");
    }
}
