//! A supervisor process that cleans up after its owner.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, Command, Stdio};

/// A child process whose standard input is a pipe only this process holds.
///
/// The child's script blocks reading that pipe and runs its clean-up when the read
/// returns, which happens when the [`Lifeline`] is dropped or this process exits for
/// any reason. Drop waits for the clean-up to finish.
pub(crate) struct Lifeline {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Lifeline {
    /// Spawns `command` with piped stdin and stdout and returns the first line the
    /// child prints (its report, for example a process id).
    ///
    /// The child gets a process group of its own, so that a signal sent to the
    /// owner's group (Ctrl-C, `timeout`, a CI runner stopping a job) does not kill it
    /// before it has cleaned up; it still notices the owner's death through the pipe.
    pub(crate) fn spawn(mut command: Command) -> std::io::Result<(Self, String)> {
        command
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = command.spawn()?;
        let stdin = child.stdin.take();
        let mut first = String::new();
        if let Some(stdout) = child.stdout.take() {
            BufReader::new(stdout).read_line(&mut first)?;
        }
        Ok((Self { child, stdin }, first.trim().to_owned()))
    }
}

impl Drop for Lifeline {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}
