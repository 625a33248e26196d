//! The caller's terminal as the container's, for an attached `run` or `exec` whose
//! process asks for a terminal without a console socket, as runc does.
//!
//! libcontainer hands a container's pty master only to a console socket, so
//! the runtime listens on a private one, receives the master, puts the
//! caller's terminal in raw mode and copies bytes both ways until the
//! container closes its side. Window size changes follow (SIGWINCH), and the
//! caller's terminal settings are restored when the proxy ends.

use crate::error::{Error, Result};
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
use nix::sys::termios::{self, SetArg, Termios};
use std::io::{IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

/// Whether this process's stdin is a terminal the container can share.
pub(crate) fn stdin_is_terminal() -> bool {
    // SAFETY: isatty has no memory-safety preconditions.
    unsafe { libc::isatty(libc::STDIN_FILENO) == 1 }
}

/// A console socket waiting for the container's pty master.
pub(crate) struct ConsoleSocket {
    path: PathBuf,
    receiver: JoinHandle<Result<OwnedFd>>,
}

impl ConsoleSocket {
    /// Listens on a new socket and receives the first descriptor sent to it
    /// on a helper thread. The socket lives in a private directory of its
    /// own under `/tmp` (made by `mkdtemp`, mode 0700), not under the state
    /// directory: a socket path must fit in 108 bytes, and state
    /// directories (`--root`, and the container id in them) can be longer.
    pub(crate) fn listen(state_dir: &Path, id: &str) -> Result<ConsoleSocket> {
        let template = Path::new(CONSOLE_PARENT).join("berth-console-XXXXXX");
        let dir = nix::unistd::mkdtemp(&template).map_err(|source| Error::Sys {
            action: "creating a private directory for the console socket",
            source,
        })?;
        let path = dir.join("console.sock");
        let listener = match UnixListener::bind(&path) {
            Ok(listener) => listener,
            Err(e) => {
                let _ = std::fs::remove_dir(&dir);
                return Err(Error::io("listening on", &path, e));
            }
        };
        tracing::debug!(container = id, state = %state_dir.display(), socket = %path.display(), "console socket");
        let receiver = std::thread::Builder::new()
            .name("console-socket".into())
            .spawn(move || receive_fd(&listener))
            .map_err(|e| Error::io("starting the console socket thread for", &dir, e));
        let receiver = match receiver {
            Ok(receiver) => receiver,
            Err(e) => {
                remove_socket(&path);
                return Err(e);
            }
        };
        Ok(ConsoleSocket { path, receiver })
    }

    /// The socket's path, for `--console-socket`.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The pty master, once the container's init has sent it.
    pub(crate) fn master(self) -> Result<OwnedFd> {
        let received = self.receiver.join().unwrap_or_else(|_| {
            Err(Error::InvalidInput(
                "the console socket thread panicked".into(),
            ))
        });
        remove_socket(&self.path);
        received
    }

    /// Removes the socket when the container failed before sending anything;
    /// the receiving thread stays blocked until the process exits.
    pub(crate) fn abandon(self) {
        remove_socket(&self.path);
    }
}

/// Where console sockets' private directories go: short, so that every
/// socket path fits in `sun_path`.
const CONSOLE_PARENT: &str = "/tmp";

/// Removes a console socket and its private directory.
fn remove_socket(path: &Path) {
    let _ = std::fs::remove_file(path);
    if let Some(dir) = path.parent() {
        let _ = std::fs::remove_dir(dir);
    }
}

fn receive_fd(listener: &UnixListener) -> Result<OwnedFd> {
    let (stream, _) = listener
        .accept()
        .map_err(|e| Error::io("accepting on", "the console socket", e))?;
    let mut byte = [0u8; 64];
    let mut iov = [IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|source| Error::Sys {
        action: "receiving the pty master from the console socket",
        source,
    })?;
    for cmsg in msg.cmsgs().map_err(|source| Error::Sys {
        action: "reading the console socket's control message",
        source,
    })? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg
            && let Some(&fd) = fds.first()
        {
            // SAFETY: the kernel just installed this descriptor for us.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
    }
    Err(Error::InvalidInput(
        "the console socket received no pty master".into(),
    ))
}

/// The caller's terminal in raw mode, bridged to the container's pty.
pub(crate) struct Proxy {
    saved: Option<Termios>,
    output: Option<JoinHandle<()>>,
    master: std::sync::Arc<OwnedFd>,
}

impl Proxy {
    /// Puts stdin's terminal in raw mode, gives the master its size, and
    /// starts copying: stdin to the master and the master to stdout. Signals
    /// must be blocked in the calling thread, so the copying threads never
    /// take one meant for forwarding.
    pub(crate) fn start(master: OwnedFd) -> Result<Proxy> {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd()).ok();
        if let Some(saved) = &saved {
            let mut raw = saved.clone();
            termios::cfmakeraw(&mut raw);
            termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw).map_err(|source| {
                Error::Sys {
                    action: "putting the terminal in raw mode",
                    source,
                }
            })?;
        }
        let master = std::sync::Arc::new(master);
        resize(&master);
        let to_container = std::sync::Arc::clone(&master);
        std::thread::Builder::new()
            .name("tty-input".into())
            .spawn(move || copy_stdin(&to_container))
            .map_err(|e| Error::io("starting the terminal input thread for", "stdin", e))?;
        let from_container = std::sync::Arc::clone(&master);
        let output = std::thread::Builder::new()
            .name("tty-output".into())
            .spawn(move || copy_to_stdout(&from_container))
            .map_err(|e| Error::io("starting the terminal output thread for", "stdout", e))?;
        Ok(Proxy {
            saved,
            output: Some(output),
            master,
        })
    }

    /// Gives the container's terminal the size of the caller's.
    pub(crate) fn resize(&self) {
        resize(&self.master);
    }

    /// Waits until the container's side of the terminal is closed and
    /// everything it wrote reached stdout, for at most a second: a process
    /// that outlives the container's init (no pid namespace) may keep the
    /// pty open, and must not keep the runtime waiting.
    pub(crate) fn finish(mut self) {
        let Some(output) = self.output.take() else {
            return;
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        while !output.is_finished() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        if output.is_finished() {
            let _ = output.join();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, saved);
        }
    }
}

fn resize(master: &OwnedFd) {
    // SAFETY: an all-zero winsize is valid; the ioctls read or fill it.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ on stdin and TIOCSWINSZ on the master with a valid
    // winsize pointer.
    unsafe {
        if libc::ioctl(libc::STDIN_FILENO, libc::TIOCGWINSZ, &mut size) == 0 {
            libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &size);
        }
    }
}

fn copy_stdin(master: &OwnedFd) {
    if let Ok(to) = master.try_clone() {
        pump(std::io::stdin().lock(), std::fs::File::from(to));
    }
}

fn copy_to_stdout(master: &OwnedFd) {
    // The master reads EIO once the container's last holder of the pty
    // closed it, which ends the copy.
    if let Ok(from) = master.try_clone() {
        pump(std::fs::File::from(from), std::io::stdout().lock());
    }
}

/// Copies until end of input or an error on either side.
fn pump(mut from: impl Read, mut to: impl Write) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = from.read(&mut buf) {
        if n == 0 || to.write_all(&buf[..n]).is_err() || to.flush().is_err() {
            return;
        }
    }
}
