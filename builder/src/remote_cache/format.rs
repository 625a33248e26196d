//! The remote cache document: an OCI image manifest whose config has
//! berth's own media type and lists the cache records, and whose layers are
//! the records' layer blobs. docs/build-cache.md describes it for readers
//! outside the code.

use crate::cache::{CacheRecord, LayerRecord};
use crate::engine::key;
use berth_store::Digest;
use berth_store::oci::{Descriptor, MEDIA_MANIFEST, Manifest};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The media type of the cache config blob.
pub const MEDIA_CACHE_CONFIG: &str = "application/vnd.berth.build-cache.config.v1+json";

/// The config blob: which records the cache holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheConfig {
    /// The key version the records were made with ([`key::VERSION`]).
    pub key_version: String,
    /// The uncompressed digest of each of the manifest's layers, in order.
    #[serde(rename = "diffIDs")]
    pub diff_ids: Vec<Digest>,
    /// The records, sorted by key.
    pub records: Vec<RecordEntry>,
}

/// One cache record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordEntry {
    /// The step's cache key.
    pub key: Digest,
    /// The index of its layer in the manifest's layers; absent when the
    /// step changed nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<usize>,
    /// When the step first ran (RFC 3339), for its history entry.
    pub created: String,
}

/// The documents of a cache, ready to be stored: its config bytes, the
/// manifest (with the config's descriptor) and its bytes.
#[derive(Debug, Clone)]
pub struct Encoded {
    /// The config blob.
    pub config: Vec<u8>,
    /// The manifest.
    pub manifest: Manifest,
    /// The manifest's bytes.
    pub manifest_bytes: Vec<u8>,
}

/// Encodes `records` (the first record of a key wins). The output depends
/// only on the records, so exporting an unchanged cache gives the same digest.
pub fn encode(records: &[(Digest, CacheRecord)]) -> Result<Encoded, serde_json::Error> {
    let mut by_key: BTreeMap<&Digest, &CacheRecord> = BTreeMap::new();
    for (key, record) in records {
        by_key.entry(key).or_insert(record);
    }
    let mut layers: Vec<Descriptor> = Vec::new();
    let mut diff_ids = Vec::new();
    let mut entries = Vec::new();
    for (key, record) in by_key {
        let layer = record.layer.as_ref().map(|l| {
            match layers.iter().position(|d| d.digest == l.descriptor.digest) {
                Some(i) => i,
                None => {
                    layers.push(plain(&l.descriptor));
                    diff_ids.push(l.diff_id.clone());
                    layers.len() - 1
                }
            }
        });
        entries.push(RecordEntry {
            key: key.clone(),
            layer,
            created: record.created.clone(),
        });
    }
    let config = serde_json::to_vec(&CacheConfig {
        key_version: key::VERSION.to_string(),
        diff_ids,
        records: entries,
    })?;
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(MEDIA_MANIFEST.to_string()),
        config: Descriptor {
            artifact_type: None,
            unknown: Default::default(),
            urls: None,
            media_type: MEDIA_CACHE_CONFIG.to_string(),
            digest: Digest::of(&config),
            size: config.len() as u64,
            annotations: BTreeMap::new(),
            platform: None,
        },
        layers,
        annotations: BTreeMap::new(),
    };
    let manifest_bytes = serde_json::to_vec(&manifest)?;
    Ok(Encoded {
        config,
        manifest,
        manifest_bytes,
    })
}

/// A descriptor without the annotations or platform a record may carry.
fn plain(descriptor: &Descriptor) -> Descriptor {
    Descriptor {
        artifact_type: None,
        unknown: Default::default(),
        urls: None,
        media_type: descriptor.media_type.clone(),
        digest: descriptor.digest.clone(),
        size: descriptor.size,
        annotations: BTreeMap::new(),
        platform: None,
    }
}

/// Decodes a cache from its manifest's layers and its config bytes into
/// records by key. The reason it cannot be used is returned as an error.
pub fn decode(
    layers: &[Descriptor],
    config: &[u8],
) -> Result<BTreeMap<Digest, CacheRecord>, String> {
    let config: CacheConfig =
        serde_json::from_slice(config).map_err(|e| format!("its config does not parse: {e}"))?;
    if config.key_version != key::VERSION {
        return Err(format!(
            "it was written with cache keys '{}', and this berth uses '{}'",
            config.key_version,
            key::VERSION
        ));
    }
    if config.diff_ids.len() != layers.len() {
        return Err(format!(
            "its config lists {} diffIDs for {} layers",
            config.diff_ids.len(),
            layers.len()
        ));
    }
    let mut records = BTreeMap::new();
    for entry in config.records {
        let layer = match entry.layer {
            None => None,
            Some(i) => {
                let (Some(descriptor), Some(diff_id)) = (layers.get(i), config.diff_ids.get(i))
                else {
                    return Err(format!(
                        "record {} names layer {i}, and there are {}",
                        entry.key,
                        layers.len()
                    ));
                };
                Some(LayerRecord {
                    descriptor: plain(descriptor),
                    diff_id: diff_id.clone(),
                })
            }
        };
        records.entry(entry.key).or_insert(CacheRecord {
            layer,
            created: entry.created,
        });
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_store::oci::MEDIA_LAYER_GZIP;

    fn record(layer: Option<&[u8]>) -> CacheRecord {
        CacheRecord {
            layer: layer.map(|bytes| LayerRecord {
                descriptor: Descriptor {
                    artifact_type: None,
                    unknown: Default::default(),
                    urls: None,
                    media_type: MEDIA_LAYER_GZIP.into(),
                    digest: Digest::of(bytes),
                    size: bytes.len() as u64,
                    annotations: BTreeMap::new(),
                    platform: None,
                },
                diff_id: Digest::of(&[bytes, b"-tar"].concat()),
            }),
            created: "2024-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn records_round_trip_and_shared_layers_are_listed_once() {
        let records = vec![
            (Digest::of(b"b"), record(Some(b"layer one"))),
            (Digest::of(b"a"), record(None)),
            (Digest::of(b"c"), record(Some(b"layer one"))),
            (Digest::of(b"d"), record(Some(b"layer two"))),
        ];
        let encoded = encode(&records).unwrap();
        assert_eq!(encoded.manifest.layers.len(), 2);
        assert_eq!(encoded.manifest.config.media_type, MEDIA_CACHE_CONFIG);
        assert_eq!(encoded.manifest.config.digest, Digest::of(&encoded.config));
        let decoded = decode(&encoded.manifest.layers, &encoded.config).unwrap();
        assert_eq!(decoded.len(), 4);
        for (key, record) in &records {
            assert_eq!(decoded.get(key), Some(record));
        }
        // The order records come in does not change the documents.
        let mut reversed = records.clone();
        reversed.reverse();
        assert_eq!(
            encode(&reversed).unwrap().manifest_bytes,
            encoded.manifest_bytes
        );
    }

    #[test]
    fn foreign_or_inconsistent_caches_are_refused() {
        let encoded = encode(&[(Digest::of(b"k"), record(Some(b"l")))]).unwrap();
        let other_version = String::from_utf8(encoded.config.clone())
            .unwrap()
            .replace(key::VERSION, "berth-cache-v0");
        let cases: [(&[Descriptor], &[u8], &str); 3] = [
            (&encoded.manifest.layers, b"{}", "does not parse"),
            (
                &encoded.manifest.layers,
                other_version.as_bytes(),
                "berth-cache-v0",
            ),
            (&[], &encoded.config, "1 diffIDs for 0 layers"),
        ];
        for (layers, config, expected) in cases {
            let error = decode(layers, config).unwrap_err();
            assert!(error.contains(expected), "{error}");
        }
    }
}
