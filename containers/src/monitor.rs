//! The monitor of a detached container: a process in its own session,
//! double-forked so it outlives the `berth run -d` that started it and never
//! gets a terminal. It owns the container as berth does in the foreground
//! (its output goes to the log) and tells `berth run` over a pipe, given to
//! it as file descriptor 3, whether the container started.

use serde::{Deserialize, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// The file in a container's directory that gets the monitor's own messages.
pub const MONITOR_LOG: &str = "monitor.log";

/// The descriptor the monitor reports on.
pub const READY_FD: i32 = 3;

/// What the monitor reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "outcome")]
pub enum Outcome {
    /// The container runs.
    Started,
    /// It could not start.
    Failed {
        /// Why.
        message: String,
        /// The exit code for `berth run` (Docker's 125, 126 or 127).
        code: i32,
    },
}

/// Starts the monitor `command` in a new session with the report pipe as
/// descriptor 3 and its error output appended to `log` (the monitor's own
/// warnings, kept in the container's directory), and waits for its report;
/// `None` if it ended without one.
pub fn spawn(mut command: Command, log: &Path) -> io::Result<Option<Outcome>> {
    let (mut ready, writer) = io::pipe()?;
    let writer: OwnedFd = writer.into();
    let writer_fd = writer.as_raw_fd();
    let log = OpenOptions::new().create(true).append(true).open(log)?;
    command
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    // SAFETY: setsid and dup2 are async-signal-safe and allocate nothing.
    unsafe {
        command.pre_exec(move || {
            if libc::setsid() < 0 || libc::dup2(writer_fd, READY_FD) < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn()?;
    drop(writer);
    // The first monitor process exits as soon as it has forked the real one.
    child.wait()?;
    let mut answer = String::new();
    ready.read_to_string(&mut answer)?;
    Ok(serde_json::from_str(&answer).ok())
}

/// In the monitor, before any thread starts: forks, and the parent exits,
/// so the monitor is no child of `berth run` and cannot take a terminal.
pub fn daemonize() -> io::Result<()> {
    // SAFETY: the process is single-threaded here, so the child may run on.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        // SAFETY: _exit ends the parent without running destructors twice.
        0 => Ok(()),
        _ => unsafe { libc::_exit(0) },
    }
}

/// The report pipe, taken once.
#[derive(Debug)]
pub struct Reporter(Option<File>);

impl Reporter {
    /// The pipe at descriptor 3.
    ///
    /// # Safety
    /// Descriptor 3 must be the report pipe and owned by nothing else.
    pub unsafe fn from_ready_fd() -> Reporter {
        // SAFETY: the caller guarantees the descriptor.
        Reporter(Some(unsafe { File::from_raw_fd(READY_FD) }))
    }

    /// Sends the outcome (only the first one counts) and closes the pipe.
    pub fn report(&mut self, outcome: &Outcome) {
        if let Some(mut file) = self.0.take()
            && let Ok(text) = serde_json::to_vec(outcome)
        {
            let _ = file.write_all(&text);
        }
    }
}
