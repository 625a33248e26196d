//! The pseudo-terminal of `berth run -t`: the runtime creates it inside the
//! container and sends its master side over a unix socket (`--console-socket`);
//! berth puts its own terminal in raw mode, copies bytes both ways and passes
//! window size changes on.

use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
use nix::sys::termios::{SetArg, Termios, cfmakeraw, tcgetattr, tcsetattr};
use std::fs::File;
use std::io::{self, IoSliceMut, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

/// A listening console socket; the socket file is removed on drop.
#[derive(Debug)]
pub struct ConsoleSocket {
    path: PathBuf,
    receiver: Option<JoinHandle<io::Result<OwnedFd>>>,
}

impl ConsoleSocket {
    /// Listens on `path` and waits, on a thread, for the runtime to send
    /// the terminal's master.
    pub fn listen(path: &Path) -> io::Result<ConsoleSocket> {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)?;
        let receiver = std::thread::spawn(move || {
            let (stream, _) = listener.accept()?;
            receive_fd(&stream)
        });
        Ok(ConsoleSocket {
            path: path.to_path_buf(),
            receiver: Some(receiver),
        })
    }

    /// The socket's path, for `--console-socket`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The master the runtime sent. Call it once `create` succeeded: the
    /// runtime has sent the master by then.
    pub fn master(mut self) -> io::Result<OwnedFd> {
        let receiver = self
            .receiver
            .take()
            .ok_or_else(|| io::Error::other("the console was already received"))?;
        receiver
            .join()
            .map_err(|_| io::Error::other("the console receiver panicked"))?
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        if let Some(receiver) = self.receiver.take() {
            // Nobody connected (the runtime failed): connect ourselves so the
            // waiting thread ends, and drop what it gets.
            if let Ok(stream) = UnixStream::connect(&self.path) {
                drop(stream);
                let _ = receiver.join();
            }
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Reads one message carrying a file descriptor (`SCM_RIGHTS`).
fn receive_fd(stream: &UnixStream) -> io::Result<OwnedFd> {
    let mut buf = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<()>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(io::Error::from)?;
    for cmsg in msg.cmsgs().map_err(io::Error::from)? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg
            && let Some(fd) = fds.first()
        {
            // SAFETY: the kernel just installed this descriptor for us and
            // nothing else owns it.
            return Ok(unsafe { OwnedFd::from_raw_fd(*fd) });
        }
    }
    Err(io::Error::other(
        "the runtime connected to the console socket but sent no terminal",
    ))
}

/// Whether `fd` is a terminal.
pub fn is_terminal(fd: BorrowedFd<'_>) -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(fd.as_raw_fd()) == 1 }
}

/// Copies the window size of terminal `from` to terminal `to`.
pub fn copy_window_size(from: BorrowedFd<'_>, to: BorrowedFd<'_>) -> io::Result<()> {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize into the struct it is given.
    if unsafe { libc::ioctl(from.as_raw_fd(), libc::TIOCGWINSZ, &mut size) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: TIOCSWINSZ reads a winsize from the struct it is given.
    if unsafe { libc::ioctl(to.as_raw_fd(), libc::TIOCSWINSZ, &size) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A terminal in raw mode; its previous mode comes back on drop.
#[derive(Debug)]
pub struct RawMode {
    fd: OwnedFd,
    saved: Termios,
}

impl RawMode {
    /// Puts the terminal `fd` in raw mode, so keys (Ctrl-C included) reach
    /// the container's terminal as they are.
    pub fn enter(fd: BorrowedFd<'_>) -> io::Result<RawMode> {
        let fd = fd.try_clone_to_owned()?;
        let saved = tcgetattr(fd.as_fd()).map_err(io::Error::from)?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(fd.as_fd(), SetArg::TCSANOW, &raw).map_err(io::Error::from)?;
        Ok(RawMode { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = tcsetattr(self.fd.as_fd(), SetArg::TCSADRAIN, &self.saved);
    }
}

/// Copies `from` to `to` until `from` ends (a terminal master ends with
/// EIO when the container's side closes).
pub fn copy(from: OwnedFd, to: OwnedFd) -> io::Result<()> {
    let mut from = File::from(from);
    let mut to = File::from(to);
    let mut buf = [0u8; 8192];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.raw_os_error() == Some(libc::EIO) => return Ok(()),
            Err(e) => return Err(e),
        };
        to.write_all(&buf[..n])?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::{ControlMessage, sendmsg};
    use std::io::IoSlice;

    #[test]
    fn receives_the_descriptor_the_runtime_sends() {
        let dir = tempfile::tempdir().unwrap();
        let socket = ConsoleSocket::listen(&dir.path().join("console.sock")).unwrap();
        let (mut keep, sent) = io::pipe().unwrap();
        let client = UnixStream::connect(socket.path()).unwrap();
        let fds = [sent.as_raw_fd()];
        sendmsg::<()>(
            client.as_raw_fd(),
            &[IoSlice::new(b"/dev/pts/0")],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            None,
        )
        .unwrap();
        drop(sent);
        let received = socket.master().unwrap();
        File::from(received).write_all(b"hi").unwrap();
        let mut got = [0u8; 2];
        keep.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hi");
        assert!(!dir.path().join("console.sock").exists());
    }

    #[test]
    fn a_socket_nobody_uses_is_cleaned_up() {
        let dir = tempfile::tempdir().unwrap();
        let socket = ConsoleSocket::listen(&dir.path().join("c.sock")).unwrap();
        drop(socket);
        assert!(!dir.path().join("c.sock").exists());
    }
}
