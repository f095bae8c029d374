//! Colour, progress and questions: only for a person at a terminal. Output that goes to
//! a file, a pipe or a test is plain text, line by line.

use std::fmt::Display;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// When to colour the output (`--color`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// When the output is a terminal and `NO_COLOR` is not set.
    #[default]
    Auto,
    /// Always, also into files and pipes.
    Always,
    /// Never.
    Never,
}

/// An output stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stream {
    /// Results.
    Stdout,
    /// Errors, notices and progress.
    Stderr,
}

impl Stream {
    fn is_terminal(self) -> bool {
        let dumb = std::env::var_os("TERM").is_some_and(|t| t == "dumb");
        !dumb
            && match self {
                Self::Stdout => std::io::stdout().is_terminal(),
                Self::Stderr => std::io::stderr().is_terminal(),
            }
    }
}

/// Which streams are coloured, decided once per process.
static COLORS: OnceLock<(bool, bool)> = OnceLock::new();

/// Decides the colours from `--color` and the environment.
pub(crate) fn init(choice: ColorChoice) {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let decide = |stream: Stream| match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => !no_color && stream.is_terminal(),
    };
    let _ = COLORS.set((decide(Stream::Stdout), decide(Stream::Stderr)));
}

fn colored(stream: Stream) -> bool {
    let (stdout, stderr) = COLORS.get().copied().unwrap_or_default();
    match stream {
        Stream::Stdout => stdout,
        Stream::Stderr => stderr,
    }
}

/// A text style, as an ANSI SGR code.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Style(&'static str);

impl Style {
    /// Success.
    pub(crate) const GREEN: Self = Self("32");
    /// Waiting or notable.
    pub(crate) const YELLOW: Self = Self("33");
    /// Failure.
    pub(crate) const RED: Self = Self("1;31");
    /// Headings.
    pub(crate) const BOLD: Self = Self("1");
    /// Less important detail.
    pub(crate) const DIM: Self = Self("2");
}

/// `text` in `style` when `stream` is coloured, else as is.
pub(crate) fn paint(stream: Stream, style: Style, text: impl Display) -> String {
    if colored(stream) {
        format!("\x1b[{}m{text}\x1b[0m", style.0)
    } else {
        text.to_string()
    }
}

/// Prints an error as `error: ...` on stderr.
pub(crate) fn error(message: impl Display) {
    let _ = writeln!(
        std::io::stderr(),
        "{} {message}",
        paint(Stream::Stderr, Style::RED, "error:")
    );
}

/// A spinner on stderr while a slow step runs, when stderr is a terminal; nothing
/// otherwise. It clears its line when finished or dropped.
pub(crate) struct Progress {
    running: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Progress {
    /// Starts showing `message`.
    pub(crate) fn start(message: impl Into<String>) -> Self {
        let running = Arc::new(AtomicBool::new(true));
        let thread = Stream::Stderr.is_terminal().then(|| {
            let running = Arc::clone(&running);
            let message = message.into();
            std::thread::spawn(move || spin(&running, &message))
        });
        Self { running, thread }
    }

    /// Stops and clears the spinner (as dropping it does).
    pub(crate) fn finish(self) {}
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.running.store(false, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn spin(running: &AtomicBool, message: &str) {
    const FRAMES: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
    let started = Instant::now();
    let mut stderr = std::io::stderr();
    for frame in FRAMES.iter().cycle() {
        if !running.load(Ordering::Relaxed) {
            break;
        }
        let seconds = started.elapsed().as_secs();
        let elapsed = if seconds > 0 {
            paint(Stream::Stderr, Style::DIM, format!(" ({seconds} s)"))
        } else {
            String::new()
        };
        let line = format!(
            "{} {message}{elapsed}",
            paint(Stream::Stderr, Style::YELLOW, frame)
        );
        let _ = write!(stderr, "\r\x1b[2K{line}");
        let _ = stderr.flush();
        std::thread::sleep(Duration::from_millis(80));
    }
    let _ = write!(stderr, "\r\x1b[2K");
    let _ = stderr.flush();
}

/// The answer to a yes/no question.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// The person said yes.
    Yes,
    /// The person said no, or nothing.
    No,
    /// No person can answer: stdin is not a terminal.
    NoTerminal,
}

/// Asks `question` on stderr and reads the answer from stdin, when stdin is a terminal.
/// Only `y` or `yes` is yes.
pub(crate) fn confirm(question: &str) -> Answer {
    if !std::io::stdin().is_terminal() {
        return Answer::NoTerminal;
    }
    let mut stderr = std::io::stderr();
    let _ = write!(stderr, "{question} [y/N] ");
    let _ = stderr.flush();
    let mut line = String::new();
    if std::io::stdin().read_line(&mut line).is_err() {
        return Answer::No;
    }
    match line.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Answer::Yes,
        _ => Answer::No,
    }
}
