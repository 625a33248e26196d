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
use crate::digest::HashingWriter;
use crate::image;
use crate::layer::compress::decompress;
use crate::oci::{
    Descriptor, ImageConfig, MEDIA_LAYER_GZIP, MEDIA_LAYER_TAR, MEDIA_LAYER_ZSTD, Platform,
};
use crate::{Digest, Store, StoreError, tags::normalize};
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
            os_version: None,
            unknown: Default::default(),
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
            .filter(|n| match crate::images::validate_name(n) {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(name = %n, error = %e, "loading an image without its invalid name");
                    false
                }
            })
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
        artifact_type: None,
        unknown: Default::default(),
        urls: None,
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

#[cfg(test)]
mod tests {
    use super::super::{ArchiveError, load as load_archive};
    use crate::oci::{MEDIA_LAYER_GZIP, MEDIA_LAYER_TAR};
    use crate::{Digest, Store};
    use std::io::Write;

    /// A one-file layer tar.
    fn layer_tar(content: &[u8]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_ustar();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        builder.append_data(&mut header, "file", content).unwrap();
        builder.into_inner().unwrap()
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(bytes).unwrap();
        gz.finish().unwrap()
    }

    /// A docker archive of one image whose config names `diff_ids`, with the
    /// layer files given (name, bytes), as gzip-compressed tar as a whole.
    fn archive(diff_ids: &[Digest], layers: &[(&str, Vec<u8>)]) -> (Vec<u8>, Digest) {
        let config = serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "unknown_field_kept": true,
        })
        .to_string();
        let manifest = serde_json::json!([{
            "Config": "cfg.json",
            "RepoTags": ["example.com/app:1"],
            "Layers": layers.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        }])
        .to_string();
        let mut builder = tar::Builder::new(Vec::new());
        let mut files: Vec<(&str, Vec<u8>)> = vec![
            ("manifest.json", manifest.into_bytes()),
            ("cfg.json", config.clone().into_bytes()),
        ];
        files.extend(layers.iter().cloned());
        for (name, bytes) in files {
            let mut header = tar::Header::new_ustar();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            builder.append_data(&mut header, name, &bytes[..]).unwrap();
        }
        (
            gzip(&builder.into_inner().unwrap()),
            Digest::of(config.as_bytes()),
        )
    }

    #[test]
    fn gzip_and_plain_layers_load_with_the_config_kept_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (one, two) = (layer_tar(b"one"), layer_tar(b"two"));
        let ids = [Digest::of(&one), Digest::of(&two)];
        let (bytes, config) = archive(&ids, &[("a/layer.tar", gzip(&one)), ("b.tar", two)]);
        let loaded = load_archive(&store, &bytes[..]).unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].names, vec!["example.com/app:1".to_string()]);
        assert_eq!(loaded[0].id, config);
        let image = crate::image::load(&store, "example.com/app:1").unwrap();
        assert_eq!(image.manifest.config.digest, config);
        let media: Vec<&str> = image
            .manifest
            .layers
            .iter()
            .map(|l| l.media_type.as_str())
            .collect();
        assert_eq!(media, vec![MEDIA_LAYER_GZIP, MEDIA_LAYER_TAR]);
        assert_eq!(image.manifest.layers[1].digest, ids[1]);
        // Nothing of the staging is left.
        assert_eq!(std::fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
    }

    #[test]
    fn a_layer_that_does_not_match_its_diff_id_is_refused_and_nothing_is_tagged() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let layer = layer_tar(b"real");
        let claimed = Digest::of(b"something else");
        for file in [gzip(&layer), layer.clone()] {
            let (bytes, _) = archive(std::slice::from_ref(&claimed), &[("l.tar", file)]);
            let err = load_archive(&store, &bytes[..]).unwrap_err();
            assert!(
                matches!(&err, ArchiveError::DiffId { expected, .. } if *expected == claimed),
                "{err}"
            );
            assert!(store.read_index().unwrap().manifests.is_empty());
            assert_eq!(std::fs::read_dir(store.tmp_dir()).unwrap().count(), 0);
        }
        // A wrong number of layers is refused too.
        let (bytes, _) = archive(&[], &[("l.tar", layer)]);
        assert!(matches!(
            load_archive(&store, &bytes[..]),
            Err(ArchiveError::LayerCount { .. })
        ));
        // An archive from before docker 1.10 says so.
        let mut legacy = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_ustar();
        header.set_size(2);
        header.set_mode(0o644);
        legacy
            .append_data(&mut header, "repositories", &b"{}"[..])
            .unwrap();
        let legacy = legacy.into_inner().unwrap();
        assert!(matches!(
            load_archive(&store, &legacy[..]),
            Err(ArchiveError::LegacyDocker)
        ));
        // And a tar that is neither format.
        let empty = tar::Builder::new(Vec::new()).into_inner().unwrap();
        assert!(matches!(
            load_archive(&store, &empty[..]),
            Err(ArchiveError::UnknownFormat)
        ));
    }
}
