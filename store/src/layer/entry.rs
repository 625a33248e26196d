//! The entries of a layer, as plain data: what goes into the tar stream, in
//! which order, with which owner, mode and time.

use std::path::PathBuf;

/// What an entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file whose content is read from a host path.
    File {
        /// Where to read the content.
        source: PathBuf,
        /// The size recorded when the entry was planned.
        size: u64,
    },
    /// A regular file with inline content (heredocs).
    Bytes(Vec<u8>),
    /// A directory.
    Dir,
    /// A symbolic link with this target.
    Symlink(PathBuf),
    /// A hard link to an earlier entry of the same layer.
    Hardlink(String),
    /// A character device.
    CharDevice(u32, u32),
    /// A block device.
    BlockDevice(u32, u32),
    /// A named pipe.
    Fifo,
    /// An OCI whiteout: the path is deleted (`.wh.<name>`).
    Whiteout,
    /// An OCI opaque marker: lower contents of this directory are hidden
    /// (`<dir>/.wh..wh..opq`).
    Opaque,
}

/// One layer entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The path inside the image, relative (no leading `/`), `/`-separated.
    pub path: String,
    /// What it is.
    pub kind: EntryKind,
    /// Permission bits, including setuid, setgid and sticky.
    pub mode: u32,
    /// Owner.
    pub uid: u64,
    /// Group.
    pub gid: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
}

impl Entry {
    /// The bytes of content a regular file carries (0 for anything else).
    pub fn content_size(&self) -> u64 {
        match &self.kind {
            EntryKind::File { size, .. } => *size,
            EntryKind::Bytes(b) => b.len() as u64,
            _ => 0,
        }
    }

    /// The name the entry has in the tar stream: whiteouts become `.wh.` files.
    pub fn tar_path(&self) -> String {
        match self.kind {
            EntryKind::Whiteout => match self.path.rsplit_once('/') {
                Some((dir, name)) => format!("{dir}/.wh.{name}"),
                None => format!(".wh.{}", self.path),
            },
            EntryKind::Opaque => format!("{}/.wh..wh..opq", self.path),
            _ => self.path.clone(),
        }
    }
}

/// Sorts entries into the canonical order: by tar path, bytewise, so a parent
/// always precedes its children and equal inputs give equal streams. A later
/// duplicate of a path replaces an earlier one.
pub fn canonical_order(entries: Vec<Entry>) -> Vec<Entry> {
    let mut map = std::collections::BTreeMap::new();
    for entry in entries {
        map.insert(entry.tar_path(), entry);
    }
    map.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, kind: EntryKind) -> Entry {
        Entry {
            path: path.into(),
            kind,
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 0,
        }
    }

    #[test]
    fn whiteouts_get_oci_names_and_order_is_canonical() {
        let entries = vec![
            entry("b/c", EntryKind::Bytes(b"1".to_vec())),
            entry("a/gone", EntryKind::Whiteout),
            entry("b", EntryKind::Dir),
            entry("a", EntryKind::Opaque),
            entry("a", EntryKind::Dir),
            entry("b/c", EntryKind::Bytes(b"2".to_vec())),
        ];
        let names: Vec<String> = canonical_order(entries)
            .iter()
            .map(Entry::tar_path)
            .collect();
        assert_eq!(names, ["a", "a/.wh..wh..opq", "a/.wh.gone", "b", "b/c"]);
    }
}
