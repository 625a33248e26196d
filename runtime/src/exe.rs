//! Running from a sealed in-memory copy of the runtime binary, against
//! CVE-2019-5736.
//!
//! The processes libcontainer puts into a container start as clones of the
//! runtime, so until they exec the user's program their `/proc/PID/exe` is the
//! runtime binary. A process in the container that opens that link can wait
//! for the runtime to exit and then write through it, replacing the host's
//! binary. Running from a sealed memfd instead makes that link point at a
//! copy that nobody can write, as runc does.

use crate::error::{Error, Result};
use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;

const SEALS: libc::c_int =
    libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

/// Whether this process already runs from a write-sealed copy.
pub fn running_sealed() -> bool {
    let Ok(exe) = File::open("/proc/self/exe") else {
        return false;
    };
    // SAFETY: fcntl on an fd we own, with an integer-only command.
    let seals = unsafe { libc::fcntl(exe.as_raw_fd(), libc::F_GET_SEALS) };
    seals >= 0 && seals & libc::F_SEAL_WRITE != 0
}

/// Re-executes this process from a sealed memfd copy of its binary, with the
/// same arguments and environment, unless it already runs from one. Returns
/// only when it already does; on success of the re-exec it never returns.
pub fn reexec_sealed() -> Result<()> {
    if running_sealed() {
        return Ok(());
    }
    let sys = |action: &'static str| Error::Sys {
        action,
        source: nix::errno::Errno::last(),
    };
    let mut exe =
        File::open("/proc/self/exe").map_err(|e| Error::io("opening", "/proc/self/exe", e))?;
    // SAFETY: the name is a valid C string; the flags are valid.
    let fd = unsafe {
        libc::memfd_create(
            c"berth-runtime".as_ptr(),
            libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
        )
    };
    if fd < 0 {
        return Err(sys("creating a memfd for the runtime binary"));
    }
    // SAFETY: memfd_create returned a new fd that nothing else owns.
    let mut copy = unsafe { File::from_raw_fd(fd) };
    std::io::copy(&mut exe, &mut copy).map_err(|e| Error::io("copying", "/proc/self/exe", e))?;
    // SAFETY: fcntl on an fd we own, with integer arguments.
    if unsafe { libc::fcntl(copy.as_raw_fd(), libc::F_ADD_SEALS, SEALS) } < 0 {
        return Err(sys("sealing the runtime binary copy"));
    }
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| Error::InvalidInput("an argument contains a NUL byte".into()))?;
    let env: Vec<CString> = std::env::vars_os()
        .map(|(k, v)| {
            let mut pair = k.as_bytes().to_vec();
            pair.push(b'=');
            pair.extend_from_slice(v.as_bytes());
            CString::new(pair)
        })
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| Error::InvalidInput("an environment variable contains a NUL byte".into()))?;
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = env.iter().map(|e| e.as_ptr()).collect();
    envp.push(std::ptr::null());
    // SAFETY: argv and envp are NULL-terminated arrays of valid C strings
    // that outlive the call; fexecve only returns on failure.
    unsafe { libc::fexecve(copy.as_raw_fd(), argv.as_ptr(), envp.as_ptr()) };
    Err(sys("re-executing the runtime from its sealed copy"))
}
