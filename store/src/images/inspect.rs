//! `inspect`: an image's descriptor, manifest and config as one JSON object,
//! with docker's top-level fields (`Id`, `RepoTags`, `Created`, `Config`…).

use super::{ImagesError, Selected};
use crate::{Digest, Store};
use serde_json::{Value, json};

/// Reads a stored JSON document exactly as stored (fields berth does not
/// model are kept).
fn document(store: &Store, digest: &Digest) -> Result<Value, ImagesError> {
    let bytes = store.blobs().read(digest)?;
    serde_json::from_slice(&bytes).map_err(|source| {
        ImagesError::Image(crate::image::ImageError::Document {
            digest: digest.clone(),
            source,
        })
    })
}

/// The description of one image.
pub fn inspect(store: &Store, selected: &Selected) -> Result<Value, ImagesError> {
    let image = &selected.image;
    let manifest = document(store, &image.image.descriptor.digest)?;
    let config = document(store, image.id())?;
    let repo_digests: Vec<String> = image
        .names
        .iter()
        .map(|n| format!("{}@{}", repository_of(n), image.top.digest))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let field = |name: &str| config.get(name).cloned().unwrap_or(Value::Null);
    Ok(json!({
        "Id": image.id(),
        "Digest": image.top.digest,
        "RepoTags": image.names,
        "RepoDigests": repo_digests,
        "Created": field("created"),
        "Author": field("author"),
        "Architecture": field("architecture"),
        "Os": field("os"),
        "Variant": field("variant"),
        "Size": image.size(),
        "Config": field("config"),
        "RootFS": field("rootfs"),
        "History": field("history"),
        "Descriptor": image.top,
        "ManifestDescriptor": image.image.descriptor,
        "Manifest": manifest,
        "ImageConfig": config,
    }))
}

/// The repository part of `repository:tag`.
pub fn repository_of(name: &str) -> &str {
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[slash..].rfind(':') {
        Some(colon) => &name[..slash + colon],
        None => name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_drops_only_the_tag() {
        for (name, repo) in [
            ("app:latest", "app"),
            ("localhost:5000/app:1", "localhost:5000/app"),
            ("localhost:5000/app", "localhost:5000/app"),
            (
                "docker.io/library/busybox:1.36",
                "docker.io/library/busybox",
            ),
        ] {
            assert_eq!(repository_of(name), repo);
        }
    }
}
