//! Reading image archives into the store (`berth load`): OCI image layouts
//! as tars (`oci-archive`, what `podman save --format oci-archive`,
//! `skopeo copy oci-archive:` and `docker save` since 25 write) and Docker
//! archives (`manifest.json` with uncompressed or gzip layers, in the
//! layouts of `docker save` before and after 25, `podman save` and berth).
//!
//! The archive (optionally gzip or zstd compressed as a whole) is unpacked
//! into a staging directory under the store's `tmp/`, then every blob is
//! hashed and moved into the store; nothing is tagged until all the blobs
//! of an image are in, and the whole load holds a lease, so a concurrent
//! prune never removes a blob before its tag exists. A failed load leaves
//! only its staging directory, which is removed.

mod docker;
mod oci;
mod staging;

use crate::image::ImageError;
use crate::oci::Descriptor;
use crate::{Digest, Store, StoreError, tmp};
use staging::Staging;
use std::io::{self, Read};
use std::path::PathBuf;

/// Errors reading an archive.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing an image failed.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// Reading the archive failed.
    #[error("reading the archive")]
    Read(#[source] io::Error),
    /// Unpacking an entry failed.
    #[error("unpacking {} from the archive", path.display())]
    Unpack {
        /// The staging path.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// An entry has an unsafe path.
    #[error("the archive has an entry outside its root: '{0}'")]
    Escape(String),
    /// A Docker archive from before docker 1.10, without `manifest.json`.
    #[error(
        "the archive is a docker archive without manifest.json (docker before 1.10), which berth cannot read\nhint: save the image again with a current docker, podman or skopeo"
    )]
    LegacyDocker,
    /// Neither an OCI layout nor a Docker archive.
    #[error(
        "the archive is neither an OCI image layout (index.json) nor a docker archive (manifest.json)"
    )]
    UnknownFormat,
    /// A file the archive's index names is not in it.
    #[error("the archive names '{0}' but does not contain it")]
    Missing(String),
    /// A JSON document of the archive does not parse.
    #[error("{name} in the archive is not valid")]
    Document {
        /// The file.
        name: String,
        /// The parse error.
        source: serde_json::Error,
    },
    /// A layer does not match the diffID its config gives.
    #[error(
        "layer {layer} of the archive has diffID {actual}, but the image config says {expected}"
    )]
    DiffId {
        /// The layer's file in the archive.
        layer: String,
        /// The config's diffID.
        expected: Digest,
        /// The layer's.
        actual: Digest,
    },
    /// An image's layers and config disagree in number.
    #[error(
        "image {config} in the archive has {layers} layers but {diff_ids} diffIDs in its config"
    )]
    LayerCount {
        /// The config file.
        config: String,
        /// Layers listed.
        layers: usize,
        /// DiffIDs in the config.
        diff_ids: usize,
    },
}

/// One image the archive held, now in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedImage {
    /// The names it was tagged with (none: it is in the store untagged).
    pub names: Vec<String>,
    /// The descriptor now in `index.json`.
    pub descriptor: Descriptor,
    /// The image ID (config digest).
    pub id: Digest,
}

/// Loads every image of the archive `input` into the store.
pub fn load(store: &Store, input: impl Read) -> Result<Vec<LoadedImage>, ArchiveError> {
    let _lease = store.lease()?;
    let staging = Staging::unpack(&tmp::fresh(&store.tmp_dir(), "load"), input)?;
    if staging.has("index.json") {
        oci::load(store, &staging)
    } else if staging.has("manifest.json") {
        docker::load(store, &staging)
    } else if staging.has("repositories") {
        Err(ArchiveError::LegacyDocker)
    } else {
        Err(ArchiveError::UnknownFormat)
    }
}

/// Parses a JSON file of the archive.
fn parse<T: serde::de::DeserializeOwned>(staging: &Staging, name: &str) -> Result<T, ArchiveError> {
    let bytes = staging.read(name)?;
    serde_json::from_slice(&bytes).map_err(|source| ArchiveError::Document {
        name: name.to_string(),
        source,
    })
}

/// Records `descriptor` in the store under `names`, or untagged when there
/// are none (an entry without a name, kept once).
pub(crate) fn name_image(
    store: &Store,
    descriptor: &Descriptor,
    names: &[String],
) -> Result<(), StoreError> {
    for name in names {
        store.tag(name, descriptor)?;
    }
    if names.is_empty() {
        store.edit_index(|entries| {
            if entries.iter().any(|d| d.digest == descriptor.digest) {
                return false;
            }
            entries.push(descriptor.clone());
            true
        })?;
    }
    Ok(())
}
