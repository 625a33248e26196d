//! The overlayfs attributes the builder reads and writes.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

const OPAQUE: &[u8] = b"trusted.overlay.opaque\0";

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)
}

/// Whether overlayfs marked this directory opaque.
pub fn is_opaque(path: &Path) -> bool {
    let Ok(c) = c_path(path) else {
        return false;
    };
    let mut value = [0u8; 4];
    // SAFETY: both strings are NUL-terminated and the buffer length is right.
    let n = unsafe {
        libc::lgetxattr(
            c.as_ptr(),
            OPAQUE.as_ptr().cast(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    n == 1 && value[0] == b'y'
}

/// Marks a directory opaque for overlayfs.
pub fn set_opaque(path: &Path) -> io::Result<()> {
    let c = c_path(path)?;
    // SAFETY: both strings are NUL-terminated and the value length is right.
    let rc = unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            OPAQUE.as_ptr().cast(),
            b"y".as_ptr().cast(),
            1,
            0,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Marks the directory open as `fd` opaque for overlayfs.
pub fn set_opaque_fd(fd: std::os::fd::RawFd) -> io::Result<()> {
    // SAFETY: the name is NUL-terminated and the value length is right; `fd`
    // is an open descriptor the caller holds.
    let rc = unsafe { libc::fsetxattr(fd, OPAQUE.as_ptr().cast(), b"y".as_ptr().cast(), 1, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Creates an overlayfs whiteout (a 0/0 character device) at `path`.
pub fn make_whiteout(path: &Path) -> io::Result<()> {
    let c = c_path(path)?;
    // SAFETY: the path is NUL-terminated; mknod has no other preconditions.
    let rc = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
