//! Layers: deterministic tar streams built from planned entries or scanned
//! directories, compressed with gzip or zstd, stored as blobs with their
//! diffIDs, and unpacked into snapshots in overlayfs form.

pub mod compress;
pub mod entry;
pub mod extract;
#[cfg(test)]
mod hostile_tests;
pub mod materialize;
mod root;
pub mod scan;
pub mod scan_root;
pub mod write;
pub mod xattr;

pub use compress::Compression;
pub use entry::{Entry, EntryKind};
pub use write::{LayerError, WriteOptions, write_layer};

use crate::Digest;
use crate::oci::Descriptor;
use serde::{Deserialize, Serialize};

/// A layer: its blob descriptor and its uncompressed digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    /// The compressed blob.
    pub descriptor: Descriptor,
    /// The digest of the uncompressed tar.
    pub diff_id: Digest,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Store;
    use std::fs;
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;

    fn file(path: &str, content: &[u8], mtime: i64) -> Entry {
        Entry {
            path: path.into(),
            kind: EntryKind::Bytes(content.to_vec()),
            mode: 0o644,
            uid: 1000,
            gid: 1000,
            mtime,
        }
    }

    #[test]
    fn layer_digests_are_correct_and_reproducible_with_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for compression in [Compression::Gzip, Compression::Zstd, Compression::None] {
            let opts = WriteOptions {
                compression,
                source_date_epoch: Some(100),
            };
            let a = write_layer(
                store.blobs(),
                vec![file("b", b"2", 5000), file("a", b"1", 50)],
                opts,
            )
            .unwrap();
            // Other order, other mtimes beyond the epoch: same layer.
            let b = write_layer(
                store.blobs(),
                vec![file("a", b"1", 50), file("b", b"2", 9000)],
                opts,
            )
            .unwrap();
            assert_eq!(a, b, "{compression:?}");
            let blob = store.blobs().read(&a.descriptor.digest).unwrap();
            assert_eq!(blob.len() as u64, a.descriptor.size);
            let mut tar = Vec::new();
            compress::decompress(&blob[..])
                .unwrap()
                .read_to_end(&mut tar)
                .unwrap();
            assert_eq!(Digest::of(&tar), a.diff_id);
            let mut archive = tar::Archive::new(&tar[..]);
            let seen: Vec<(String, u64, u64)> = archive
                .entries()
                .unwrap()
                .map(|e| {
                    let e = e.unwrap();
                    (
                        e.path().unwrap().display().to_string(),
                        e.header().mtime().unwrap(),
                        e.header().uid().unwrap(),
                    )
                })
                .collect();
            assert_eq!(
                seen,
                [("a".to_string(), 50, 1000), ("b".to_string(), 100, 1000)]
            );
        }
    }

    #[test]
    fn whiteouts_round_trip_between_oci_and_overlay_form() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let dir_entry = |path: &str| Entry {
            path: path.into(),
            kind: EntryKind::Dir,
            mode: 0o755,
            uid: 0,
            gid: 0,
            // Not 0: the tar crate unpacks an mtime of 0 as 1.
            mtime: 7,
        };
        let marker = |path: &str, kind| Entry {
            path: path.into(),
            kind,
            mode: 0,
            uid: 0,
            gid: 0,
            mtime: 0,
        };
        let layer = write_layer(
            store.blobs(),
            vec![
                dir_entry("etc"),
                marker("etc/gone", EntryKind::Whiteout),
                dir_entry("opaque"),
                marker("opaque", EntryKind::Opaque),
                file("opaque/kept", b"k", 9),
            ],
            WriteOptions::default(),
        )
        .unwrap();
        let snapshot =
            extract::ensure_snapshot(&store, &layer.descriptor.digest, &layer.diff_id).unwrap();
        let whiteout = fs::symlink_metadata(snapshot.join("etc/gone")).unwrap();
        use std::os::unix::fs::FileTypeExt;
        assert!(whiteout.file_type().is_char_device());
        assert_eq!(whiteout.rdev(), 0);
        assert!(xattr::is_opaque(&snapshot.join("opaque")));
        assert_eq!(fs::read(snapshot.join("opaque/kept")).unwrap(), b"k");

        // Writing the entries directly gives the same snapshot as unpacking.
        let direct = tempfile::tempdir().unwrap();
        materialize::materialize(
            &entry::canonical_order(vec![
                dir_entry("etc"),
                marker("etc/gone", EntryKind::Whiteout),
                dir_entry("opaque"),
                marker("opaque", EntryKind::Opaque),
                file("opaque/kept", b"k", 9),
            ]),
            direct.path(),
            None,
        )
        .unwrap();
        let direct_layer = write_layer(
            store.blobs(),
            scan::scan_tree(direct.path(), scan::TreeKind::OverlayUpper).unwrap(),
            WriteOptions::default(),
        )
        .unwrap();
        assert_eq!(direct_layer.diff_id, layer.diff_id);

        // Scanning the snapshot as an upper directory gives the same layer back.
        let again = write_layer(
            store.blobs(),
            scan::scan_tree(&snapshot, scan::TreeKind::OverlayUpper).unwrap(),
            WriteOptions::default(),
        )
        .unwrap();
        assert_eq!(again.diff_id, layer.diff_id);
    }
}
