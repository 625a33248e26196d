//! Reading a directory tree into layer entries: an overlayfs upper directory
//! after a `RUN`, or a root filesystem being imported.
//!
//! Overlay whiteouts (0/0 character devices) become OCI whiteouts and opaque
//! directories (`trusted.overlay.opaque=y`) get an opaque marker. Files that
//! share an inode become hard links to the first of them in canonical order.

use super::entry::{Entry, EntryKind};
use super::xattr;
use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Errors while scanning a tree.
#[derive(Debug, thiserror::Error)]
#[error("reading {} for a layer", path.display())]
pub struct ScanError {
    /// The path that failed.
    pub path: PathBuf,
    /// The underlying error.
    pub source: io::Error,
}

/// Whether a directory is read as an overlay upper directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TreeKind {
    /// An overlayfs upper directory: whiteouts and opaque markers are converted.
    OverlayUpper,
    /// A plain root filesystem.
    Plain,
}

/// Scans `root` into layer entries (unsorted; the writer orders them).
pub fn scan_tree(root: &Path, kind: TreeKind) -> Result<Vec<Entry>, ScanError> {
    let mut entries = Vec::new();
    let mut inodes: HashMap<(u64, u64), Vec<usize>> = HashMap::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, rel_dir)) = stack.pop() {
        let err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ScanError { path, source }
        };
        let mut children: Vec<_> = fs::read_dir(&dir)
            .map_err(err(&dir))?
            .collect::<Result<_, _>>()
            .map_err(err(&dir))?;
        // Sorted so hard links point at the first path in canonical order.
        children.sort_by_key(|e| e.file_name());
        for child in children {
            let path = child.path();
            let name = child.file_name().to_string_lossy().into_owned();
            let rel = if rel_dir.is_empty() {
                name
            } else {
                format!("{rel_dir}/{name}")
            };
            let meta = fs::symlink_metadata(&path).map_err(err(&path))?;
            let ft = meta.file_type();
            let mut entry = Entry {
                path: rel.clone(),
                kind: EntryKind::Dir,
                mode: meta.mode() & 0o7777,
                uid: u64::from(meta.uid()),
                gid: u64::from(meta.gid()),
                mtime: meta.mtime(),
            };
            if ft.is_dir() {
                if kind == TreeKind::OverlayUpper && xattr::is_opaque(&path) {
                    // Markers carry no metadata of their own; fixed values
                    // keep layers reproducible.
                    entries.push(Entry {
                        kind: EntryKind::Opaque,
                        mode: 0,
                        uid: 0,
                        gid: 0,
                        mtime: 0,
                        ..entry.clone()
                    });
                }
                entries.push(entry);
                stack.push((path, rel));
                continue;
            }
            entry.kind = if ft.is_symlink() {
                EntryKind::Symlink(fs::read_link(&path).map_err(err(&path))?)
            } else if ft.is_char_device() {
                let (major, minor) = split_dev(meta.rdev());
                if kind == TreeKind::OverlayUpper && major == 0 && minor == 0 {
                    entry.mode = 0;
                    entry.uid = 0;
                    entry.gid = 0;
                    entry.mtime = 0;
                    EntryKind::Whiteout
                } else {
                    EntryKind::CharDevice(major, minor)
                }
            } else if ft.is_block_device() {
                let (major, minor) = split_dev(meta.rdev());
                EntryKind::BlockDevice(major, minor)
            } else if ft.is_fifo() {
                EntryKind::Fifo
            } else if ft.is_socket() {
                // Sockets cannot be archived; tar tools skip them too.
                continue;
            } else if meta.nlink() > 1 {
                inodes
                    .entry((meta.dev(), meta.ino()))
                    .or_default()
                    .push(entries.len());
                EntryKind::File {
                    source: path.clone(),
                    size: meta.len(),
                }
            } else {
                EntryKind::File {
                    source: path.clone(),
                    size: meta.len(),
                }
            };
            entries.push(entry);
        }
    }
    // Files sharing an inode: the first name in canonical order keeps the
    // content, the others become hard links to it.
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

/// Splits a `dev_t` into major and minor, as glibc's `gnu_dev_major`/`minor`.
pub(crate) fn split_dev(dev: u64) -> (u32, u32) {
    let major = ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0x0000_0fff);
    let minor = ((dev >> 12) & 0xffff_ff00) | (dev & 0x0000_00ff);
    (major as u32, minor as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn plain_tree_keeps_symlinks_modes_and_hard_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("a/b")).unwrap();
        fs::write(root.join("z"), b"z").unwrap();
        fs::hard_link(root.join("z"), root.join("a/b/link")).unwrap();
        symlink("../z", root.join("a/sym")).unwrap();
        let mut entries = scan_tree(root, TreeKind::Plain).unwrap();
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        let kinds: Vec<(String, String)> = entries
            .iter()
            .map(|e| {
                let k = match &e.kind {
                    EntryKind::Dir => "dir".to_string(),
                    EntryKind::File { .. } => "file".to_string(),
                    EntryKind::Symlink(t) => format!("symlink {}", t.display()),
                    EntryKind::Hardlink(t) => format!("link {t}"),
                    other => format!("{other:?}"),
                };
                (e.path.clone(), k)
            })
            .collect();
        assert_eq!(
            kinds,
            [
                ("a".to_string(), "dir".to_string()),
                ("a/b".into(), "dir".into()),
                ("a/b/link".into(), "file".into()),
                ("a/sym".into(), "symlink ../z".into()),
                ("z".into(), "link a/b/link".into()),
            ]
        );
    }

    #[test]
    fn dev_numbers_split_like_glibc() {
        // makedev(8, 1) and makedev(259, 65536) in glibc's encoding.
        assert_eq!(split_dev(0x801), (8, 1));
        let dev = libc::makedev(259, 65536);
        assert_eq!(split_dev(dev), (259, 65536));
    }
}
