//! `prune`: remove what nothing needs.
//!
//! Plain `prune` removes blobs and snapshots that no image name, container or
//! build cache record references, the staging entries of dead processes, and
//! the context hash caches of context directories that no longer exist.
//! `prune --all` also drops the build cache (its records and the
//! `RUN --mount=type=cache` directories), every context hash cache and the
//! partial downloads interrupted pulls left for resuming, and then what only
//! they kept. Tagged images and containers' images are never
//! touched; running builds are waited for.

use crate::context::hashcache;
use berth_store::collect::{self, Reclaimed, RootSource, Scope};
use berth_store::images::ImagesError;
use berth_store::{Store, StoreError, io_err, tmp};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// What `prune` removes besides unreferenced content.
#[derive(Debug, Clone, Copy, Default)]
pub struct PruneOptions {
    /// Also drop the build cache and everything only it kept.
    pub all: bool,
}

/// Prunes the store. `roots` are the holders above the store besides the
/// build cache (containers); `on_wait` is called if running builds hold it
/// and the prune has to wait for them.
pub fn prune(
    store: &Store,
    options: PruneOptions,
    roots: &[&dyn RootSource],
    on_wait: &dyn Fn(),
) -> Result<Reclaimed, ImagesError> {
    let cache = crate::cache::roots(store);
    let _lock = collect::lock(store, on_wait)?;
    let mut reclaimed = Reclaimed::default();
    tmp::remove_stale(&store.tmp_dir())?;
    if options.all {
        for record in cache.files()? {
            reclaimed.bytes += collect::remove_entry(&record)?;
            reclaimed.records += 1;
        }
        // Cache mounts, and the partial downloads of interrupted pulls (kept
        // otherwise so the next pull resumes them; no pull runs now, as
        // pulls hold a lease).
        let ingest = store.layout_dir().join(".ingest");
        for leftover in entries(&store.root().join("cache-mounts"))?
            .into_iter()
            .chain(entries(&ingest)?)
        {
            reclaimed.bytes += collect::remove_entry(&leftover)?;
            reclaimed.other += 1;
        }
    }
    for cache in entries(&store.root().join("context"))? {
        let keep = !options.all && hashcache::context_of(&cache).is_some_and(|dir| dir.is_dir());
        if !keep {
            reclaimed.bytes += collect::remove_entry(&cache)?;
            reclaimed.other += 1;
        }
    }
    let mut sources: Vec<&dyn RootSource> = roots.to_vec();
    sources.push(&cache);
    let reachable = collect::mark(store, &sources)?;
    reclaimed.add(&collect::sweep(store, &reachable, Scope::All)?);
    Ok(reclaimed)
}

/// The entries of a directory (none if it does not exist).
fn entries(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    match fs::read_dir(dir) {
        Ok(list) => list
            .map(|e| e.map(|e| e.path()).map_err(io_err("listing", dir)))
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io_err("listing", dir)(e)),
    }
}
