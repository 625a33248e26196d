//! Build cache records: what a cached step produced, stored under its key.
//! The same records travel between machines in remote caches
//! ([`crate::remote_cache`]).

use berth_store::collect::DocumentRoots;
pub use berth_store::layer::LayerRecord;
use berth_store::{Digest, Store, StoreError, io_err};
use serde::{Deserialize, Serialize};
use std::fs;
use std::io;
use std::path::PathBuf;

/// What a filesystem step produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheRecord {
    /// The layer the step added, or none when it changed nothing.
    pub layer: Option<LayerRecord>,
    /// When the step first ran (RFC 3339), reused for its history entry.
    pub created: String,
}

/// The build cache records as a root source of the store's collector: a
/// record keeps every blob and snapshot it mentions.
pub fn roots(store: &Store) -> DocumentRoots {
    DocumentRoots::new(store.root().join("cache"))
}

fn record_path(store: &Store, key: &Digest) -> PathBuf {
    store
        .root()
        .join("cache")
        .join(format!("{}.json", key.hex()))
}

/// The build cache records of a store, kept under its `cache/` directory.
pub trait CacheStore {
    /// The record for `key`, if any, and only if its layer blob is still
    /// present; a record whose blob is gone counts as a miss. A missing
    /// snapshot does not: it is unpacked from the blob when a step needs it.
    fn cache_lookup(&self, key: &Digest) -> Result<Option<CacheRecord>, StoreError>;

    /// Records what the step with `key` produced.
    fn cache_store(&self, key: &Digest, record: &CacheRecord) -> Result<(), StoreError>;
}

impl CacheStore for Store {
    fn cache_lookup(&self, key: &Digest) -> Result<Option<CacheRecord>, StoreError> {
        let path = record_path(self, key);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("reading", &path)(e)),
        };
        let Ok(record) = serde_json::from_slice::<CacheRecord>(&bytes) else {
            tracing::warn!(path = %path.display(), "ignoring an unreadable cache record");
            return Ok(None);
        };
        if let Some(layer) = &record.layer
            && !self.blobs().contains(&layer.descriptor.digest)
        {
            return Ok(None);
        }
        Ok(Some(record))
    }

    fn cache_store(&self, key: &Digest, record: &CacheRecord) -> Result<(), StoreError> {
        self.write_json(&record_path(self, key), record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_store::oci::Descriptor;

    #[test]
    fn records_round_trip_and_partial_records_miss() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let key = Digest::of(b"key");
        assert_eq!(store.cache_lookup(&key).unwrap(), None);
        let empty = CacheRecord {
            layer: None,
            created: "1970-01-01T00:00:00Z".into(),
        };
        store.cache_store(&key, &empty).unwrap();
        assert_eq!(store.cache_lookup(&key).unwrap(), Some(empty));

        let blob = store.blobs().put(b"layer").unwrap();
        let with_layer = CacheRecord {
            layer: Some(LayerRecord {
                descriptor: Descriptor {
                    artifact_type: None,
                    unknown: Default::default(),
                    urls: None,
                    media_type: berth_store::oci::MEDIA_LAYER_GZIP.into(),
                    digest: blob,
                    size: 5,
                    annotations: Default::default(),
                    platform: None,
                },
                diff_id: Digest::of(b"tar"),
            }),
            created: "1970-01-01T00:00:00Z".into(),
        };
        let key2 = Digest::of(b"key2");
        store.cache_store(&key2, &with_layer).unwrap();
        // No snapshot is needed: it can be unpacked from the blob.
        assert_eq!(store.cache_lookup(&key2).unwrap(), Some(with_layer.clone()));
        // Without its blob, the record does not count.
        let mut blobless = with_layer;
        if let Some(layer) = &mut blobless.layer {
            layer.descriptor.digest = Digest::of(b"another layer");
        }
        let key3 = Digest::of(b"key3");
        store.cache_store(&key3, &blobless).unwrap();
        assert_eq!(store.cache_lookup(&key3).unwrap(), None);
    }
}
