//! Mounting and unmounting overlayfs roots.

use std::ffi::CString;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)
}

/// Mounts an overlay at `target`: `lowers` are listed top first. With an
/// `upper` (and its `work` directory) the mount is writable.
pub fn mount_overlay(
    target: &Path,
    lowers: &[PathBuf],
    upper: Option<(&Path, &Path)>,
) -> io::Result<()> {
    let lower_list: Vec<String> = lowers
        .iter()
        .map(|p| escape_overlay_path(&p.to_string_lossy()))
        .collect();
    let mut options = format!("lowerdir={}", lower_list.join(":"));
    if let Some((upper, work)) = upper {
        options.push_str(&format!(
            ",upperdir={},workdir={}",
            escape_overlay_path(&upper.to_string_lossy()),
            escape_overlay_path(&work.to_string_lossy())
        ));
    }
    let page = 4096;
    if options.len() >= page {
        return Err(io::Error::other(format!(
            "the overlay mount options for {} are {} bytes, over the kernel's limit of {page}; \
             the image has too many layers ({})",
            target.display(),
            options.len(),
            lowers.len()
        )));
    }
    let source = CString::new("overlay").map_err(io::Error::other)?;
    let fstype = CString::new("overlay").map_err(io::Error::other)?;
    let data = CString::new(options).map_err(io::Error::other)?;
    let target_c = c_path(target)?;
    let flags = if upper.is_none() { libc::MS_RDONLY } else { 0 };
    // SAFETY: all pointers are valid NUL-terminated strings for the call.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target_c.as_ptr(),
            fstype.as_ptr(),
            flags,
            data.as_ptr().cast(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Lazily unmounts `target`.
pub fn unmount(target: &Path) -> io::Result<()> {
    let c = c_path(target)?;
    // SAFETY: the path is a valid NUL-terminated string.
    let rc = unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Escapes the characters overlayfs treats specially in its path options.
fn escape_overlay_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if matches!(c, ':' | ',' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A pathrs error as an `io::Error` of the kind its errno has, so callers can
/// tell a missing path from a refused one.
pub fn pathrs_io(error: pathrs::error::Error) -> io::Error {
    let kind = match error.kind() {
        pathrs::error::ErrorKind::OsError(Some(errno)) => {
            io::Error::from_raw_os_error(errno).kind()
        }
        pathrs::error::ErrorKind::SafetyViolation => io::ErrorKind::PermissionDenied,
        _ => io::ErrorKind::Other,
    };
    // The whole chain in the message: pathrs names the failed step, its
    // source the errno.
    let mut message = error.to_string();
    let mut cause: Option<&dyn std::error::Error> = std::error::Error::source(&error);
    while let Some(c) = cause {
        message.push_str(": ");
        message.push_str(&c.to_string());
        cause = c.source();
    }
    io::Error::new(kind, message)
}

/// Opens the tree at `dir` as a root that paths are resolved inside of
/// (openat2 `RESOLVE_IN_ROOT`): a symlink in it, absolute or with `..`, never
/// leads out of it.
pub fn open_root(dir: &Path) -> io::Result<pathrs::Root> {
    pathrs::Root::open(dir).map_err(pathrs_io)
}

/// The metadata of `path` in `root`, its last component not followed.
pub fn stat_in_root(root: &pathrs::Root, path: &str) -> io::Result<std::fs::Metadata> {
    let path = if path.trim_start_matches('/').is_empty() {
        "/"
    } else {
        path
    };
    let handle = root.resolve_nofollow(path).map_err(pathrs_io)?;
    std::fs::File::from(std::os::fd::OwnedFd::from(handle)).metadata()
}

/// Reads the regular file at `path` in `root` (symlinks followed inside the
/// root), refusing anything else (a FIFO would block the read) and anything
/// over `limit` bytes.
pub(crate) fn read_in_root(root: &pathrs::Root, path: &str, limit: u64) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let handle = root.resolve(path).map_err(pathrs_io)?;
    let meta = std::fs::File::from(handle.as_fd().try_clone_to_owned()?).metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{path} is not a regular file"),
        ));
    }
    if meta.len() > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{path} is {} bytes, over the limit of {limit}", meta.len()),
        ));
    }
    let file = handle
        .reopen(pathrs::flags::OpenFlags::O_RDONLY)
        .map_err(pathrs_io)?;
    let mut bytes = Vec::new();
    file.take(limit).read_to_end(&mut bytes)?;
    Ok(bytes)
}
