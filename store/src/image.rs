//! Images in the local store: reading a tagged image's manifest and config,
//! writing a finished image, and importing a root filesystem directory as a
//! one-layer image (how tests and the demo make their busybox base).

use crate::layer::LayerRecord;
use crate::layer::scan::{TreeKind, scan_tree};
use crate::layer::{Compression, LayerError, WriteOptions, extract, write_layer};
use crate::oci::{
    Descriptor, History, ImageConfig, MEDIA_CONFIG, MEDIA_MANIFEST, Manifest, Platform, RootFs,
    rfc3339,
};
use crate::{Digest, Store, StoreError};
use std::path::Path;

/// Errors reading, writing or importing images.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A document in the store did not parse.
    #[error("image document {digest} in the local store does not parse")]
    Document {
        /// The blob.
        digest: Digest,
        /// The parse error.
        source: serde_json::Error,
    },
    /// The image is not a single-platform OCI or Docker image.
    #[error("image '{name}' has media type {media_type}, which berth cannot build on")]
    Unsupported {
        /// The image name.
        name: String,
        /// Its media type.
        media_type: String,
    },
    /// Writing the layer failed.
    #[error(transparent)]
    Layer(#[from] LayerError),
    /// Scanning the directory failed.
    #[error(transparent)]
    Scan(#[from] crate::layer::scan::ScanError),
    /// Unpacking a layer failed.
    #[error(transparent)]
    Extract(#[from] extract::ExtractError),
    /// Reading an imported tar stream failed.
    #[error("reading the tar stream of '{source_name}'")]
    ReadTar {
        /// The file, `-` or URL the stream comes from.
        source_name: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// An image loaded from the store.
#[derive(Debug, Clone)]
pub struct StoredImage {
    /// The manifest descriptor (its digest pins the image).
    pub descriptor: Descriptor,
    /// The manifest.
    pub manifest: Manifest,
    /// The configuration.
    pub config: ImageConfig,
}

impl StoredImage {
    /// The layers with their diffIDs, base first.
    pub fn layers(&self) -> Vec<LayerRecord> {
        self.manifest
            .layers
            .iter()
            .zip(&self.config.rootfs.diff_ids)
            .map(|(d, id)| LayerRecord {
                descriptor: d.clone(),
                diff_id: id.clone(),
            })
            .collect()
    }
}

fn parse<T: serde::de::DeserializeOwned>(digest: &Digest, bytes: &[u8]) -> Result<T, ImageError> {
    serde_json::from_slice(bytes).map_err(|source| ImageError::Document {
        digest: digest.clone(),
        source,
    })
}

/// Loads the image tagged `name`.
pub fn load(store: &Store, name: &str) -> Result<StoredImage, ImageError> {
    let descriptor = store.resolve_tag(name)?;
    load_descriptor(store, name, descriptor)
}

/// Loads the image a manifest descriptor points at.
pub fn load_descriptor(
    store: &Store,
    name: &str,
    descriptor: Descriptor,
) -> Result<StoredImage, ImageError> {
    let docker_manifest = "application/vnd.docker.distribution.manifest.v2+json";
    if descriptor.media_type != MEDIA_MANIFEST && descriptor.media_type != docker_manifest {
        return Err(ImageError::Unsupported {
            name: name.to_string(),
            media_type: descriptor.media_type,
        });
    }
    let bytes = store.blobs().read(&descriptor.digest)?;
    let manifest: Manifest = parse(&descriptor.digest, &bytes)?;
    let config_bytes = store.blobs().read(&manifest.config.digest)?;
    let config: ImageConfig = parse(&manifest.config.digest, &config_bytes)?;
    Ok(StoredImage {
        descriptor,
        manifest,
        config,
    })
}

/// Writes `config` and a manifest for `layers` into the store; returns the
/// manifest descriptor (with its platform).
pub fn write(
    store: &Store,
    config: &ImageConfig,
    layers: &[LayerRecord],
) -> Result<Descriptor, ImageError> {
    let config_bytes = serde_json::to_vec(config).map_err(|source| ImageError::Document {
        digest: Digest::of(b""),
        source,
    })?;
    let config_digest = store.blobs().put(&config_bytes)?;
    let layers: Vec<Descriptor> = layers.iter().map(|l| l.descriptor.clone()).collect();
    let platform = Platform {
        os_version: None,
        unknown: Default::default(),
        architecture: config.architecture.clone(),
        os: config.os.clone(),
        variant: config.variant.clone(),
    };
    write_manifest(
        store,
        (config_digest, config_bytes.len() as u64),
        layers,
        platform,
    )
}

/// Writes an OCI manifest for a config blob already in the store (its
/// digest and size) and `layers`; returns the manifest descriptor.
pub fn write_manifest(
    store: &Store,
    (config_digest, config_size): (Digest, u64),
    layers: Vec<Descriptor>,
    platform: Platform,
) -> Result<Descriptor, ImageError> {
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(MEDIA_MANIFEST.to_string()),
        config: Descriptor {
            artifact_type: None,
            unknown: Default::default(),
            urls: None,
            media_type: MEDIA_CONFIG.to_string(),
            digest: config_digest,
            size: config_size,
            annotations: Default::default(),
            platform: None,
        },
        layers,
        annotations: Default::default(),
    };
    let manifest_bytes = serde_json::to_vec(&manifest).map_err(|source| ImageError::Document {
        digest: Digest::of(b""),
        source,
    })?;
    let digest = store.blobs().put(&manifest_bytes)?;
    Ok(Descriptor {
        artifact_type: None,
        unknown: Default::default(),
        urls: None,
        media_type: MEDIA_MANIFEST.to_string(),
        digest,
        size: manifest_bytes.len() as u64,
        annotations: Default::default(),
        platform: Some(platform),
    })
}

/// The architecture name OCI uses for the machine berth runs on.
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// Imports the directory `rootfs` as a one-layer image tagged `name`, with
/// `cmd` as its default command. The layer is also unpacked as a snapshot.
pub fn import_rootfs(
    store: &Store,
    rootfs: &Path,
    name: &str,
    cmd: &[&str],
    created: i64,
) -> Result<Descriptor, ImageError> {
    // The lease keeps `rmi` and `prune` from removing the new blobs before
    // the tag names them.
    let _lease = store.lease()?;
    let entries = scan_tree(rootfs, TreeKind::Plain)?;
    let layer = write_layer(
        store.blobs(),
        entries,
        WriteOptions {
            compression: Compression::Gzip,
            source_date_epoch: Some(created),
        },
    )?;
    extract::ensure_snapshot(store, &layer.descriptor.digest, &layer.diff_id)?;
    let mut config = ImageConfig {
        created: Some(rfc3339(created)),
        architecture: host_architecture().to_string(),
        os: "linux".to_string(),
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: vec![layer.diff_id.clone()],
        },
        history: vec![History {
            created: Some(rfc3339(created)),
            created_by: Some(format!("berth import {}", rootfs.display())),
            ..Default::default()
        }],
        ..Default::default()
    };
    config.config.env =
        vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string()];
    if !cmd.is_empty() {
        config.config.cmd = Some(cmd.iter().map(|s| s.to_string()).collect());
    }
    let descriptor = write(store, &config, &[layer])?;
    store.tag(name, &descriptor)?;
    Ok(descriptor)
}

/// Imports a tar stream (plain, gzip or zstd) as a one-layer image: the
/// stream is stored as one gzip layer, unpacked into its snapshot (which
/// checks every entry as any untrusted layer is checked), and `config` gets
/// its diffID. The image is tagged `name`, or kept untagged. `source_name`
/// names the stream in errors.
pub fn import_tar(
    store: &Store,
    reader: impl std::io::Read,
    source_name: &str,
    mut config: ImageConfig,
    name: Option<&str>,
) -> Result<Descriptor, ImageError> {
    use std::io::Write as _;
    let read_err = |source| ImageError::ReadTar {
        source_name: source_name.to_string(),
        source,
    };
    let _lease = store.lease()?;
    let mut input =
        crate::layer::compress::decompress(std::io::BufReader::new(reader)).map_err(read_err)?;
    let blob = store.blobs().writer()?;
    let compressor =
        crate::layer::compress::Compressor::new(Compression::Gzip, blob).map_err(read_err)?;
    let mut hashing = crate::digest::HashingWriter::new(compressor);
    std::io::copy(&mut input, &mut hashing).map_err(read_err)?;
    hashing.flush().map_err(read_err)?;
    let (compressor, diff_id, _) = hashing.finish();
    let (digest, size) = compressor.finish().map_err(read_err)?.commit()?;
    let layer = LayerRecord {
        descriptor: Descriptor {
            artifact_type: None,
            unknown: Default::default(),
            urls: None,
            media_type: Compression::Gzip.media_type().to_string(),
            digest,
            size,
            annotations: Default::default(),
            platform: None,
        },
        diff_id,
    };
    extract::ensure_snapshot(store, &layer.descriptor.digest, &layer.diff_id)?;
    config.rootfs = RootFs {
        kind: "layers".into(),
        diff_ids: vec![layer.diff_id.clone()],
    };
    let descriptor = write(store, &config, &[layer])?;
    match name {
        Some(name) => store.tag(name, &descriptor)?,
        None => crate::archive::name_image(store, &descriptor, &[])?,
    }
    Ok(descriptor)
}
