//! Running the `groundwork` binary and reading what it printed.

use std::process::{Command, Output};

/// Runs `groundwork <args> --database-url <url>` in an empty directory, with no
/// `GROUNDWORK_ENV` or `DATABASE_URL` from the environment.
pub fn groundwork_on(url: &str, args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_groundwork"))
        .current_dir(dir.path())
        .args(args)
        .args(["--database-url", url])
        .env_remove("GROUNDWORK_ENV")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap()
}

/// What a command printed on standard output.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What a command printed, standard output then standard error.
pub fn text(out: &Output) -> String {
    format!("{}{}", stdout(out), String::from_utf8_lossy(&out.stderr))
}
