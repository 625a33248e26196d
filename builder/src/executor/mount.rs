//! Mounting and unmounting overlayfs roots.

use std::ffi::CString;
use std::io;
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
