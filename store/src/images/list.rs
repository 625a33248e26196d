//! The images of the store, one per manifest (or index) named in `index.json`.

use super::ImagesError;
use crate::image::{self, StoredImage};
use crate::oci::{Descriptor, Index, MEDIA_INDEX};
use crate::{Digest, Store};

/// Docker's manifest list media type.
const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// One image of the store with every name it has.
#[derive(Debug, Clone)]
pub struct LocalImage {
    /// Its names (`repository:tag`), sorted; empty for an untagged image.
    pub names: Vec<String>,
    /// The descriptor `index.json` holds (a manifest or an index), without
    /// its name annotation.
    pub top: Descriptor,
    /// The image itself: the manifest `top` is, or the host's platform of
    /// the index `top` is.
    pub image: StoredImage,
}

impl LocalImage {
    /// The image ID: the config digest.
    pub fn id(&self) -> &Digest {
        &self.image.manifest.config.digest
    }

    /// The bytes the image's blobs take in the store (manifest, config and
    /// compressed layers, each once).
    pub fn size(&self) -> u64 {
        let mut seen = std::collections::BTreeSet::new();
        let mut blobs = vec![&self.image.descriptor, &self.image.manifest.config];
        blobs.extend(self.image.manifest.layers.iter());
        blobs
            .into_iter()
            .filter(|d| seen.insert(&d.digest))
            .map(|d| d.size)
            .sum()
    }
}

/// Every image of the store, ordered by name (untagged ones last). Entries
/// whose documents are missing or unreadable are skipped with a warning.
pub fn local_images(store: &Store) -> Result<Vec<LocalImage>, ImagesError> {
    let mut images: Vec<LocalImage> = Vec::new();
    for (name, mut top) in store.tags()? {
        top.annotations.remove(crate::oci::ANNOTATION_REF_NAME);
        if let Some(existing) = images.iter_mut().find(|i| i.top.digest == top.digest) {
            existing.names.extend(name);
            continue;
        }
        let label = name.clone().unwrap_or_else(|| top.digest.to_string());
        match load(store, &label, &top) {
            Ok(image) => images.push(LocalImage {
                names: name.into_iter().collect(),
                top,
                image,
            }),
            Err(e) => tracing::warn!(image = %label, error = %e, "skipping an unreadable image"),
        }
    }
    for image in &mut images {
        image.names.sort();
    }
    images.sort_by(|a, b| match (a.names.first(), b.names.first()) {
        (Some(x), Some(y)) => x.cmp(y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.top.digest.cmp(&b.top.digest),
    });
    Ok(images)
}

/// Loads the image a descriptor of `index.json` names: a manifest directly;
/// for an index, the manifest for this host's platform that the store holds.
pub fn load(store: &Store, label: &str, top: &Descriptor) -> Result<StoredImage, ImagesError> {
    if top.media_type != MEDIA_INDEX && top.media_type != DOCKER_MANIFEST_LIST {
        return Ok(image::load_descriptor(store, label, top.clone())?);
    }
    let bytes = store.blobs().read(&top.digest)?;
    let index: Index =
        serde_json::from_slice(&bytes).map_err(|source| image::ImageError::Document {
            digest: top.digest.clone(),
            source,
        })?;
    let arch = image::host_architecture();
    let present = |d: &&Descriptor| store.blobs().contains(&d.digest);
    let chosen = index
        .manifests
        .iter()
        .filter(present)
        .find(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| p.architecture == arch && p.os == "linux")
        })
        .or_else(|| index.manifests.iter().find(present))
        .ok_or_else(|| ImagesError::NotFound(format!("{label} (no platform of it is stored)")))?;
    Ok(image::load_descriptor(store, label, chosen.clone())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::{ImageConfig, MEDIA_MANIFEST, Platform};

    fn descriptor(media_type: &str, digest: Digest, platform: Option<Platform>) -> Descriptor {
        Descriptor {
            artifact_type: None,
            unknown: Default::default(),
            urls: None,
            media_type: media_type.into(),
            digest,
            size: 0,
            annotations: Default::default(),
            platform,
        }
    }

    #[test]
    fn an_index_shows_the_stored_manifest_for_this_host() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let config = ImageConfig {
            architecture: image::host_architecture().into(),
            os: "linux".into(),
            ..Default::default()
        };
        let host = image::write(&store, &config, &[]).unwrap();
        let platform = |arch: &str| {
            Some(Platform {
                os_version: None,
                unknown: Default::default(),
                architecture: arch.into(),
                os: "linux".into(),
                variant: None,
            })
        };
        // Another platform's manifest is listed but not stored.
        let index = Index {
            manifests: vec![
                descriptor(MEDIA_MANIFEST, Digest::of(b"elsewhere"), platform("s390x")),
                descriptor(MEDIA_MANIFEST, host.digest.clone(), host.platform.clone()),
            ],
            ..Default::default()
        };
        let index_digest = store
            .blobs()
            .put(&serde_json::to_vec(&index).unwrap())
            .unwrap();
        store
            .tag(
                "multi",
                &descriptor(MEDIA_INDEX, index_digest.clone(), None),
            )
            .unwrap();
        store.tag("single:1", &host).unwrap();

        let images = local_images(&store).unwrap();
        let names: Vec<&[String]> = images.iter().map(|i| i.names.as_slice()).collect();
        assert_eq!(
            names,
            vec![
                &["multi:latest".to_string()][..],
                &["single:1".to_string()][..]
            ]
        );
        assert_eq!(images[0].top.digest, index_digest);
        assert_eq!(images[0].image.descriptor.digest, host.digest);
        assert_eq!(images[0].id(), images[1].id());
        assert!(images[0].top.annotations.is_empty(), "the name is not kept");
    }
}
