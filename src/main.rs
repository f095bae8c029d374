//! The `groundwork` command: migrations, code generation and the local cluster.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // The project is found first: path options default to the project root's
    // directories, and relative paths given on the command line mean this directory.
    let project = cli::project::current();
    // Exits 2 on a wrong command line, 0 for --help and --version.
    let args = cli::Cli::parse();
    // Completion scripts need nothing from the project.
    let ready = if args.in_project() {
        project.load_env().and_then(|()| project.enter())
    } else {
        Ok(())
    };
    // After `.env`, which may set NO_COLOR.
    cli::output::init(args.color());
    if let Err(error) = ready {
        cli::output::error(error);
        return ExitCode::FAILURE;
    }
    // Threads start only now: loading `.env` above sets environment variables, which is
    // sound only while the process has a single thread.
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            cli::output::error(format!("starting the async runtime: {error}"));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(args)) {
        Ok(code) => code,
        Err(error) => {
            cli::output::error(error);
            ExitCode::FAILURE
        }
    }
}
