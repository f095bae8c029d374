//! Build-time code generation: the committed code is current, and a broken query is
//! reported against its .sql file.

use std::path::Path;

use groundwork_codegen::{CodegenError, GeneratedCode, Project};
use groundwork_testing::TestDb;

use crate::files;

fn project_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A copy of this project's SQL in a scratch directory.
fn scratch_project() -> (tempfile::TempDir, Project) {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["migrations", "queries"] {
        files::copy_tree(&project_root().join(sub), &dir.path().join(sub));
    }
    let project = Project::new(dir.path());
    (dir, project)
}

#[test]
fn the_committed_code_matches_its_inputs_without_a_database() {
    let project = Project::new(project_root());
    assert_eq!(project.stale_files().unwrap(), None);
}

#[tokio::test]
async fn regenerating_reproduces_the_committed_code() {
    let project = Project::new(project_root());
    let stale = project.check(&TestDb::server_url().unwrap()).await.unwrap();
    assert!(
        stale.is_empty(),
        "stale: {stale:?}; run `cargo run -- codegen`"
    );
}

#[tokio::test]
async fn a_query_on_a_missing_column_is_reported_against_its_file() {
    let (_dir, project) = scratch_project();
    std::fs::write(
        project.queries_dir().join("identity").join("broken.sql"),
        "--! user_get_shoe_size\nSELECT shoe_size FROM identity.users WHERE id = :id;\n",
    )
    .unwrap();
    assert!(
        project.stale_files().unwrap().is_some(),
        "a new query file makes the code stale"
    );
    let err = project
        .generate(&TestDb::server_url().unwrap())
        .await
        .unwrap_err();
    let CodegenError::Query(report) = &err else {
        panic!("expected a query error, got {err}");
    };
    assert!(report.contains("broken.sql"), "{report}");
    assert!(report.contains("shoe_size"), "{report}");
}

#[test]
fn stale_inputs_are_named() {
    let (dir, project) = scratch_project();
    let manifest = project.current_manifest().unwrap();
    let code = GeneratedCode {
        files: [("mod.rs".to_owned(), "// generated\n".to_owned())].into(),
    };
    project.write_snapshot(&code, &manifest).unwrap();
    assert_eq!(project.stale_files().unwrap(), None);
    let users = project.queries_dir().join("identity").join("users.sql");
    let text = std::fs::read_to_string(&users).unwrap();
    std::fs::write(&users, format!("{text}\n-- edited\n")).unwrap();
    assert_eq!(
        project.stale_files().unwrap(),
        Some(vec!["queries/identity/users.sql".to_owned()])
    );
    drop(dir);
}

/// The snapshot has one file per query file, under a `mod.rs` that includes them.
#[test]
fn the_snapshot_mirrors_the_query_files() {
    let project = Project::new(project_root());
    for schema in std::fs::read_dir(project.queries_dir()).unwrap() {
        let schema = schema.unwrap().path();
        for table in std::fs::read_dir(&schema).unwrap() {
            let table = table.unwrap().path();
            let relative = format!(
                "queries/{}/{}.rs",
                schema.file_name().unwrap().to_string_lossy(),
                table.file_stem().unwrap().to_string_lossy()
            );
            assert!(
                project.snapshot_dir().join(&relative).is_file(),
                "{relative} is missing"
            );
            let mod_rs = std::fs::read_to_string(project.snapshot_dir().join("mod.rs")).unwrap();
            assert!(mod_rs.contains(&format!("include!(\"{relative}\")")));
        }
    }
}

/// Writing generated code into a directory removes files a previous run left.
#[test]
fn writing_code_removes_files_no_longer_generated() {
    let dir = tempfile::tempdir().unwrap();
    let code = |names: &[&str]| GeneratedCode {
        files: names
            .iter()
            .map(|n| ((*n).to_owned(), format!("// {n}\n")))
            .collect(),
    };
    Project::write_code(
        dir.path(),
        &code(&["mod.rs", "queries/a/b.rs", "queries/a/c.rs"]),
    )
    .unwrap();
    Project::write_code(dir.path(), &code(&["mod.rs", "queries/a/b.rs"])).unwrap();
    assert!(dir.path().join("queries/a/b.rs").is_file());
    assert!(!dir.path().join("queries/a/c.rs").exists());
}
