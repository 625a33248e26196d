//! Loading a Docker archive: `manifest.json` lists each image's config file,
//! its names (`RepoTags`) and its layer files, which may be uncompressed
//! tars (docker, podman) or gzip (some tools), named `<id>/layer.tar`
//! (docker before 25, with symlinks for repeated layers), `<hex>.tar`
//! (podman) or `blobs/sha256/<hex>` (docker 25, berth).
//!
//! The config is kept byte for byte, so the image ID stays the same; each
//! layer must hash (uncompressed) to the diffID its config gives, and is
//! stored as it came: an uncompressed layer as an OCI `tar` layer (its
//! digest is its diffID), a compressed one as is.

use super::staging::Staging;
use super::{ArchiveError, LoadedImage, name_image, parse};
use crate::image;
use crate::layer::compress::decompress;
use crate::oci::{
    Descriptor, ImageConfig, MEDIA_LAYER_GZIP, MEDIA_LAYER_TAR, MEDIA_LAYER_ZSTD, Platform,
};
use crate::store::digest::HashingWriter;
use crate::store::{Digest, Store, StoreError, tags::normalize};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader};

/// One image of `manifest.json`.
#[derive(Debug, Deserialize)]
struct Entry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

/// Loads the archive's images.
pub fn load(store: &Store, staging: &Staging) -> Result<Vec<LoadedImage>, ArchiveError> {
    let entries: Vec<Entry> = parse(staging, "manifest.json")?;
    let mut layers_done: BTreeMap<Digest, Descriptor> = BTreeMap::new();
    let mut loaded = Vec::new();
    for entry in entries {
        let config_bytes = staging.read(&entry.config)?;
        let config: ImageConfig =
            serde_json::from_slice(&config_bytes).map_err(|source| ArchiveError::Document {
                name: entry.config.clone(),
                source,
            })?;
        let diff_ids = &config.rootfs.diff_ids;
        if diff_ids.len() != entry.layers.len() {
            return Err(ArchiveError::LayerCount {
                config: entry.config.clone(),
                layers: entry.layers.len(),
                diff_ids: diff_ids.len(),
            });
        }
        let mut layers = Vec::new();
        for (file, diff_id) in entry.layers.iter().zip(diff_ids) {
            let descriptor = match layers_done.get(diff_id) {
                Some(done) => done.clone(),
                None => import_layer(store, staging, file, diff_id)?,
            };
            layers_done.insert(diff_id.clone(), descriptor.clone());
            layers.push(descriptor);
        }
        let config_digest = store.blobs().put(&config_bytes)?;
        let platform = Platform {
            architecture: config.architecture.clone(),
            os: config.os.clone(),
            variant: config.variant.clone(),
        };
        let descriptor = image::write_manifest(
            store,
            (config_digest.clone(), config_bytes.len() as u64),
            layers,
            platform,
        )?;
        let names: Vec<String> = entry
            .repo_tags
            .unwrap_or_default()
            .iter()
            .map(|n| normalize(n))
            .collect();
        name_image(store, &descriptor, &names)?;
        loaded.push(LoadedImage {
            names,
            descriptor,
            id: config_digest,
        });
    }
    Ok(loaded)
}

/// Moves one layer file into the store, checking its diffID.
fn import_layer(
    store: &Store,
    staging: &Staging,
    file: &str,
    diff_id: &Digest,
) -> Result<Descriptor, ArchiveError> {
    let descriptor = |media_type: &str, digest: Digest, size: u64| Descriptor {
        media_type: media_type.to_string(),
        digest,
        size,
        annotations: Default::default(),
        platform: None,
    };
    let path = staging.path(file)?;
    let unpack_err = |source| ArchiveError::Unpack {
        path: path.clone(),
        source,
    };
    let mut reader = BufReader::with_capacity(1 << 20, File::open(&path).map_err(unpack_err)?);
    let head = reader.fill_buf().map_err(unpack_err)?;
    let media_type = if head.starts_with(&[0x1f, 0x8b]) {
        MEDIA_LAYER_GZIP
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        MEDIA_LAYER_ZSTD
    } else {
        MEDIA_LAYER_TAR
    };
    let mismatch = |actual| ArchiveError::DiffId {
        layer: file.to_string(),
        expected: diff_id.clone(),
        actual,
    };
    if media_type == MEDIA_LAYER_TAR {
        drop(reader);
        return match store.blobs().adopt(&path, Some(diff_id)) {
            Ok((digest, size)) => Ok(descriptor(MEDIA_LAYER_TAR, digest, size)),
            Err(StoreError::DigestMismatch { actual, .. }) => Err(mismatch(actual)),
            Err(e) => Err(e.into()),
        };
    }
    let mut hasher = HashingWriter::new(io::sink());
    io::copy(&mut decompress(reader).map_err(unpack_err)?, &mut hasher).map_err(unpack_err)?;
    let (_, actual, _) = hasher.finish();
    if actual != *diff_id {
        return Err(mismatch(actual));
    }
    let (digest, size) = store.blobs().adopt(&path, None)?;
    Ok(descriptor(media_type, digest, size))
}
