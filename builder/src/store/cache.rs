//! Build cache records: what a cached step produced, stored under its key.
//! The same records travel between machines in remote caches
//! ([`crate::remote_cache`]).

use super::{Digest, Store, StoreError, io_err};
use crate::oci::Descriptor;
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

/// A layer: its blob descriptor and its uncompressed digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    /// The compressed blob.
    pub descriptor: Descriptor,
    /// The digest of the uncompressed tar.
    pub diff_id: Digest,
}

impl Store {
    fn cache_path(&self, key: &Digest) -> PathBuf {
        self.root()
            .join("cache")
            .join(format!("{}.json", key.hex()))
    }

    /// The record for `key`, if any, and only if its layer blob is still
    /// present; a record whose blob is gone counts as a miss. A missing
    /// snapshot does not: it is unpacked from the blob when a step needs it.
    pub fn cache_lookup(&self, key: &Digest) -> Result<Option<CacheRecord>, StoreError> {
        let path = self.cache_path(key);
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

    /// Records what the step with `key` produced.
    pub fn cache_store(&self, key: &Digest, record: &CacheRecord) -> Result<(), StoreError> {
        self.write_json(&self.cache_path(key), record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
                    media_type: crate::oci::MEDIA_LAYER_GZIP.into(),
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
