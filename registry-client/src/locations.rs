//! Which repositories hold which blobs on each registry, so that a push can
//! mount a blob from a repository where an earlier push or pull saw it (as
//! containerd's distribution-source labels and skopeo's blob-info cache do).
//!
//! Kept in memory, and optionally in a JSON file shared between processes.
//! It is a cache: a wrong entry costs one failed mount (the registry then
//! opens an upload), and a file that cannot be read or written is ignored.

use berth_store::digest::Digest;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// Entries kept; the oldest go first.
const MAX_ENTRIES: usize = 20_000;

#[derive(serde::Serialize, serde::Deserialize)]
struct Entry {
    registry: String,
    digest: Digest,
    repository: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct CacheFile {
    version: u32,
    entries: Vec<Entry>,
}

#[derive(Default)]
struct Table {
    /// (registry, digest) → (repository, sequence number of the last sighting).
    entries: HashMap<(String, Digest), (String, u64)>,
    next: u64,
}

/// The cache.
pub(crate) struct BlobLocations {
    table: Mutex<Table>,
    file: Option<PathBuf>,
    dirty: AtomicBool,
}

impl BlobLocations {
    /// Loads the cache file if there is one.
    pub fn load(file: Option<PathBuf>) -> BlobLocations {
        let mut table = Table::default();
        if let Some(path) = &file {
            match std::fs::read(path) {
                Ok(bytes) => match serde_json::from_slice::<CacheFile>(&bytes) {
                    Ok(cache) => {
                        for entry in cache.entries {
                            table.next += 1;
                            table.entries.insert(
                                (entry.registry, entry.digest),
                                (entry.repository, table.next),
                            );
                        }
                    }
                    Err(err) => {
                        tracing::debug!(path = %path.display(), error = %err, "ignoring unreadable blob location cache");
                    }
                },
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => {
                    tracing::debug!(path = %path.display(), error = %err, "ignoring unreadable blob location cache");
                }
            }
        }
        BlobLocations {
            table: Mutex::new(table),
            file,
            dirty: AtomicBool::new(false),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records that `repository` on `registry` holds the blob.
    pub fn remember(&self, registry: &str, digest: &Digest, repository: &str) {
        let mut table = self.table();
        table.next += 1;
        let sequence = table.next;
        table.entries.insert(
            (registry.to_owned(), digest.clone()),
            (repository.to_owned(), sequence),
        );
        self.dirty.store(true, Ordering::Relaxed);
    }

    /// A repository on `registry`, other than `except`, known to hold the blob.
    pub fn lookup(&self, registry: &str, digest: &Digest, except: &str) -> Option<String> {
        self.table()
            .entries
            .get(&(registry.to_owned(), digest.clone()))
            .map(|(repository, _)| repository.clone())
            .filter(|repository| repository != except)
    }

    /// Writes the cache file (atomically) if anything changed. Failures are
    /// logged, not returned: the transfer itself succeeded.
    pub async fn save(&self) {
        let Some(path) = &self.file else { return };
        if !self.dirty.swap(false, Ordering::Relaxed) {
            return;
        }
        let body = {
            let table = self.table();
            let mut entries: Vec<_> = table.entries.iter().collect();
            entries.sort_by_key(|(_, (_, sequence))| *sequence);
            let skip = entries.len().saturating_sub(MAX_ENTRIES);
            let entries = entries
                .into_iter()
                .skip(skip)
                .map(|((registry, digest), (repository, _))| Entry {
                    registry: registry.clone(),
                    digest: digest.clone(),
                    repository: repository.clone(),
                })
                .collect();
            serde_json::to_vec(&CacheFile {
                version: 1,
                entries,
            })
        };
        let result = match body {
            Ok(body) => write_atomically(path.clone(), body).await,
            Err(err) => Err(std::io::Error::other(err)),
        };
        if let Err(err) = result {
            tracing::warn!(path = %path.display(), error = %err, "could not save the blob location cache");
        }
    }
}

async fn write_atomically(path: PathBuf, body: Vec<u8>) -> std::io::Result<()> {
    tokio::task::spawn_blocking(move || {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let temp = path.with_extension(format!("tmp-{}", std::process::id()));
        std::fs::write(&temp, body)?;
        std::fs::rename(&temp, &path).inspect_err(|_| {
            let _ = std::fs::remove_file(&temp);
        })
    })
    .await
    .map_err(std::io::Error::other)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_a_round_trip_through_its_file() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache/locations.json");
        let digest = Digest::of(b"layer");
        let first = BlobLocations::load(Some(path.clone()));
        first.remember("reg:5000", &digest, "team/base");
        runtime.block_on(first.save());
        let second = BlobLocations::load(Some(path.clone()));
        assert_eq!(
            second.lookup("reg:5000", &digest, "team/app").as_deref(),
            Some("team/base")
        );
        assert_eq!(second.lookup("reg:5000", &digest, "team/base"), None);
        assert_eq!(second.lookup("other:5000", &digest, "team/app"), None);
        std::fs::write(&path, b"not json").unwrap();
        assert_eq!(
            BlobLocations::load(Some(path)).lookup("reg:5000", &digest, "x"),
            None
        );
    }
}
