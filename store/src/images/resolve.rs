//! Naming an image: `name[:tag]`, `name@digest`, a manifest digest, or a
//! unique prefix of the image ID.

use super::list::{LocalImage, local_images};
use super::{ImagesError, short_id};
use crate::Store;
use crate::tags::normalize;

/// The image a reference selected.
#[derive(Debug, Clone)]
pub struct Selected {
    /// The image.
    pub image: LocalImage,
    /// The name the reference gave, when it named the image by a tag.
    pub by_name: Option<String>,
}

/// Finds the image `reference` names in the store.
pub fn resolve(store: &Store, reference: &str) -> Result<Selected, ImagesError> {
    resolve_in(&local_images(store)?, reference)
}

/// Finds the image `reference` names among `images`.
pub fn resolve_in(images: &[LocalImage], reference: &str) -> Result<Selected, ImagesError> {
    let not_found = || ImagesError::NotFound(reference.to_string());
    if reference.is_empty() {
        return Err(not_found());
    }
    let name = normalize(reference);
    if let Some(image) = images.iter().find(|i| i.names.contains(&name)) {
        return Ok(Selected {
            image: image.clone(),
            by_name: Some(name),
        });
    }
    // docker's equivalent spellings: `docker.io/library/app` is `app`.
    if let Some(full) = full_name(reference)
        && let Some((image, name)) = images.iter().find_map(|i| {
            i.names
                .iter()
                .find(|n| full_name(n).as_ref() == Some(&full))
                .map(|n| (i, n))
        })
    {
        return Ok(Selected {
            image: image.clone(),
            by_name: Some(name.clone()),
        });
    }
    // name@sha256:… or a bare manifest digest: the digest decides.
    let digest = match reference.rsplit_once('@') {
        Some((_, digest)) => Some(digest),
        None if reference.starts_with("sha256:") && reference.len() == 71 => Some(reference),
        None => None,
    };
    if let Some(digest) = digest
        && let Some(image) = images.iter().find(|i| {
            i.top.digest.as_str() == digest || i.image.descriptor.digest.as_str() == digest
        })
    {
        return Ok(Selected {
            image: image.clone(),
            by_name: None,
        });
    }
    if reference.contains('@') {
        return Err(not_found());
    }
    let prefix = reference.strip_prefix("sha256:").unwrap_or(reference);
    if !prefix
        .bytes()
        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(not_found());
    }
    let mut matches: Vec<&LocalImage> = images
        .iter()
        .filter(|i| i.id().hex().starts_with(prefix))
        .collect();
    match matches.len() {
        0 => Err(not_found()),
        1 => Ok(Selected {
            image: matches.remove(0).clone(),
            by_name: None,
        }),
        // Two manifests may share one config (the same image stored with
        // different layer compression): their manifest digests tell them apart.
        _ => Err(ImagesError::Ambiguous {
            prefix: reference.to_string(),
            matches: matches
                .iter()
                .map(|i| {
                    format!(
                        "{} (manifest {})",
                        short_id(i.id()),
                        short_id(&i.top.digest)
                    )
                })
                .collect(),
        }),
    }
}

/// The fully qualified form of a tag name (`docker.io/library/app:latest`
/// for `app`), if it is one.
fn full_name(name: &str) -> Option<String> {
    if name.contains('@') {
        return None;
    }
    crate::reference::parse(name).ok().map(|r| r.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Digest;
    use crate::image::StoredImage;
    use crate::oci::{Descriptor, ImageConfig, MEDIA_CONFIG, MEDIA_MANIFEST, Manifest};

    fn image(names: &[&str], manifest: &str, config_hex: &str) -> LocalImage {
        let descriptor = |media: &str, digest: Digest| Descriptor {
            artifact_type: None,
            unknown: Default::default(),
            urls: None,
            media_type: media.into(),
            digest,
            size: 1,
            annotations: Default::default(),
            platform: None,
        };
        let manifest_digest = Digest::of(manifest.as_bytes());
        let config = Digest::parse(&format!("sha256:{config_hex:0<64}")).unwrap();
        let top = descriptor(MEDIA_MANIFEST, manifest_digest);
        LocalImage {
            names: names.iter().map(|n| n.to_string()).collect(),
            top: top.clone(),
            image: StoredImage {
                descriptor: top,
                manifest: Manifest {
                    schema_version: 2,
                    media_type: None,
                    config: descriptor(MEDIA_CONFIG, config),
                    layers: Vec::new(),
                    annotations: Default::default(),
                },
                config: ImageConfig::default(),
            },
        }
    }

    #[test]
    fn references_resolve_by_name_digest_and_unique_id_prefix() {
        let images = vec![
            image(&["app:latest", "app:1"], "m1", "abc1"),
            image(&["abc:latest"], "m2", "abc2"),
            image(&[], "m3", "def"),
        ];
        let m1 = Digest::of(b"m1").to_string();
        let picked = |r: &str| resolve_in(&images, r).map(|s| (s.image.names.clone(), s.by_name));
        let named = |names: &[&str], by: Option<&str>| {
            (
                names.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
                by.map(String::from),
            )
        };
        for (reference, want) in [
            ("app", named(&["app:latest", "app:1"], Some("app:latest"))),
            ("app:1", named(&["app:latest", "app:1"], Some("app:1"))),
            (
                "docker.io/library/app",
                named(&["app:latest", "app:1"], Some("app:latest")),
            ),
            (
                "library/app:1",
                named(&["app:latest", "app:1"], Some("app:1")),
            ),
            // A name wins over an ID prefix spelled the same.
            ("abc", named(&["abc:latest"], Some("abc:latest"))),
            ("abc1", named(&["app:latest", "app:1"], None)),
            ("sha256:abc2", named(&["abc:latest"], None)),
            ("de", named(&[], None)),
            (&m1, named(&["app:latest", "app:1"], None)),
            (&format!("app@{m1}"), named(&["app:latest", "app:1"], None)),
        ] {
            assert_eq!(picked(reference).unwrap(), want, "{reference}");
        }
        for missing in [
            "nope",
            "app:2",
            "",
            "0123",
            "x@sha256:00",
            "app@sha256:abc1",
        ] {
            assert!(
                matches!(picked(missing), Err(ImagesError::NotFound(_))),
                "{missing}"
            );
        }
        assert!(matches!(
            picked("ab"),
            Err(ImagesError::Ambiguous { matches, .. }) if matches.len() == 2
        ));
    }
}
