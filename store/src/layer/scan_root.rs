//! Reading an untrusted tree (a container's overlay upper directory) into
//! layer entries without the host's path walk: every directory is opened
//! inside the root with openat2 `RESOLVE_IN_ROOT` (pathrs), its last
//! component never followed, and every child is looked at with `fstatat`
//! and `readlinkat` on that directory's fd, so a symlink the container
//! planted is recorded as a symlink and never read through. File entries
//! carry their path relative to the root; [`super::write::write_layer_in_root`]
//! opens them the same way.
//!
//! Whiteouts and opaque directories are converted as in [`super::scan`];
//! files that share an inode become hard links.

use super::entry::{Entry, EntryKind};
use super::scan::split_dev;
use nix::dir::Dir;
use nix::fcntl::{AtFlags, readlinkat};
use nix::sys::stat::{SFlag, fstatat};
use pathrs::Root;
use pathrs::flags::OpenFlags;
use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd};
use std::path::PathBuf;

/// The most entries one scan reads: a bound on memory and time for a tree
/// the container controls.
pub const MAX_ENTRIES: usize = 4_000_000;

/// Errors while scanning an untrusted tree.
#[derive(Debug, thiserror::Error)]
pub enum ScanRootError {
    /// Opening or reading an entry failed.
    #[error("reading '{path}' in {} for a layer", root.display())]
    Read {
        /// The tree.
        root: PathBuf,
        /// The entry, relative to the tree.
        path: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The tree has more entries than a layer may.
    #[error("{} has more than {max} entries; berth stops there", root.display())]
    TooManyEntries {
        /// The tree.
        root: PathBuf,
        /// The bound.
        max: usize,
    },
}

pub(crate) fn pathrs_io(e: pathrs::error::Error) -> io::Error {
    let kind = match e.kind() {
        pathrs::error::ErrorKind::OsError(Some(errno)) => {
            io::Error::from_raw_os_error(errno).kind()
        }
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e)
}

/// Opens `rel` inside `root` as a directory, its last component not followed.
fn open_dir(root: &Root, rel: &str) -> io::Result<OwnedFd> {
    let path = if rel.is_empty() { "/" } else { rel };
    let handle = root.resolve_nofollow(path).map_err(pathrs_io)?;
    let file = handle
        .reopen(OpenFlags::O_RDONLY | OpenFlags::O_DIRECTORY | OpenFlags::O_NOFOLLOW)
        .map_err(pathrs_io)?;
    Ok(OwnedFd::from(file))
}

fn is_opaque_fd(fd: &OwnedFd) -> bool {
    let mut value = [0u8; 4];
    // SAFETY: the name is NUL-terminated and the buffer length is right.
    let n = unsafe {
        libc::fgetxattr(
            fd.as_raw_fd(),
            c"trusted.overlay.opaque".as_ptr(),
            value.as_mut_ptr().cast(),
            value.len(),
        )
    };
    n == 1 && value[0] == b'y'
}

/// Scans the overlay upper directory `root` into layer entries (unsorted),
/// leaving out every path for which `skip` (given the relative path) is
/// true, with what is under it. File sources are relative to `root`.
pub fn scan_upper_in_root(
    root_path: &std::path::Path,
    skip: &dyn Fn(&str) -> bool,
) -> Result<Vec<Entry>, ScanRootError> {
    let root = Root::open(root_path).map_err(|e| ScanRootError::Read {
        root: root_path.to_path_buf(),
        path: "/".into(),
        source: pathrs_io(e),
    })?;
    scan_in_root(&root, root_path, "", true, skip)
}

/// Scans the directory `base` inside `root` (`root_path` names it in
/// errors) into entries whose paths are relative to `base`, and whose file
/// sources are relative to the root. With `overlay`, whiteouts and opaque
/// markers are converted; otherwise a 0:0 device stays a device.
pub fn scan_in_root(
    root: &Root,
    root_path: &std::path::Path,
    base: &str,
    overlay: bool,
    skip: &dyn Fn(&str) -> bool,
) -> Result<Vec<Entry>, ScanRootError> {
    scan_at_most(root, root_path, base, overlay, skip, MAX_ENTRIES)
}

/// [`scan_in_root`] with at most `max` entries, counted as each directory
/// is read, so one huge directory is refused before it is held whole.
fn scan_at_most(
    root: &Root,
    root_path: &std::path::Path,
    base: &str,
    overlay: bool,
    skip: &dyn Fn(&str) -> bool,
    max: usize,
) -> Result<Vec<Entry>, ScanRootError> {
    let too_many = || ScanRootError::TooManyEntries {
        root: root_path.to_path_buf(),
        max,
    };
    let err = |path: &str| {
        let path = path.to_string();
        move |source| ScanRootError::Read {
            root: root_path.to_path_buf(),
            path,
            source,
        }
    };
    let base = base.trim_matches('/');
    let in_root = |rel: &str| match (base.is_empty(), rel.is_empty()) {
        (true, _) => rel.to_string(),
        (false, true) => base.to_string(),
        (false, false) => format!("{base}/{rel}"),
    };
    let mut entries: Vec<Entry> = Vec::new();
    let mut inodes: HashMap<(u64, u64), Vec<usize>> = HashMap::new();
    let mut stack = vec![String::new()];
    while let Some(rel_dir) = stack.pop() {
        let fd = open_dir(root, &in_root(&rel_dir)).map_err(err(&rel_dir))?;
        if overlay && !rel_dir.is_empty() && is_opaque_fd(&fd) {
            // Markers carry no metadata of their own; fixed values keep
            // layers reproducible.
            entries.push(Entry {
                path: rel_dir.clone(),
                kind: EntryKind::Opaque,
                mode: 0,
                uid: 0,
                gid: 0,
                mtime: 0,
            });
        }
        let raw = fd.as_raw_fd();
        let mut dir = Dir::from_fd(fd.into_raw_fd())
            .map_err(|e| err(&rel_dir)(io::Error::from_raw_os_error(e as i32)))?;
        let mut names = Vec::new();
        for item in dir.iter() {
            let item = item.map_err(|e| err(&rel_dir)(io::Error::from_raw_os_error(e as i32)))?;
            let name = item.file_name().to_bytes();
            if name != b"." && name != b".." {
                if entries.len() + names.len() >= max {
                    return Err(too_many());
                }
                names.push(item.file_name().to_owned());
            }
        }
        // Sorted so hard links point at the first path in canonical order.
        names.sort();
        for name in names {
            let text = String::from_utf8_lossy(name.to_bytes()).into_owned();
            let rel = if rel_dir.is_empty() {
                text
            } else {
                format!("{rel_dir}/{text}")
            };
            if skip(&rel) {
                continue;
            }
            if entries.len() >= max {
                return Err(too_many());
            }
            let st = fstatat(Some(raw), name.as_c_str(), AtFlags::AT_SYMLINK_NOFOLLOW)
                .map_err(|e| err(&rel)(io::Error::from_raw_os_error(e as i32)))?;
            let format = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
            let mut entry = Entry {
                path: rel.clone(),
                kind: EntryKind::Dir,
                mode: st.st_mode & 0o7777,
                uid: u64::from(st.st_uid),
                gid: u64::from(st.st_gid),
                mtime: st.st_mtime,
            };
            entry.kind = match format {
                SFlag::S_IFDIR => {
                    entries.push(entry);
                    stack.push(rel);
                    continue;
                }
                SFlag::S_IFLNK => {
                    let target = readlinkat(Some(raw), name.as_c_str())
                        .map_err(|e| err(&rel)(io::Error::from_raw_os_error(e as i32)))?;
                    EntryKind::Symlink(PathBuf::from(target))
                }
                SFlag::S_IFCHR => {
                    let (major, minor) = split_dev(st.st_rdev);
                    if overlay && major == 0 && minor == 0 {
                        entry.mode = 0;
                        entry.uid = 0;
                        entry.gid = 0;
                        entry.mtime = 0;
                        EntryKind::Whiteout
                    } else {
                        EntryKind::CharDevice(major, minor)
                    }
                }
                SFlag::S_IFBLK => {
                    let (major, minor) = split_dev(st.st_rdev);
                    EntryKind::BlockDevice(major, minor)
                }
                SFlag::S_IFIFO => EntryKind::Fifo,
                SFlag::S_IFREG => {
                    if st.st_nlink > 1 {
                        inodes
                            .entry((st.st_dev, st.st_ino))
                            .or_default()
                            .push(entries.len());
                    }
                    EntryKind::File {
                        source: PathBuf::from(in_root(&rel)),
                        size: u64::try_from(st.st_size).unwrap_or(0),
                    }
                }
                // Sockets cannot be archived; tar tools skip them too.
                _ => continue,
            };
            entries.push(entry);
        }
        drop(dir);
    }
    for group in inodes.into_values().filter(|g| g.len() > 1) {
        let Some(&first) = group
            .iter()
            .min_by(|&&a, &&b| entries[a].path.cmp(&entries[b].path))
        else {
            continue;
        };
        let target = entries[first].path.clone();
        for index in group.into_iter().filter(|&i| i != first) {
            entries[index].kind = EntryKind::Hardlink(target.clone());
        }
    }
    Ok(entries)
}

/// Opens the regular file `rel` inside `root` for reading, its last
/// component never followed: a symlink or special file swapped in after the
/// scan is refused, never read through.
pub fn open_file_in_root(root: &Root, rel: &std::path::Path) -> io::Result<std::fs::File> {
    let handle = root.resolve_nofollow(rel).map_err(pathrs_io)?;
    let file = handle
        .reopen(OpenFlags::O_RDONLY | OpenFlags::O_NOFOLLOW)
        .map_err(pathrs_io)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is no longer a regular file", rel.display()),
        ));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    fn kinds(entries: &[Entry]) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = entries
            .iter()
            .map(|e| {
                let k = match &e.kind {
                    EntryKind::File { source, .. } => format!("file {}", source.display()),
                    EntryKind::Symlink(t) => format!("symlink {}", t.display()),
                    other => format!("{other:?}"),
                };
                (e.tar_path(), k)
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn overlay_whiteouts_become_oci_whiteouts_and_symlinks_stay_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::create_dir_all(root.join("opaque")).unwrap();
        fs::write(root.join("etc/new"), b"x").unwrap();
        fs::write(root.join("etc/hosts"), b"").unwrap();
        symlink("/etc/shadow", root.join("evil")).unwrap();
        symlink("/", root.join("up")).unwrap();
        // An overlay whiteout is a 0:0 character device.
        nix::sys::stat::mknod(
            &root.join("etc/gone"),
            SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o644),
            0,
        )
        .unwrap();
        crate::layer::xattr::set_opaque(&root.join("opaque")).unwrap();
        let skip = |rel: &str| rel == "etc/hosts";
        let entries = scan_upper_in_root(root, &skip).unwrap();
        assert_eq!(
            kinds(&entries),
            [
                ("etc".to_string(), "Dir".to_string()),
                ("etc/.wh.gone".into(), "Whiteout".into()),
                ("etc/new".into(), "file etc/new".into()),
                ("evil".into(), "symlink /etc/shadow".into()),
                ("opaque".into(), "Dir".into()),
                ("opaque/.wh..wh..opq".into(), "Opaque".into()),
                ("up".into(), "symlink /".into()),
            ]
        );
    }

    #[test]
    fn a_tree_deeper_than_path_max_fails_cleanly_without_recursion() {
        use nix::fcntl::{OFlag, openat};
        use nix::sys::stat::{Mode, mkdirat};
        let dir = tempfile::tempdir().unwrap();
        // 600 levels of 9-character names: 6000 bytes, past PATH_MAX, made
        // fd by fd as a container could.
        let mut fd = nix::fcntl::open(dir.path(), OFlag::O_DIRECTORY, Mode::empty()).unwrap();
        for _ in 0..600 {
            mkdirat(Some(fd), "deeper123", Mode::from_bits_truncate(0o755)).unwrap();
            let next = openat(Some(fd), "deeper123", OFlag::O_DIRECTORY, Mode::empty()).unwrap();
            nix::unistd::close(fd).unwrap();
            fd = next;
        }
        nix::unistd::close(fd).unwrap();
        let err = scan_upper_in_root(dir.path(), &|_| false).unwrap_err();
        assert!(matches!(err, ScanRootError::Read { .. }), "{err}");
        // The tree is removed with the same fd-relative care by `rm -rf`.
        let _ = std::process::Command::new("rm")
            .arg("-rf")
            .arg(dir.path())
            .status();
    }

    #[test]
    fn a_symlinked_file_is_never_read_through() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), b"secret").unwrap();
        symlink(outside.path().join("secret"), dir.path().join("f")).unwrap();
        fs::create_dir(dir.path().join("d")).unwrap();
        symlink("/", dir.path().join("d/up")).unwrap();
        let root = Root::open(dir.path()).unwrap();
        for rel in ["f", "d/up", "../secret"] {
            assert!(
                open_file_in_root(&root, std::path::Path::new(rel)).is_err(),
                "{rel}"
            );
        }
    }

    #[test]
    fn a_directory_over_the_bound_is_refused_while_it_is_read() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..10 {
            fs::write(dir.path().join(format!("f{i}")), b"x").unwrap();
        }
        let root = Root::open(dir.path()).unwrap();
        let err = scan_at_most(&root, dir.path(), "", true, &|_| false, 5).unwrap_err();
        assert!(
            matches!(err, ScanRootError::TooManyEntries { max: 5, .. }),
            "{err}"
        );
        let all = scan_at_most(&root, dir.path(), "", true, &|_| false, 11).unwrap();
        assert_eq!(all.len(), 10);
    }
}
