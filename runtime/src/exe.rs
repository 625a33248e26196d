//! Running from a sealed view of the runtime binary, against CVE-2019-5736.
//!
//! The processes libcontainer puts into a container start as clones of the
//! runtime, so until they exec the user's program their `/proc/PID/exe` is the
//! runtime binary. A process in the container that opens that link can wait
//! for the runtime to exit and then write through it, replacing the host's
//! binary. So the commands that create container processes first re-execute
//! the runtime from a copy nobody can write to, as runc does:
//!
//! 1. Preferably from a read-only overlayfs that is never attached anywhere:
//!    `fsopen("overlay")` with the binary's directory as its only lower layer
//!    and no upper layer, `fsmount`, then the binary opened `O_PATH` inside it.
//!    An overlay without an upper layer is read-only at the superblock and
//!    cannot be remounted writable, the mount is reachable only through that
//!    descriptor, and nothing is copied: the exec maps the host file's page
//!    cache, so it costs neither the copy's time nor its memory.
//! 2. Where the kernel lacks the new mount API or overlayfs (or refuses it),
//!    from a write-sealed memfd copy of the binary, copied in the kernel
//!    (`sendfile`, no buffer in this process).

use crate::error::{Error, Result};
use std::ffi::{CString, OsStr};
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

const SEALS: libc::c_int =
    libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

/// Whether this process already runs from a copy of its binary that cannot be
/// written: a write-sealed memfd, or a file on a read-only overlayfs.
pub fn running_sealed() -> bool {
    let Ok(exe) = File::open("/proc/self/exe") else {
        return false;
    };
    is_sealed(exe.as_raw_fd())
}

fn is_sealed(fd: RawFd) -> bool {
    // SAFETY: fcntl on a valid fd, with an integer-only command.
    let seals = unsafe { libc::fcntl(fd, libc::F_GET_SEALS) };
    if seals >= 0 && seals & libc::F_SEAL_WRITE != 0 {
        return true;
    }
    // SAFETY: an all-zero statfs is valid; fstatfs fills it.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: fstatfs on a valid fd with a valid out-pointer.
    if unsafe { libc::fstatfs(fd, &mut fs) } != 0 {
        return false;
    }
    if fs.f_type != libc::OVERLAYFS_SUPER_MAGIC {
        return false;
    }
    // SAFETY: an all-zero statvfs is valid; fstatvfs fills it.
    let mut vfs: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: fstatvfs on a valid fd with a valid out-pointer.
    if unsafe { libc::fstatvfs(fd, &mut vfs) } != 0 {
        return false;
    }
    // An overlay is read-only at the superblock exactly when it has no upper
    // layer, and then it cannot be remounted writable.
    vfs.f_flag & libc::ST_RDONLY != 0
}

/// Re-executes this process from a sealed view of its binary, with the same
/// arguments and environment, unless it already runs from one. Returns only
/// when it already does; on success of the re-exec it never returns.
pub fn reexec_sealed() -> Result<()> {
    if running_sealed() {
        return Ok(());
    }
    let sealed = match overlay_view() {
        Ok(fd) => fd,
        Err(err) => {
            tracing::debug!(%err, "no read-only overlay of the runtime binary; copying it to a sealed memfd");
            memfd_copy()?
        }
    };
    exec_fd(&sealed)
}

fn sys(action: &'static str) -> Error {
    Error::Sys {
        action,
        source: nix::errno::Errno::last(),
    }
}

/// Takes ownership of a descriptor a system call returned, or names the failure.
fn owned(fd: libc::c_long, action: &'static str) -> Result<OwnedFd> {
    let Ok(fd) = RawFd::try_from(fd) else {
        return Err(sys(action));
    };
    if fd < 0 {
        return Err(sys(action));
    }
    // SAFETY: the kernel just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens the running binary `O_PATH` inside a detached read-only overlay of
/// its directory.
fn overlay_view() -> Result<OwnedFd> {
    let exe = std::fs::read_link("/proc/self/exe")
        .map_err(|e| Error::io("reading the link", "/proc/self/exe", e))?;
    let (Some(dir), Some(name)) = (exe.parent(), exe.file_name()) else {
        return Err(Error::InvalidInput(format!(
            "the runtime binary {} has no directory",
            exe.display()
        )));
    };
    // Without an upper layer overlayfs wants at least two lower ones; the
    // second is an empty detached tmpfs, so nothing is left on any disk.
    let empty = detached_mount(
        c"tmpfs",
        &[],
        libc::MOUNT_ATTR_RDONLY,
        "mounting an empty tmpfs under the runtime binary's overlay",
    )?;
    let empty_path = PathBuf::from(format!("/proc/self/fd/{}", empty.as_raw_fd()));
    let mount = detached_mount(
        c"overlay",
        &[dir, &empty_path],
        libc::MOUNT_ATTR_RDONLY | libc::MOUNT_ATTR_NODEV | libc::MOUNT_ATTR_NOSUID,
        "mounting the read-only overlay of the runtime binary",
    )?;
    let name = CString::new(name.as_bytes())
        .map_err(|_| Error::InvalidInput("the runtime binary's name contains a NUL byte".into()))?;
    let file = owned(
        // SAFETY: openat relative to the mount fd with a valid C string.
        libc::c_long::from(unsafe {
            libc::openat(
                mount.as_raw_fd(),
                name.as_ptr(),
                libc::O_PATH | libc::O_CLOEXEC | libc::O_NOFOLLOW,
            )
        }),
        "opening the runtime binary in its read-only overlay",
    )?;
    // The mount descriptors are dropped here: the detached mounts live on
    // only as long as `file` and the processes executing it.
    if !is_sealed(file.as_raw_fd()) {
        return Err(Error::InvalidInput(
            "the overlay of the runtime binary is not read-only".into(),
        ));
    }
    Ok(file)
}

/// Creates a filesystem of type `fstype` with the given lower layers (for an
/// overlay) and returns it as a mount that is attached nowhere.
fn detached_mount(
    fstype: &std::ffi::CStr,
    lowers: &[&Path],
    attributes: u64,
    action: &'static str,
) -> Result<OwnedFd> {
    let context = owned(
        // SAFETY: fsopen with a valid C string and flags.
        unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), libc::FSOPEN_CLOEXEC) },
        action,
    )?;
    if !lowers.is_empty() {
        set_lowers(&context, lowers)?;
    }
    // SAFETY: fsconfig with a valid context fd and no key or value.
    let created = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            context.as_raw_fd(),
            libc::FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    if created < 0 {
        return Err(sys(action));
    }
    owned(
        // SAFETY: fsmount with a valid context fd and flags.
        unsafe {
            libc::syscall(
                libc::SYS_fsmount,
                context.as_raw_fd(),
                libc::FSMOUNT_CLOEXEC,
                attributes,
            )
        },
        action,
    )
}

/// Sets an overlay's lower layers, topmost first: with one `lowerdir+` each
/// (Linux 6.8), which takes paths verbatim, else with one `lowerdir` list,
/// where `:` and `\` are escaped.
fn set_lowers(context: &OwnedFd, lowers: &[&Path]) -> Result<()> {
    let fsconfig = |key: &std::ffi::CStr, value: &[u8]| -> Result<bool> {
        let value = CString::new(value).map_err(|_| {
            Error::InvalidInput("the runtime binary's path contains a NUL byte".into())
        })?;
        // SAFETY: fsconfig with a valid context fd and valid C strings.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                context.as_raw_fd(),
                libc::FSCONFIG_SET_STRING,
                key.as_ptr(),
                value.as_ptr(),
                0,
            )
        };
        Ok(rc == 0)
    };
    let mut appended = true;
    for lower in lowers {
        if !fsconfig(c"lowerdir+", lower.as_os_str().as_bytes())? {
            appended = false;
            break;
        }
    }
    if appended {
        return Ok(());
    }
    let list = lowers
        .iter()
        .map(|lower| escape_lowerdir(lower.as_os_str()))
        .collect::<Vec<_>>()
        .join(&b':');
    if fsconfig(c"lowerdir", &list)? {
        return Ok(());
    }
    Err(sys(
        "setting the runtime binary's directory as the overlay's lower layer",
    ))
}

/// Escapes a path for overlayfs' `lowerdir` list, where `:` separates layers.
fn escape_lowerdir(path: &OsStr) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len());
    for &byte in path.as_bytes() {
        if byte == b':' || byte == b'\\' {
            out.push(b'\\');
        }
        out.push(byte);
    }
    out
}

/// Copies the running binary into a write-sealed memfd, in the kernel.
fn memfd_copy() -> Result<OwnedFd> {
    let exe =
        File::open("/proc/self/exe").map_err(|e| Error::io("opening", "/proc/self/exe", e))?;
    let copy = owned(
        // SAFETY: the name is a valid C string; the flags are valid.
        libc::c_long::from(unsafe {
            libc::memfd_create(
                c"berth-runtime".as_ptr(),
                libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING,
            )
        }),
        "creating a memfd for the runtime binary",
    )?;
    loop {
        // SAFETY: both fds are valid; a null offset uses the file positions.
        let sent = unsafe {
            libc::sendfile(
                copy.as_raw_fd(),
                exe.as_raw_fd(),
                std::ptr::null_mut(),
                1 << 30,
            )
        };
        match sent {
            0 => break,
            n if n > 0 => continue,
            _ if nix::errno::Errno::last() == nix::errno::Errno::EINTR => continue,
            _ => return Err(sys("copying the runtime binary to its memfd")),
        }
    }
    // SAFETY: fcntl on an fd we own, with integer arguments.
    if unsafe { libc::fcntl(copy.as_raw_fd(), libc::F_ADD_SEALS, SEALS) } < 0 {
        return Err(sys("sealing the runtime binary copy"));
    }
    Ok(copy)
}

/// Executes the file behind `fd` with this process's arguments and environment.
fn exec_fd(fd: &OwnedFd) -> Result<()> {
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
    // that outlive the call; execveat only returns on failure.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd.as_raw_fd(),
            c"".as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    Err(sys("re-executing the runtime from its sealed view"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowerdir_escapes_separators_and_backslashes() {
        let cases: &[(&str, &str)] = &[
            ("/usr/bin", "/usr/bin"),
            ("/a:b", "/a\\:b"),
            ("/a\\b", "/a\\\\b"),
        ];
        for (path, want) in cases {
            assert_eq!(escape_lowerdir(OsStr::new(path)), want.as_bytes(), "{path}");
        }
    }

    #[test]
    fn a_plain_file_is_not_sealed_and_a_sealed_memfd_is() {
        let plain = tempfile::tempfile().unwrap();
        assert!(!is_sealed(plain.as_raw_fd()));
        // SAFETY: valid name and flags.
        let fd = unsafe {
            libc::memfd_create(c"t".as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING)
        };
        let memfd = owned(libc::c_long::from(fd), "memfd").unwrap();
        assert!(!is_sealed(memfd.as_raw_fd()));
        // SAFETY: fcntl on an fd we own.
        assert_eq!(
            unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_ADD_SEALS, SEALS) },
            0
        );
        assert!(is_sealed(memfd.as_raw_fd()));
    }
}
