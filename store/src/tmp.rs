//! Staging entries under `tmp/`, named after the process that made them so the
//! entries of a killed process can be told apart and removed.

use super::{StoreError, io_err};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// What must happen to a staging tree before it is removed, registered by
/// the layer that puts live things in staging trees (the containers crate
/// stops a `RUN` step's container that a killed build left running).
static REAPER: OnceLock<fn(&Path)> = OnceLock::new();

/// Registers the reaper every [`remove_tree`] runs first. The first
/// registration wins; a process registers once, at startup.
pub fn register_reaper(reaper: fn(&Path)) {
    let _ = REAPER.set(reaper);
}

/// A fresh path `tmp/<pid>-<n>-<label>` (not created).
pub fn fresh(tmp_dir: &Path, label: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    tmp_dir.join(format!("{}-{n}-{label}", std::process::id()))
}

/// Whether a process with this id exists.
fn alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks for existence and permission.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Removes every staging entry whose process is gone, unmounting what a killed
/// RUN step left mounted under it first.
pub fn remove_stale(tmp_dir: &Path) -> Result<(), StoreError> {
    let me = std::process::id() as i32;
    remove_entries_of(tmp_dir, |pid| pid != me && !alive(pid))
}

/// Removes every staging entry of this process, stopping and deleting the
/// `RUN` containers in them: for a build cancelled by a signal, before the
/// process exits.
pub fn remove_own(tmp_dir: &Path) -> Result<(), StoreError> {
    let me = std::process::id() as i32;
    remove_entries_of(tmp_dir, |pid| pid == me)
}

/// Removes the staging entries whose process (the pid their name starts
/// with) `wanted` picks. Removes what it can and reports the first failure.
fn remove_entries_of(tmp_dir: &Path, wanted: impl Fn(i32) -> bool) -> Result<(), StoreError> {
    let entries = fs::read_dir(tmp_dir).map_err(io_err("reading", tmp_dir))?;
    let mut first_error = None;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name.split('-').next().and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(&wanted) {
            let path = entry.path();
            tracing::info!(path = %path.display(), "removing a staging entry");
            if let Err(err) = remove_tree(&path) {
                first_error.get_or_insert(err);
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Removes a staging tree, unmounting any mounts beneath it first so the
/// removal never reaches into a mounted filesystem. The registered reaper
/// runs first: a `RUN` step's container still there (its build was killed)
/// is stopped and deleted.
pub fn remove_tree(path: &Path) -> Result<(), StoreError> {
    if let Some(reaper) = REAPER.get() {
        reaper(path);
    }
    unmount_under(path);
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("inspecting", path)(e)),
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path).map_err(io_err("removing", path)),
        Ok(_) => fs::remove_file(path).map_err(io_err("removing", path)),
    }
}

/// Lazily unmounts every mount point at or below `path`, deepest first.
pub fn unmount_under(path: &Path) {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<PathBuf> = info
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mountinfo(p)))
        .filter(|p| p.starts_with(path))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for point in points {
        let _ = unmount(&point);
    }
}

/// Detaches the mount at `point` (lazily, so busy mounts go too).
pub fn unmount(point: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(point.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: the path is a valid NUL-terminated string.
    if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Undoes the octal escapes (`\040` for a space) of `/proc/self/mountinfo`.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let digits = &bytes[i + 1..i + 4];
            if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let value = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                if let Ok(byte) = u8::try_from(value) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_entries_of_dead_processes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        // Pid 0x7ffffffe is above any real pid_max, so it is never alive.
        let stale = dir.path().join("2147483646-0-layer");
        fs::create_dir_all(stale.join("sub")).unwrap();
        let mine = fresh(dir.path(), "mine");
        fs::write(&mine, b"x").unwrap();
        remove_stale(dir.path()).unwrap();
        assert!(!stale.exists());
        assert!(mine.exists());
    }

    #[test]
    fn own_entries_are_removed_and_others_kept() {
        let dir = tempfile::tempdir().unwrap();
        let other = dir.path().join("1-0-layer");
        fs::create_dir_all(&other).unwrap();
        let mine = fresh(dir.path(), "run");
        fs::create_dir_all(mine.join("upper/etc")).unwrap();
        let mine_file = fresh(dir.path(), "blob");
        fs::write(&mine_file, b"x").unwrap();
        remove_own(dir.path()).unwrap();
        assert!(!mine.exists());
        assert!(!mine_file.exists());
        assert!(other.exists());
    }

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape_mountinfo(r"/a\040b/c"), "/a b/c");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
    }
}
