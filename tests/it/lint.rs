//! The migration linter on its corpus (`tests/lint_corpus/`), with the trace on real
//! PostgreSQL: every unsafe case is flagged with the rules it names, every safe case
//! passes with no finding at all, and every rule is proven both ways. Then the
//! command line: exit codes, `--deny warnings`, the text and JSON forms, and this
//! repository's own migrations.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use futures::StreamExt;
use groundwork_lint::{Finding, Origin, RULES, Report, Severity, TraceOptions, lint_static, trace};
use groundwork_migrate::Migration;
use groundwork_testing::{DEFAULT_MIGRATIONS, TestDb};

/// The shared test server's URL, found off the async worker threads.
async fn server_url() -> String {
    tokio::task::spawn_blocking(TestDb::server_url)
        .await
        .unwrap()
        .unwrap()
}

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lint_corpus");

/// Rows per table in the corpus's trace: enough that a scan shows, few enough to be
/// quick.
const ROWS: i64 = 500;

struct Case {
    name: String,
    safe: bool,
    /// The migrations: the corpus's base, then the case's files.
    dir: tempfile::TempDir,
    /// `-- expect:` rules (unsafe) or `-- quiet:` rules (safe).
    rules: BTreeSet<String>,
}

fn comment_rules(sql: &str, key: &str) -> BTreeSet<String> {
    sql.lines()
        .filter_map(|l| l.strip_prefix(key))
        .flat_map(|rest| rest.split_whitespace().map(ToOwned::to_owned))
        .collect()
}

/// Every case: `<name>.up.sql` (and `.down.sql`) applied as migration 2, or a
/// directory `<name>/` of migrations numbered from 2, after `base.up.sql` as 1.
fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for (kind, safe, key) in [("unsafe", false, "-- expect:"), ("safe", true, "-- quiet:")] {
        let root = Path::new(CORPUS).join(kind);
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for entry in entries {
            let name = entry.file_name().unwrap().to_string_lossy().into_owned();
            if name.ends_with(".down.sql") {
                continue;
            }
            let dir = tempfile::tempdir().unwrap();
            std::fs::copy(
                Path::new(CORPUS).join("base.up.sql"),
                dir.path().join("1_base.up.sql"),
            )
            .unwrap();
            std::fs::copy(
                Path::new(CORPUS).join("base.down.sql"),
                dir.path().join("1_base.down.sql"),
            )
            .unwrap();
            let mut rules = BTreeSet::new();
            let stem = if entry.is_dir() {
                for file in std::fs::read_dir(&entry).unwrap() {
                    let file = file.unwrap().path();
                    rules.extend(comment_rules(&std::fs::read_to_string(&file).unwrap(), key));
                    std::fs::copy(&file, dir.path().join(file.file_name().unwrap())).unwrap();
                }
                name.clone()
            } else {
                let stem = name.trim_end_matches(".up.sql").to_owned();
                rules.extend(comment_rules(
                    &std::fs::read_to_string(&entry).unwrap(),
                    key,
                ));
                std::fs::copy(&entry, dir.path().join(format!("2_{stem}.up.sql"))).unwrap();
                let down = root.join(format!("{stem}.down.sql"));
                if down.exists() {
                    std::fs::copy(&down, dir.path().join(format!("2_{stem}.down.sql"))).unwrap();
                }
                stem
            };
            cases.push(Case {
                name: format!("{kind}/{stem}"),
                safe,
                dir,
                rules,
            });
        }
    }
    cases
}

/// Static rules and the trace over a case's migrations; the findings in its own
/// files (the base is checked once, by the safe cases).
async fn lint(server: &str, dir: &Path) -> Report {
    let migrations = Migration::load_dir(dir).unwrap();
    let mut findings = lint_static(&migrations);
    let options = TraceOptions {
        rows: ROWS,
        check_down: true,
        previous: None,
    };
    let traced = trace(server, &migrations, options).await.unwrap();
    findings.extend(traced.findings);
    let mut report = Report {
        migrations: migrations.len(),
        findings,
        locks: traced.locks,
        notes: traced.notes,
    };
    report.sort();
    report
}

fn describe(findings: &[Finding]) -> String {
    findings
        .iter()
        .map(|f| format!("  {f}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn every_rule_fires_on_an_unsafe_case_and_stays_quiet_on_a_safe_one() {
    let server = server_url().await;
    let cases = cases();
    let reports: Vec<(&Case, Report)> = futures::stream::iter(&cases)
        .map(|case| {
            let server = server.clone();
            async move { (case, lint(&server, case.dir.path()).await) }
        })
        .buffer_unordered(3)
        .collect()
        .await;
    let mut problems = Vec::new();
    let mut fired = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    for (case, report) in &reports {
        let found: BTreeSet<&str> = report.findings.iter().map(|f| f.rule).collect();
        if case.safe {
            quiet.extend(case.rules.iter().cloned());
            if !report.findings.is_empty() {
                problems.push(format!(
                    "{}: a safe change has findings:\n{}",
                    case.name,
                    describe(&report.findings)
                ));
            }
        } else {
            fired.extend(found.iter().map(|r| (*r).to_owned()));
            let missing: Vec<&String> = case
                .rules
                .iter()
                .filter(|r| !found.contains(r.as_str()))
                .collect();
            if !missing.is_empty() || !report.fails(true) {
                problems.push(format!(
                    "{}: expected {missing:?} among the findings:\n{}",
                    case.name,
                    describe(&report.findings)
                ));
            }
            let base: Vec<&Finding> = report
                .findings
                .iter()
                .filter(|f| f.file.ends_with("1_base.up.sql"))
                .collect();
            assert!(base.is_empty(), "the base has findings: {base:?}");
        }
    }
    // The rolling-deploy check needs a previous release, the plan rules queries:
    // both have tests of their own.
    let migration_rules = RULES
        .iter()
        .filter(|r| r.origin != Origin::Plan && r.name != "rolling-deploy-compat");
    for rule in migration_rules {
        if !fired.contains(rule.name) {
            problems.push(format!("rule {} fires on no unsafe case", rule.name));
        }
        if !quiet.contains(rule.name) {
            problems.push(format!("rule {} is shown quiet by no safe case", rule.name));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Runs the binary off the async worker threads.
async fn groundwork(args: &[&str]) -> std::process::Output {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_groundwork"))
            .args(args)
            .env_remove("GROUNDWORK_CODEGEN_URL")
            .env_remove("NO_COLOR")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn case_dir(kind: &str, name: &str) -> tempfile::TempDir {
    let case = cases()
        .into_iter()
        .find(|c| c.name == format!("{kind}/{name}"))
        .unwrap();
    case.dir
}

#[tokio::test]
async fn the_command_reports_each_finding_with_a_hint_and_fails_on_errors() {
    let server = server_url().await;
    let dir = case_dir("unsafe", "create_index");
    let source = dir.path().to_str().unwrap();
    let out = groundwork(&[
        "migrate",
        "lint",
        "--source",
        source,
        "--database-url",
        &server,
        "--rows",
        "300",
    ])
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.contains("require-concurrent-index-creation"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        line.ends_with(
            "2_create_index.up.sql:2: error require-concurrent-index-creation: creating index \
             accounts_email_idx on accounts blocks its writes until the build finishes"
        ),
        "{line}"
    );
    assert!(
        stdout.contains("\n  hint: CREATE INDEX CONCURRENTLY"),
        "{stdout}"
    );
    assert!(
        stdout.contains("error lock-held-while-scanning: read 300 rows of public.accounts while holding ShareLock"),
        "{stdout}"
    );
}

#[tokio::test]
async fn warnings_fail_only_when_denied_and_json_carries_the_same_findings() {
    let server = server_url().await;
    let dir = case_dir("unsafe", "drop_column");
    let source = dir.path().to_str().unwrap();
    let base = [
        "migrate",
        "lint",
        "--source",
        source,
        "--database-url",
        &server,
        "--rows",
        "100",
    ];
    let out = groundwork(&base).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let mut denied = base.to_vec();
    denied.extend(["--deny", "warnings", "--format", "json"]);
    let out = groundwork(&denied).await;
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let findings = json["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{json:#}");
    assert_eq!(findings[0]["rule"], "ban-drop-column");
    assert_eq!(findings[0]["severity"], "warning");
    assert_eq!(findings[0]["line"], 2);
    assert!(
        findings[0]["hint"]
            .as_str()
            .unwrap()
            .contains("later migration")
    );
}

#[tokio::test]
async fn this_repositorys_migrations_lint_clean_with_the_trace() {
    let server = server_url().await;
    let report = lint(&server, Path::new(DEFAULT_MIGRATIONS)).await;
    assert!(
        report.findings.is_empty(),
        "findings in migrations/:\n{}",
        describe(&report.findings)
    );
    assert_eq!(report.count(Severity::Error), 0);
}

/// Runs git in `dir`, off the async worker threads.
async fn git(dir: &Path, args: &[&str]) {
    let dir = dir.to_owned();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("git")
            .current_dir(dir)
            .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
            .args(args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn a_query_of_the_previous_release_that_no_longer_prepares_is_named_with_its_object() {
    let server = server_url().await;
    let project = tempfile::tempdir().unwrap();
    let root = project.path();
    std::fs::create_dir_all(root.join("migrations")).unwrap();
    std::fs::create_dir_all(root.join("queries/shop")).unwrap();
    std::fs::write(
        root.join("migrations/1_items.up.sql"),
        "CREATE TABLE items (id bigint PRIMARY KEY, label text);",
    )
    .unwrap();
    std::fs::write(
        root.join("queries/shop/items.sql"),
        "--! item_label\nSELECT label FROM items WHERE id = :id;\n\n--! item_count\nSELECT count(*) FROM items;\n",
    )
    .unwrap();
    git(root, &["init", "-q"]).await;
    git(root, &["add", "."]).await;
    git(root, &["commit", "-qm", "items"]).await;
    // The next release renames the column its predecessor reads.
    std::fs::write(
        root.join("migrations/2_rename.up.sql"),
        "-- groundwork:lint allow renaming-column because this test wants the rolling deploy to fail\n\
         ALTER TABLE items RENAME COLUMN label TO title;",
    )
    .unwrap();
    let source = root.join("migrations");
    let out = groundwork(&[
        "migrate",
        "lint",
        "--source",
        source.to_str().unwrap(),
        "--database-url",
        &server,
        "--rows",
        "10",
    ])
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(
            "queries/shop/items.sql:1: error rolling-deploy-compat: query item_label of HEAD no \
             longer prepares against the new schema: column \"label\" does not exist"
        ),
        "{stdout}"
    );
    assert!(!stdout.contains("item_count"), "{stdout}");
}

#[tokio::test]
async fn plans_fail_on_a_sequential_scan_of_a_large_table_unless_indexed_or_annotated() {
    let server = server_url().await;
    let project = tempfile::tempdir().unwrap();
    let root = project.path();
    std::fs::create_dir_all(root.join("migrations")).unwrap();
    std::fs::create_dir_all(root.join("queries/shop")).unwrap();
    std::fs::write(
        root.join("migrations/1_items.up.sql"),
        "CREATE TABLE items (id bigint PRIMARY KEY, label text NOT NULL, price bigint);",
    )
    .unwrap();
    let queries = root.join("queries/shop/items.sql");
    let check = async || {
        groundwork(&[
            "check",
            "plans",
            "--source",
            root.join("migrations").to_str().unwrap(),
            "--queries",
            root.join("queries").to_str().unwrap(),
            "--database-url",
            &server,
            "--rows",
            "20000",
        ])
        .await
    };
    let by_label = "--! item_by_label\nSELECT id FROM items WHERE label = :label;\n\n\
                    --! item_by_id\nSELECT label FROM items WHERE id = :id;\n";
    std::fs::write(&queries, by_label).unwrap();
    let out = check().await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(
            "queries/shop/items.sql:1: error plan-seq-scan: query item_by_label reads all of \
             public.items (20000 rows) with a sequential scan"
        ),
        "{stdout}"
    );
    assert!(
        !stdout.contains("error plan-seq-scan: query item_by_id"),
        "{stdout}"
    );

    std::fs::write(
        &queries,
        format!("-- plan: allow-seq-scan because the shop has few items\n{by_label}"),
    )
    .unwrap();
    let out = check().await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    std::fs::write(&queries, by_label).unwrap();
    std::fs::write(
        root.join("migrations/2_index.up.sql"),
        "CREATE INDEX items_label_idx ON items (label);",
    )
    .unwrap();
    let out = check().await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn docs_migrations_describes_every_rule() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/MIGRATIONS.md"))
        .unwrap();
    let missing: Vec<&str> = RULES
        .iter()
        .map(|r| r.name)
        .filter(|name| !doc.contains(&format!("**`{name}`**")))
        .collect();
    assert!(missing.is_empty(), "docs/MIGRATIONS.md lacks {missing:?}");
}
