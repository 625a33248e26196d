//! Garbage collection of the store: which blobs and snapshots something still
//! needs (marking), and the removal of the rest (sweeping).
//!
//! Marking starts from the roots: every manifest or index named in
//! `index.json` (tagged or not), and what the [`RootSource`]s the caller
//! passes hold: the images of container records, the build cache records.
//! The store knows nothing of what is built above it; every layer that keeps
//! store content alive registers as a root source. It is conservative
//! on purpose: every `sha256:` digest mentioned anywhere in a reachable JSON
//! document (a manifest, an index, an image config, a cache record, whatever
//! its format) is reachable, both as a blob and as a snapshot (a diffID). So a
//! new document kind never loses its blobs to a collector that does not know
//! its schema; at worst something is kept too long.
//!
//! Removal happens only under the collector lock, which waits for every
//! lease (running builds, pulls, container starts) to end, so marking sees
//! every reference a running operation could still add. Names go first (tags,
//! cache records), blobs after: a kill at any point leaves blobs nothing
//! names, which the next prune removes, and never a name without its blobs.
//! A snapshot is renamed into `tmp/` before its tree is removed, so a
//! half-removed snapshot is never mistaken for a complete one.

use super::lock::FileLock;
use super::{Digest, Store, StoreError, io_err, tmp};
use std::collections::BTreeSet;
use std::fs;
use std::io::{self, Read};
use std::path::Path;

/// JSON documents larger than this are not parsed while marking: no
/// manifest, index, image config or cache record comes near it, and a layer
/// never gets read whole.
const MAX_DOCUMENT: u64 = 16 << 20;

/// What marking found reachable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reachable {
    /// Blob digests (whether or not the blob is present).
    pub blobs: BTreeSet<Digest>,
    /// Snapshot diffIDs (whether or not the snapshot is present).
    pub snapshots: BTreeSet<Digest>,
}

impl Reachable {
    /// Marks `digest` and, if it is a JSON document in the store, everything
    /// it mentions.
    pub fn visit(&mut self, store: &Store, digest: &Digest) -> Result<(), StoreError> {
        let mut pending = vec![digest.clone()];
        while let Some(next) = pending.pop() {
            self.snapshots.insert(next.clone());
            if !self.blobs.insert(next.clone()) {
                continue;
            }
            if let Some(value) = read_document(&store.blobs().path(&next))? {
                mentioned_digests(&value, &mut pending);
            }
        }
        Ok(())
    }

    /// Marks a root: a manifest or index that a tag or a container names.
    /// Unlike [`Reachable::visit`], a root that is present but does not
    /// parse stops the collection: what it needs cannot be known, and
    /// guessing could delete a tagged image's layers.
    pub fn visit_root(&mut self, store: &Store, digest: &Digest) -> Result<(), StoreError> {
        let path = store.blobs().path(digest);
        if path.exists() {
            let bytes = fs::read(&path).map_err(io_err("reading", &path))?;
            serde_json::from_slice::<serde_json::Value>(&bytes)
                .map_err(|source| StoreError::Corrupt { path, source })?;
        }
        self.visit(store, digest)
    }

    /// Marks every digest mentioned by a JSON document (a cache record) and
    /// what those blobs mention in turn.
    pub fn visit_document(
        &mut self,
        store: &Store,
        value: &serde_json::Value,
    ) -> Result<(), StoreError> {
        let mut found = Vec::new();
        mentioned_digests(value, &mut found);
        found.iter().try_for_each(|d| self.visit(store, d))
    }
}

/// Reads a blob as JSON if it is one (starts with `{` and is not huge).
fn read_document(path: &Path) -> Result<Option<serde_json::Value>, StoreError> {
    let mut file = match fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("opening", path)(e)),
    };
    let len = file.metadata().map_err(io_err("inspecting", path))?.len();
    if len > MAX_DOCUMENT {
        return Ok(None);
    }
    let mut first = [0u8; 1];
    if file.read(&mut first).map_err(io_err("reading", path))? == 0 || first[0] != b'{' {
        return Ok(None);
    }
    let mut bytes = vec![b'{'];
    file.read_to_end(&mut bytes)
        .map_err(io_err("reading", path))?;
    Ok(serde_json::from_slice(&bytes).ok())
}

/// Collects every string in `value` that is a valid digest.
fn mentioned_digests(value: &serde_json::Value, out: &mut Vec<Digest>) {
    match value {
        serde_json::Value::String(text) => {
            if let Ok(digest) = Digest::parse(text) {
                out.push(digest);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| mentioned_digests(v, out)),
        serde_json::Value::Object(map) => map.values().for_each(|v| mentioned_digests(v, out)),
        _ => {}
    }
}

/// An image some holder above the store keeps in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldImage {
    /// The manifest (or index) digest of the image.
    pub digest: Digest,
    /// Who holds it, for messages (a container's short id).
    pub holder: String,
}

/// Something above the store that keeps store content alive: containers keep
/// their images, the build cache keeps its layers. Every collection is given
/// the sources of the layers above it, so the store never imports them.
pub trait RootSource {
    /// The images this source holds; `rmi` refuses to delete them.
    fn held_images(&self, _store: &Store) -> Result<Vec<HeldImage>, StoreError> {
        Ok(Vec::new())
    }

    /// Marks what this source needs besides its held images.
    fn mark(&self, _store: &Store, _reachable: &mut Reachable) -> Result<(), StoreError> {
        Ok(())
    }
}

/// A directory of JSON documents of any shape (build cache records) that
/// keep every digest they mention.
#[derive(Debug, Clone)]
pub struct DocumentRoots {
    dir: std::path::PathBuf,
}

impl DocumentRoots {
    /// The documents under `dir`, at any depth.
    pub fn new(dir: std::path::PathBuf) -> DocumentRoots {
        DocumentRoots { dir }
    }

    /// Every file under the directory (none if it does not exist).
    pub fn files(&self) -> Result<Vec<std::path::PathBuf>, StoreError> {
        let mut files = Vec::new();
        for entry in walkdir::WalkDir::new(&self.dir).min_depth(1) {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) if e.io_error().map(io::Error::kind) == Some(io::ErrorKind::NotFound) => {
                    continue;
                }
                Err(e) => {
                    let path = e.path().unwrap_or(&self.dir).to_path_buf();
                    return Err(io_err("listing", &path)(io::Error::other(e.to_string())));
                }
            };
            if entry.file_type().is_file() {
                files.push(entry.into_path());
            }
        }
        Ok(files)
    }
}

impl RootSource for DocumentRoots {
    fn mark(&self, store: &Store, reachable: &mut Reachable) -> Result<(), StoreError> {
        for record in self.files()? {
            let value = match fs::read(&record) {
                Ok(bytes) => serde_json::from_slice::<serde_json::Value>(&bytes).ok(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                Err(e) => return Err(io_err("reading", &record)(e)),
            };
            if let Some(value) = value {
                reachable.visit_document(store, &value)?;
            }
        }
        Ok(())
    }
}

/// Marks everything the roots reach: `index.json`, and every source's held
/// images and marks.
pub fn mark(store: &Store, sources: &[&dyn RootSource]) -> Result<Reachable, StoreError> {
    let mut reachable = Reachable::default();
    for descriptor in store.read_index()?.manifests {
        reachable.visit_root(store, &descriptor.digest)?;
    }
    for source in sources {
        for held in source.held_images(store)? {
            reachable.visit_root(store, &held.digest)?;
        }
        source.mark(store, &mut reachable)?;
    }
    Ok(reachable)
}

/// What a collection removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reclaimed {
    /// Blobs removed.
    pub blobs: usize,
    /// Snapshots removed.
    pub snapshots: usize,
    /// Build cache records removed.
    pub records: usize,
    /// Other entries removed: context hash caches, cache mounts.
    pub other: usize,
    /// Bytes freed (apparent file sizes).
    pub bytes: u64,
}

impl Reclaimed {
    /// Adds another collection's figures.
    pub fn add(&mut self, other: &Reclaimed) {
        self.blobs += other.blobs;
        self.snapshots += other.snapshots;
        self.records += other.records;
        self.other += other.other;
        self.bytes += other.bytes;
    }
}

/// Takes the collector lock; when a lease is held, calls `on_wait` once and
/// then waits for every lease to end.
pub fn lock(store: &Store, on_wait: &dyn Fn()) -> Result<FileLock, StoreError> {
    if let Some(lock) = store.try_collector_lock()? {
        return Ok(lock);
    }
    on_wait();
    store.collector_lock()
}

/// Which blobs and snapshots a sweep may remove.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// Everything unreachable.
    All,
    /// Only these, and only when unreachable.
    Only(&'a Reachable),
}

/// Removes the blobs and snapshots in `scope` that `reachable` does not hold.
/// The caller holds the collector lock.
pub fn sweep(
    store: &Store,
    reachable: &Reachable,
    scope: Scope<'_>,
) -> Result<Reclaimed, StoreError> {
    let mut reclaimed = Reclaimed::default();
    let blob_dir = store.layout_dir().join("blobs/sha256");
    let blobs: Vec<Digest> = match scope {
        Scope::All => digest_entries(&blob_dir)?,
        Scope::Only(candidates) => candidates.blobs.iter().cloned().collect(),
    };
    for digest in blobs {
        if reachable.blobs.contains(&digest) {
            continue;
        }
        let path = store.blobs().path(&digest);
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() => {
                fs::remove_file(&path).map_err(io_err("removing", &path))?;
                tracing::debug!(blob = %digest, "removed unreferenced blob");
                reclaimed.blobs += 1;
                reclaimed.bytes += meta.len();
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("inspecting", &path)(e)),
        }
    }
    let snapshots: Vec<Digest> = match scope {
        Scope::All => digest_entries(&store.root().join("snapshots"))?,
        Scope::Only(candidates) => candidates.snapshots.iter().cloned().collect(),
    };
    for diff_id in snapshots {
        if reachable.snapshots.contains(&diff_id) || !store.has_snapshot(&diff_id) {
            continue;
        }
        reclaimed.bytes += remove_snapshot(store, &diff_id)?;
        reclaimed.snapshots += 1;
    }
    Ok(reclaimed)
}

/// The entries of a directory named by a digest's hex (others are ignored,
/// e.g. `snapshots/empty`).
fn digest_entries(dir: &Path) -> Result<Vec<Digest>, StoreError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("listing", dir)(e)),
    };
    let mut digests = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err("listing", dir))?;
        let name = entry.file_name();
        if let Ok(digest) = Digest::parse(&format!("sha256:{}", name.to_string_lossy())) {
            digests.push(digest);
        }
    }
    Ok(digests)
}

/// Moves a snapshot out of sight, then removes it; returns its size.
fn remove_snapshot(store: &Store, diff_id: &Digest) -> Result<u64, StoreError> {
    let path = store.snapshot_path(diff_id);
    let doomed = tmp::fresh(&store.tmp_dir(), "removed-snapshot");
    fs::rename(&path, &doomed).map_err(io_err("moving aside", &path))?;
    let size = tree_size(&doomed);
    tmp::remove_tree(&doomed)?;
    tracing::debug!(snapshot = %diff_id, "removed unreferenced snapshot");
    Ok(size)
}

/// The apparent size of the files under `path` (a file counts itself).
pub fn tree_size(path: &Path) -> u64 {
    walkdir::WalkDir::new(path)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// Removes a file or directory tree, returning the bytes it held.
pub fn remove_entry(path: &Path) -> Result<u64, StoreError> {
    let size = tree_size(path);
    tmp::remove_tree(path)?;
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::{Descriptor, MEDIA_MANIFEST};

    fn descriptor(digest: Digest) -> Descriptor {
        Descriptor {
            artifact_type: None,
            unknown: Default::default(),
            urls: None,
            media_type: MEDIA_MANIFEST.into(),
            digest,
            size: 0,
            annotations: Default::default(),
            platform: None,
        }
    }

    /// A store with a tagged image (manifest -> config -> diffID snapshot and
    /// a layer) and an unreferenced blob and snapshot.
    fn cache_roots(store: &Store) -> DocumentRoots {
        DocumentRoots::new(store.root().join("cache"))
    }

    fn fixture() -> (tempfile::TempDir, Store, Digest, Digest, Digest) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let layer = store.blobs().put(b"\x1f\x8blayer").unwrap();
        let diff_id = Digest::of(b"tar");
        fs::create_dir_all(store.snapshot_path(&diff_id).join("etc")).unwrap();
        let config = store
            .blobs()
            .put(format!(r#"{{"rootfs":{{"diff_ids":["{diff_id}"]}}}}"#).as_bytes())
            .unwrap();
        let manifest = store
            .blobs()
            .put(
                format!(
                    r#"{{"config":{{"digest":"{config}"}},"layers":[{{"digest":"{layer}"}}]}}"#
                )
                .as_bytes(),
            )
            .unwrap();
        store.tag("app", &descriptor(manifest.clone())).unwrap();
        let orphan = store.blobs().put(b"orphan").unwrap();
        let orphan_snapshot = Digest::of(b"orphan tar");
        fs::create_dir_all(store.snapshot_path(&orphan_snapshot)).unwrap();
        fs::write(store.snapshot_path(&orphan_snapshot).join("f"), b"12345").unwrap();
        (dir, store, manifest, orphan, orphan_snapshot)
    }

    #[test]
    fn marking_follows_manifests_configs_and_cache_records() {
        let (_dir, store, manifest, orphan, orphan_snapshot) = fixture();
        let reachable = mark(&store, &[&cache_roots(&store)]).unwrap();
        assert!(reachable.blobs.contains(&manifest));
        assert_eq!(
            reachable.blobs.len(),
            3 + 1,
            "manifest, config, layer, diffID"
        );
        assert!(reachable.snapshots.contains(&Digest::of(b"tar")));
        assert!(!reachable.blobs.contains(&orphan));

        // A cache record of any shape keeps the digests it mentions.
        fs::write(
            store.root().join("cache/k.json"),
            format!(r#"{{"layer":{{"x":["{orphan}","{orphan_snapshot}"]}}}}"#),
        )
        .unwrap();
        let reachable = mark(&store, &[&cache_roots(&store)]).unwrap();
        assert!(reachable.blobs.contains(&orphan));
        assert!(reachable.snapshots.contains(&orphan_snapshot));
        let ignoring = mark(&store, &[]).unwrap();
        assert!(!ignoring.blobs.contains(&orphan));
    }

    #[test]
    fn an_unreadable_tagged_manifest_stops_the_collection() {
        let (_dir, store, manifest, _, _) = fixture();
        fs::write(store.blobs().path(&manifest), b"{not json").unwrap();
        assert!(matches!(
            mark(&store, &[&cache_roots(&store)]),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn sweeping_removes_exactly_the_unreachable() {
        let (_dir, store, manifest, orphan, orphan_snapshot) = fixture();
        let reachable = mark(&store, &[&cache_roots(&store)]).unwrap();
        let reclaimed = sweep(&store, &reachable, Scope::All).unwrap();
        assert_eq!(reclaimed.blobs, 1);
        assert_eq!(reclaimed.snapshots, 1);
        assert_eq!(reclaimed.bytes, b"orphan".len() as u64 + 5);
        assert!(!store.blobs().contains(&orphan));
        assert!(!store.has_snapshot(&orphan_snapshot));
        assert!(store.blobs().contains(&manifest));
        assert!(store.has_snapshot(&Digest::of(b"tar")));
        // Nothing is left in tmp/ either.
        assert_eq!(fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
        // A second sweep finds nothing.
        let again = sweep(
            &store,
            &mark(&store, &[&cache_roots(&store)]).unwrap(),
            Scope::All,
        )
        .unwrap();
        assert_eq!(again, Reclaimed::default());
    }

    #[test]
    fn a_scoped_sweep_touches_only_its_candidates() {
        let (_dir, store, manifest, orphan, orphan_snapshot) = fixture();
        let mut candidates = Reachable::default();
        candidates.visit(&store, &manifest).unwrap();
        store.untag("app").unwrap();
        let reachable = mark(&store, &[&cache_roots(&store)]).unwrap();
        let reclaimed = sweep(&store, &reachable, Scope::Only(&candidates)).unwrap();
        assert_eq!((reclaimed.blobs, reclaimed.snapshots), (3, 1));
        assert!(store.blobs().contains(&orphan));
        assert!(store.has_snapshot(&orphan_snapshot));
    }
}
