//! Waiting for a foreground process (`run` and `exec` without `--detach`)
//! while forwarding the signals the runtime receives to it, as runc does.

use crate::error::{Error, Result};
use nix::errno::Errno;
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

/// Waits for `pid`, a child of this process, and returns its exit code
/// (128 + the signal number when a signal ended it). Every signal but SIGCHLD,
/// SIGURG and SIGWINCH is forwarded to the process meanwhile; SIGWINCH calls
/// `on_resize` (the terminal bridge, if any, resizes the container's pty).
pub(crate) fn wait_forwarding_signals(pid: Pid, on_resize: &dyn Fn()) -> Result<i32> {
    let all = SigSet::all();
    all.thread_block().map_err(|source| Error::Sys {
        action: "blocking signals while waiting for the container",
        source,
    })?;
    // The process may have exited before the signals were blocked; its
    // SIGCHLD is then gone, so look before waiting for the next one.
    if let Some(code) = reap(pid)? {
        return Ok(code);
    }
    loop {
        let signal = all.wait().map_err(|source| Error::Sys {
            action: "waiting for signals",
            source,
        })?;
        match signal {
            Signal::SIGCHLD => {
                if let Some(code) = reap(pid)? {
                    return Ok(code);
                }
            }
            // SIGURG is noise from Go parents' preemption.
            Signal::SIGURG => {}
            Signal::SIGWINCH => on_resize(),
            other => {
                if let Err(err) = kill(pid, other) {
                    tracing::warn!(%err, signal = ?other, pid = pid.as_raw(), "forwarding a signal");
                }
            }
        }
    }
}

/// Reaps every exited child without blocking; returns the exit code of `pid`
/// once it is among them.
fn reap(pid: Pid) -> Result<Option<i32>> {
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(child, code)) if child == pid => return Ok(Some(code)),
            Ok(WaitStatus::Signaled(child, signal, _)) if child == pid => {
                return Ok(Some(128 + signal as i32));
            }
            Ok(WaitStatus::StillAlive) => return Ok(None),
            Ok(_) => {}
            Err(Errno::ECHILD) => {
                // No children left: the process was reaped elsewhere, so its
                // status is lost; report a generic failure as runc would.
                return Err(Error::Sys {
                    action: "waiting for the container process",
                    source: Errno::ECHILD,
                });
            }
            Err(Errno::EINTR) => {}
            Err(source) => {
                return Err(Error::Sys {
                    action: "waiting for the container process",
                    source,
                });
            }
        }
    }
}
