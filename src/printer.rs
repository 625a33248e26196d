//! The one way `berth` writes to the terminal, as uv's `Printer`: what a
//! command answers (tables, ids, JSON, archives) goes to stdout, status,
//! progress, warnings and errors go to stderr.
//!
//! A write to a closed stdout (`berth ps | head -1`) fails with an error that
//! [`stdout_closed`] recognises, and `main` then ends quietly with status 0,
//! as ripgrep does; nothing here panics on a failed write.

use std::fmt;
use std::io::{self, IsTerminal, Write};

/// How much goes to stderr, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// No status or progress: only the data and errors.
    Quiet,
    /// Status and progress as plain lines (stderr is a file or a pipe).
    Plain,
    /// stderr is a terminal: progress may be drawn as live bars.
    Terminal,
}

/// Writes a command's output; cheap to copy into every renderer.
#[derive(Debug, Clone, Copy)]
pub struct Printer {
    mode: Mode,
}

impl Printer {
    /// A printer in the given mode.
    pub fn new(mode: Mode) -> Printer {
        Printer { mode }
    }

    /// Terminal when stderr is a terminal, plain otherwise.
    pub fn detect() -> Printer {
        Printer::new(if io::stderr().is_terminal() {
            Mode::Terminal
        } else {
            Mode::Plain
        })
    }

    /// This printer, made quiet when `quiet` is set (a subcommand's `-q`).
    pub fn quiet_if(self, quiet: bool) -> Printer {
        if quiet {
            Printer::new(Mode::Quiet)
        } else {
            self
        }
    }

    /// The mode.
    pub fn mode(self) -> Mode {
        self.mode
    }

    /// The command's data: printed in every mode.
    pub fn stdout(self) -> Stdout {
        Stdout(io::stdout().lock())
    }

    /// Status and progress lines: nothing when quiet. A failed write is
    /// ignored: a closed stderr must not stop a build or a pull midway, and
    /// there is nowhere left to report it.
    pub fn stderr(self) -> Stderr {
        Stderr {
            quiet: self.mode == Mode::Quiet,
        }
    }

    /// Data that belongs on stderr (a container's stderr in `berth logs`):
    /// printed in every mode, and its write errors are the command's.
    pub fn stderr_data(self) -> io::StderrLock<'static> {
        io::stderr().lock()
    }

    /// A question for the user (`berth login`), in every mode.
    pub fn prompt(self, question: &str) -> io::Result<()> {
        let mut err = io::stderr().lock();
        err.write_all(question.as_bytes())?;
        err.flush()
    }

    /// A warning: shown in every mode.
    pub fn warn(self, message: impl fmt::Display) {
        let _ = writeln!(io::stderr().lock(), "warning: {message}");
    }

    /// An error that is only a message (one another process reported).
    pub fn error_message(self, message: impl fmt::Display) {
        let _ = writeln!(io::stderr().lock(), "berth: {message}");
    }

    /// An error that ends a command (or one item of it): `berth: ` and the
    /// whole chain of causes, shown in every mode.
    pub fn error(self, err: &(dyn std::error::Error + 'static)) {
        let _ = writeln!(io::stderr().lock(), "berth: {}", report(err));
    }
}

/// stdout, for data. A write to a closed pipe fails with an error
/// [`stdout_closed`] recognises.
pub struct Stdout(io::StdoutLock<'static>);

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf).map_err(mark_closed)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush().map_err(mark_closed)
    }
}

/// stderr, for status: writes nothing when quiet and never fails.
pub struct Stderr {
    quiet: bool,
}

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.quiet {
            let _ = io::stderr().lock().write_all(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let _ = io::stderr().flush();
        Ok(())
    }
}

/// The cause of a failed write to stdout whose reader has gone.
#[derive(Debug)]
struct StdoutClosed;

impl fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("writing to stdout: the reader closed the pipe")
    }
}

impl std::error::Error for StdoutClosed {}

fn mark_closed(err: io::Error) -> io::Error {
    if err.kind() == io::ErrorKind::BrokenPipe {
        io::Error::new(io::ErrorKind::BrokenPipe, StdoutClosed)
    } else {
        err
    }
}

/// Whether the error, or one of its causes, is a write to a stdout whose
/// reader has gone. Only writes through [`Printer::stdout`] count: a broken
/// pipe anywhere else (a registry connection, a container's pipe) is a real
/// failure.
pub fn stdout_closed(err: &(dyn std::error::Error + 'static)) -> bool {
    std::iter::successors(Some(err), |e| e.source()).any(|e| {
        e.downcast_ref::<io::Error>()
            .and_then(io::Error::get_ref)
            .is_some_and(|inner| inner.is::<StdoutClosed>())
    })
}

/// The error and its causes: the first line of each message joined by `: `
/// (what failed, on what, and why), then the further lines of each message
/// (hints, the output of a failed RUN) in the same order. Each message says
/// only its own part, so every cause is printed.
pub fn report(err: &(dyn std::error::Error + 'static)) -> String {
    let mut head = String::new();
    let mut rest = String::new();
    for cause in std::iter::successors(Some(err), |e| e.source()) {
        let text = cause.to_string();
        let (first, more) = text.split_once('\n').unwrap_or((&text, ""));
        if !first.is_empty() {
            if !head.is_empty() {
                head.push_str(": ");
            }
            head.push_str(first);
        }
        if !more.is_empty() {
            rest.push('\n');
            rest.push_str(more);
        }
    }
    head + &rest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_print_every_cause_then_the_hints() {
        let io = || io::Error::other("permission denied");
        let cases = [
            (
                anyhow::Error::new(io()).context("reading Dockerfile"),
                "reading Dockerfile: permission denied",
            ),
            (
                anyhow::Error::new(io())
                    .context("opening /x\nhint: check the path")
                    .context("building"),
                "building: opening /x: permission denied\nhint: check the path",
            ),
            (
                anyhow::Error::new(io())
                    .context("RUN failed with exit code 1: false\nline 1\nline 2")
                    .context("Dockerfile:2: RUN false"),
                "Dockerfile:2: RUN false: RUN failed with exit code 1: false: permission denied\n\
                 line 1\nline 2",
            ),
            // A cause that repeats its parent's words is still printed: no
            // message carries its source, so nothing is left out.
            (
                anyhow::Error::new(io()).context("reading: permission denied"),
                "reading: permission denied: permission denied",
            ),
        ];
        for (err, want) in cases {
            assert_eq!(report(err.as_ref()), want);
        }
    }

    #[test]
    fn only_a_closed_stdout_counts_as_one() {
        let closed = mark_closed(io::Error::from(io::ErrorKind::BrokenPipe));
        let wrapped = anyhow::Error::new(closed).context("printing the table");
        assert!(stdout_closed(wrapped.as_ref()));

        let other_pipe = anyhow::Error::new(io::Error::from(io::ErrorKind::BrokenPipe))
            .context("pushing a blob");
        assert!(!stdout_closed(other_pipe.as_ref()));

        let other = mark_closed(io::Error::from(io::ErrorKind::StorageFull));
        assert!(!stdout_closed(&other));
    }
}
