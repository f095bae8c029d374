//! `groundwork completions <shell>`.

use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;

/// Prints the completion script for `shell` on stdout.
pub(super) fn run(shell: Shell) -> ExitCode {
    let mut command = super::Cli::command();
    clap_complete::generate(shell, &mut command, "groundwork", &mut std::io::stdout());
    ExitCode::SUCCESS
}
