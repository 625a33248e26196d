//! `--pidfd-socket`: handing the caller a pidfd of the container's process,
//! as runc >= 1.2 does, so it can signal and wait for exactly that process
//! with no risk of hitting a reused pid.
//!
//! The runtime connects to the caller's unix socket and sends one message
//! whose data is `pidfd` and whose `SCM_RIGHTS` control message carries the
//! descriptor (`pidfd_open(2)`, Linux 5.3 or later).

use crate::error::{Error, Result};
use nix::sys::socket::{ControlMessage, MsgFlags, sendmsg};
use nix::unistd::Pid;
use std::io::IoSlice;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

/// Opens a pidfd of `pid` and sends it to the unix socket at `socket`.
pub(crate) fn send(socket: &Path, pid: Pid) -> Result<()> {
    let pidfd = open(pid)?;
    let stream = UnixStream::connect(socket)
        .map_err(|e| Error::io("connecting to the pidfd socket", socket, e))?;
    let fds = [pidfd.as_raw_fd()];
    sendmsg::<()>(
        stream.as_raw_fd(),
        &[IoSlice::new(b"pidfd")],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|source| Error::Sys {
        action: "sending the pidfd to the pidfd socket",
        source,
    })?;
    Ok(())
}

/// A pidfd of `pid`, close-on-exec.
pub(crate) fn open(pid: Pid) -> Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor
    // or -1; no memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return Err(Error::Sys {
            action: "opening a pidfd of the container's process (pidfd_open needs Linux 5.3)",
            source: nix::Error::last(),
        });
    }
    let fd = i32::try_from(fd).map_err(|_| Error::Sys {
        action: "opening a pidfd of the container's process",
        source: nix::Error::EBADF,
    })?;
    // SAFETY: the kernel just returned this descriptor to us; pidfds are
    // created close-on-exec.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Whether the process a pidfd pins is still alive: while it is, its pid
/// cannot name another process, so what was read through `/proc/PID`
/// between `open` and this check was about that process.
pub(crate) fn alive(pidfd: &OwnedFd) -> bool {
    // SAFETY: pidfd_send_signal with signal 0 only checks; no memory is
    // passed.
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            0,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        ) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    #[test]
    fn the_pidfd_sent_names_the_process() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pidfd.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let me = Pid::this();
        send(&path, me).unwrap();
        let (stream, _) = listener.accept().unwrap();
        let mut data = [0u8; 16];
        let mut iov = [std::io::IoSliceMut::new(&mut data)];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = nix::sys::socket::recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .unwrap();
        let mut received = None;
        for cmsg in msg.cmsgs().unwrap() {
            if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = cmsg {
                received = fds.first().copied();
            }
        }
        let fd = received.expect("no descriptor was sent");
        assert_eq!(&data[..5], b"pidfd");
        let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).unwrap();
        assert!(info.lines().any(|l| l == format!("Pid:\t{me}")), "{info}");
    }

    #[test]
    fn a_missing_socket_is_named_in_the_error() {
        let err = send(Path::new("/nonexistent/pidfd.sock"), Pid::this()).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/pidfd.sock"), "{err}");
    }
}
