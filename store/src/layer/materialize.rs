//! Writing layer entries straight into a snapshot directory, in overlayfs
//! form, without going through the compressed blob: a COPY's snapshot is made
//! from its sources while its blob is being compressed.

use super::entry::{Entry, EntryKind};
use super::root::{Meta, Node, RootWriter};
use std::io;
use std::path::{Component, Path};

/// Writes `entries` (in canonical order, parents first) under `dest`, with
/// their modes, owners and (clamped) mtimes, as unpacking their tar would.
/// Every path is resolved inside `dest`, never following a symlink out.
pub fn materialize(entries: &[Entry], dest: &Path, epoch: Option<i64>) -> io::Result<()> {
    let mut root = RootWriter::open(dest)?;
    for entry in entries {
        let rel = Path::new(&entry.path);
        if !plain_relative(rel) {
            return Err(io::Error::other(format!(
                "layer entry '{}' is not a plain relative path",
                entry.path
            )));
        }
        let meta = Meta {
            uid: owner(entry.uid),
            gid: owner(entry.gid),
            mode: entry.mode,
            mtime: epoch.map_or(entry.mtime, |e| entry.mtime.min(e)),
        };
        let context = |e: io::Error| {
            io::Error::new(
                e.kind(),
                format!("writing layer entry '{}': {e}", entry.path),
            )
        };
        match &entry.kind {
            EntryKind::Dir => root.dir(rel, &meta),
            EntryKind::File { source, .. } => root.copy_file(rel, &meta, source),
            EntryKind::Bytes(bytes) => root.file(rel, &meta, &mut &bytes[..]),
            EntryKind::Symlink(target) => root.symlink(rel, target, &meta),
            EntryKind::Hardlink(target) => {
                let target = Path::new(target);
                if !plain_relative(target) {
                    return Err(io::Error::other(format!(
                        "layer entry '{}' is a hardlink to '{}', outside the layer root",
                        entry.path,
                        target.display()
                    )));
                }
                root.hardlink(rel, target)
            }
            EntryKind::CharDevice(major, minor) => {
                root.node(rel, Node::Char(*major, *minor), &meta)
            }
            EntryKind::BlockDevice(major, minor) => {
                root.node(rel, Node::Block(*major, *minor), &meta)
            }
            EntryKind::Fifo => root.node(rel, Node::Fifo, &meta),
            EntryKind::Whiteout => root.whiteout(rel),
            EntryKind::Opaque => root.opaque(rel),
        }
        .map_err(context)?;
    }
    // Children change their directory's mtime; directories get theirs last.
    root.finish()
}

fn plain_relative(path: &Path) -> bool {
    path.components().next().is_some()
        && path.components().all(|c| matches!(c, Component::Normal(_)))
}

fn owner(id: u64) -> Option<u32> {
    u32::try_from(id).ok()
}
