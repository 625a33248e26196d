//! Build caches shared beyond one machine: `berth build --cache-to` writes
//! the cache records of a build as a plain OCI artifact (an image manifest
//! whose config lists the records, with the records' layers as its layers)
//! to a registry or an OCI layout directory, and `--cache-from` reads them
//! back on another machine.
//!
//! An import reads only the manifest and the config. The engine asks the
//! [`Import`] for every key its store misses ([`RecordSource`]) and fetches
//! a record's layer only when the layer is read: by a later step that runs
//! on top of it, or when the image is written. A source that cannot be read
//! is a warning, as in BuildKit: the build goes on without it. An export
//! that fails fails the build (unless `ignore-error=true`).
//!
//! - [`spec`]: the `--cache-from`/`--cache-to` syntax;
//! - [`format`]: the cache manifest and config;
//! - `registry`, `local`: the two places a cache can live.

pub mod format;
mod local;
mod registry;
pub mod spec;

use crate::cache::CacheRecord;
use crate::engine::CacheRecords;
use crate::engine::imported::{FetchError, RecordSource};
use berth_store::oci::Descriptor;
use berth_store::{Digest, Store};
use local::LocalEnd;
use registry::RegistryEnd;
pub use spec::{ExportSpec, ImportSpec, Location, Mode, SpecError};
use std::collections::BTreeMap;
use std::sync::Mutex;

/// Errors reading or writing a remote cache.
#[derive(Debug, thiserror::Error)]
pub enum RemoteCacheError {
    /// The registry or directory could not be read or written.
    #[error("{action} the build cache {location}: {message}")]
    Transfer {
        /// `reading`, `writing`, `fetching layers from`…
        action: &'static str,
        /// The reference or directory.
        location: String,
        /// What went wrong.
        message: String,
    },
    /// What is there is not a berth build cache this berth can use.
    #[error("{location} is not a usable berth build cache: {reason}")]
    Format {
        /// The reference or directory.
        location: String,
        /// Why.
        reason: String,
    },
    /// A layer an export needs is nowhere to be found.
    #[error(
        "exporting the build cache to {location}: layer {digest} is neither in the local store nor in an imported cache\nhint: build once without --cache-from, or export with mode=min"
    )]
    MissingLayer {
        /// The destination.
        location: String,
        /// The layer blob.
        digest: Digest,
    },
    /// Writing a cache into a local directory (an OCI layout) failed.
    #[error("writing the build cache to {location}")]
    Export {
        /// The directory.
        location: String,
        /// The layout's error.
        source: berth_store::StoreError,
    },
    /// Storing something locally failed.
    #[error("storing the build cache {location} in the local store")]
    Store {
        /// The reference or directory.
        location: String,
        /// The store's error.
        source: berth_store::StoreError,
    },
}

/// The place a cache lives, ready for transfers.
enum End {
    Registry(RegistryEnd),
    Local(LocalEnd),
}

impl End {
    fn open(store: &Store, location: &Location) -> Result<End, RemoteCacheError> {
        Ok(match location {
            Location::Registry { reference } => End::Registry(RegistryEnd::open(store, reference)?),
            Location::Local { dir, tag } => End::Local(LocalEnd::new(dir, tag)),
        })
    }

    fn read(&self, store: &Store) -> Result<(Vec<Descriptor>, Vec<u8>), RemoteCacheError> {
        match self {
            End::Registry(end) => end.read(store),
            End::Local(end) => end.read(),
        }
    }

    fn fetch(&self, store: &Store, blobs: &[Descriptor]) -> Result<(), RemoteCacheError> {
        match self {
            End::Registry(end) => end.fetch(store, blobs),
            End::Local(end) => end.fetch(store, blobs),
        }
    }
}

/// A `--cache-from` source that could not be used, and why.
#[derive(Debug)]
pub struct ImportWarning {
    /// The source.
    pub location: Location,
    /// Why it is not used.
    pub error: RemoteCacheError,
}

impl std::fmt::Display for ImportWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "--cache-from {}: not used: {}",
            self.location, self.error
        )
    }
}

/// The records of the `--cache-from` sources, and where their layers are.
pub struct Import {
    sources: Vec<(Location, End)>,
    /// Records by key (the first source that has a key wins), with the index
    /// of that source.
    records: BTreeMap<Digest, CacheRecord>,
    /// The source of each layer blob.
    blob_sources: BTreeMap<Digest, usize>,
    /// One fetch at a time, so two stages never download the same blob twice.
    fetching: Mutex<()>,
}

impl Import {
    /// Reads the manifest and config of every source. Sources that cannot
    /// be read come back as warnings.
    pub fn open(store: &Store, specs: &[ImportSpec]) -> (Import, Vec<ImportWarning>) {
        let mut import = Import {
            sources: Vec::new(),
            records: BTreeMap::new(),
            blob_sources: BTreeMap::new(),
            fetching: Mutex::new(()),
        };
        let mut warnings = Vec::new();
        for spec in specs {
            let read = End::open(store, &spec.location).and_then(|end| {
                let (layers, config) = end.read(store)?;
                let records = format::decode(&layers, &config).map_err(|reason| {
                    RemoteCacheError::Format {
                        location: spec.location.to_string(),
                        reason,
                    }
                })?;
                Ok((end, records))
            });
            match read {
                Ok((end, records)) => {
                    let index = import.sources.len();
                    tracing::info!(source = %spec.location, records = records.len(), "build cache imported");
                    for (key, record) in records {
                        if let Some(layer) = &record.layer {
                            import
                                .blob_sources
                                .entry(layer.descriptor.digest.clone())
                                .or_insert(index);
                        }
                        import.records.entry(key).or_insert(record);
                    }
                    import.sources.push((spec.location.clone(), end));
                }
                Err(error) => warnings.push(ImportWarning {
                    location: spec.location.clone(),
                    error,
                }),
            }
        }
        (import, warnings)
    }

    /// How many records the sources hold together.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no source had a record.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Repositories of imported registry caches on `registry`, which an
    /// export to that registry can mount blobs from.
    fn repositories_on(&self, registry: &str) -> Vec<String> {
        self.sources
            .iter()
            .filter_map(|(_, end)| match end {
                End::Registry(end) if end.registry() == registry => {
                    Some(end.repository().to_string())
                }
                _ => None,
            })
            .collect()
    }

    /// Fetches `blobs` (those the store lacks) from the sources that list them.
    fn fetch(&self, store: &Store, blobs: &[Descriptor]) -> Result<(), RemoteCacheError> {
        let _one_at_a_time = self.fetching.lock().unwrap_or_else(|e| e.into_inner());
        let mut by_source: BTreeMap<usize, Vec<Descriptor>> = BTreeMap::new();
        for blob in blobs {
            if store.blobs().contains(&blob.digest) {
                continue;
            }
            let Some(source) = self.blob_sources.get(&blob.digest) else {
                return Err(RemoteCacheError::Format {
                    location: "--cache-from".into(),
                    reason: format!("no imported cache lists layer {}", blob.digest),
                });
            };
            by_source.entry(*source).or_default().push(blob.clone());
        }
        for (source, wanted) in by_source {
            if let Some((location, end)) = self.sources.get(source) {
                tracing::info!(source = %location, layers = wanted.len(), "fetching cached layers");
                end.fetch(store, &wanted)?;
            }
        }
        Ok(())
    }
}

impl RecordSource for Import {
    fn lookup(&self, key: &Digest) -> Option<CacheRecord> {
        self.records.get(key).cloned()
    }

    fn fetch_blobs(&self, store: &Store, blobs: &[Descriptor]) -> Result<(), FetchError> {
        Ok(self.fetch(store, blobs)?)
    }
}

/// What an export wrote.
#[derive(Debug, Clone)]
pub struct ExportReport {
    /// The cache manifest's digest.
    pub digest: Digest,
    /// Records written.
    pub records: usize,
    /// Layers the cache lists.
    pub layers: usize,
}

/// Writes the records `spec.mode` selects to `spec.location`. Layers the
/// store lacks (hits of `import` never fetched) are fetched first, unless
/// the destination already has them.
pub fn export(
    store: &Store,
    records: &CacheRecords,
    spec: &ExportSpec,
    import: Option<&Import>,
) -> Result<ExportReport, RemoteCacheError> {
    let location = spec.location.to_string();
    let chosen = match spec.mode {
        Mode::Min => &records.image,
        Mode::Max => &records.all,
    };
    let encoded = format::encode(chosen).map_err(|e| RemoteCacheError::Format {
        location: location.clone(),
        reason: format!("encoding the cache config: {e}"),
    })?;
    let store_err = |source| RemoteCacheError::Store {
        location: location.clone(),
        source,
    };
    store.blobs().put(&encoded.config).map_err(store_err)?;
    let end = End::open(store, &spec.location)?;
    let not_here: Vec<Descriptor> = encoded
        .manifest
        .layers
        .iter()
        .filter(|l| !store.blobs().contains(&l.digest))
        .cloned()
        .collect();
    let needed = match &end {
        End::Registry(end) if !not_here.is_empty() => end.missing(&not_here)?,
        End::Registry(_) => Vec::new(),
        End::Local(end) => end.missing(&not_here),
    };
    if let Some(first) = needed.first() {
        match import {
            Some(import) => import.fetch(store, &needed)?,
            None => {
                return Err(RemoteCacheError::MissingLayer {
                    location,
                    digest: first.digest.clone(),
                });
            }
        }
    }
    match &end {
        End::Registry(end) => {
            let mount_from = import
                .map(|i| i.repositories_on(end.registry()))
                .unwrap_or_default();
            end.write(store, &encoded, &mount_from)?;
        }
        End::Local(end) => end.write(store, &encoded)?,
    }
    Ok(ExportReport {
        digest: Digest::of(&encoded.manifest_bytes),
        records: chosen.len(),
        layers: encoded.manifest.layers.len(),
    })
}
