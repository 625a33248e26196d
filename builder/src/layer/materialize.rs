//! Writing layer entries straight into a snapshot directory, in overlayfs
//! form, without going through the compressed blob: a COPY's snapshot is made
//! from its sources while its blob is being compressed.

use super::entry::{Entry, EntryKind};
use super::xattr;
use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, lchown, symlink};
use std::path::{Component, Path};
use std::time::{Duration, UNIX_EPOCH};

/// Writes `entries` (in canonical order, parents first) under `dest`, with
/// their modes, owners and (clamped) mtimes, as unpacking their tar would.
pub fn materialize(entries: &[Entry], dest: &Path, epoch: Option<i64>) -> io::Result<()> {
    let mut dirs = Vec::new();
    for entry in entries {
        let rel = Path::new(&entry.path);
        if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(io::Error::other(format!(
                "layer entry '{}' is not a plain relative path",
                entry.path
            )));
        }
        let path = dest.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        let mtime = epoch.map_or(entry.mtime, |e| entry.mtime.min(e));
        match &entry.kind {
            EntryKind::Dir => {
                match fs::create_dir(&path) {
                    Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(e),
                    _ => {}
                }
                set_owner_mode(&path, entry)?;
                dirs.push((path, mtime));
                continue;
            }
            EntryKind::File { source, .. } => {
                fs::copy(source, &path)?;
            }
            EntryKind::Bytes(bytes) => fs::write(&path, bytes)?,
            EntryKind::Symlink(target) => {
                symlink(target, &path)?;
                lchown(&path, owner(entry.uid), owner(entry.gid))?;
                continue;
            }
            EntryKind::Hardlink(target) => {
                fs::hard_link(dest.join(target), &path)?;
                continue;
            }
            EntryKind::CharDevice(major, minor) => mknod(&path, libc::S_IFCHR, *major, *minor)?,
            EntryKind::BlockDevice(major, minor) => mknod(&path, libc::S_IFBLK, *major, *minor)?,
            EntryKind::Fifo => mknod(&path, libc::S_IFIFO, 0, 0)?,
            EntryKind::Whiteout => {
                xattr::make_whiteout(&path)?;
                continue;
            }
            EntryKind::Opaque => {
                xattr::set_opaque(&path)?;
                continue;
            }
        }
        set_owner_mode(&path, entry)?;
        set_mtime(&path, mtime)?;
    }
    // Children change their directory's mtime; set directories' last.
    for (dir, mtime) in dirs.into_iter().rev() {
        set_mtime(&dir, mtime)?;
    }
    Ok(())
}

fn owner(id: u64) -> Option<u32> {
    u32::try_from(id).ok()
}

/// Owner first, then mode: chown clears setuid and setgid bits.
fn set_owner_mode(path: &Path, entry: &Entry) -> io::Result<()> {
    lchown(path, owner(entry.uid), owner(entry.gid))?;
    fs::set_permissions(path, fs::Permissions::from_mode(entry.mode & 0o7777))
}

fn set_mtime(path: &Path, mtime: i64) -> io::Result<()> {
    let time = UNIX_EPOCH + Duration::from_secs(u64::try_from(mtime).unwrap_or(0));
    fs::File::open(path)?.set_modified(time)
}

fn mknod(path: &Path, kind: libc::mode_t, major: u32, minor: u32) -> io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: the path is NUL-terminated; mknod has no other preconditions.
    let rc = unsafe { libc::mknod(c.as_ptr(), kind | 0o600, libc::makedev(major, minor)) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
