//! Loading an OCI image layout: every image `index.json` names, with the
//! name its annotations give (containerd's `io.containerd.image.name`, else a
//! full `org.opencontainers.image.ref.name`; a bare tag there names no
//! repository, so such an image is loaded untagged, as docker does).

use super::staging::Staging;
use super::{ArchiveError, LoadedImage, name_image, parse};
use crate::Store;
use crate::images;
use crate::oci::ANNOTATION_CONTAINERD_NAME;
use crate::oci::{ANNOTATION_REF_NAME, Descriptor, Index, MEDIA_INDEX, MEDIA_MANIFEST, Manifest};

const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Loads the layout's images.
pub fn load(store: &Store, staging: &Staging) -> Result<Vec<LoadedImage>, ArchiveError> {
    let index: Index = parse(staging, "index.json")?;
    let mut loaded: Vec<LoadedImage> = Vec::new();
    for entry in &index.manifests {
        import_tree(store, staging, entry)?;
        let name = name_of(entry);
        let mut top = entry.clone();
        top.annotations.remove(ANNOTATION_REF_NAME);
        top.annotations.remove(ANNOTATION_CONTAINERD_NAME);
        let names: Vec<String> = name.into_iter().collect();
        name_image(store, &top, &names)?;
        let label = names
            .first()
            .cloned()
            .unwrap_or_else(|| top.digest.to_string());
        let image = images::load_top(store, &label, &top).map_err(|e| match e {
            images::ImagesError::Store(e) => ArchiveError::Store(e),
            images::ImagesError::Image(e) => ArchiveError::Image(e),
            other => ArchiveError::Missing(other.to_string()),
        })?;
        match loaded
            .iter_mut()
            .find(|l| l.descriptor.digest == top.digest)
        {
            Some(same) => same.names.extend(names),
            None => loaded.push(LoadedImage {
                names,
                descriptor: top,
                id: image.manifest.config.digest,
            }),
        }
    }
    Ok(loaded)
}

/// The image name an index entry's annotations give, if a valid one.
fn name_of(entry: &Descriptor) -> Option<String> {
    let full = entry
        .annotations
        .get(ANNOTATION_CONTAINERD_NAME)
        .or_else(|| {
            entry
                .annotations
                .get(ANNOTATION_REF_NAME)
                .filter(|n| n.contains(':') || n.contains('/'))
        })?;
    match images::validate_name(full) {
        Ok(()) => Some(crate::tags::normalize(full)),
        Err(e) => {
            tracing::warn!(name = %full, error = %e, "loading an image without its invalid name");
            None
        }
    }
}

/// Moves a blob of the archive into the store (unless it is there already).
fn import_blob(store: &Store, staging: &Staging, d: &Descriptor) -> Result<(), ArchiveError> {
    if store.blobs().contains(&d.digest) {
        return Ok(());
    }
    let name = format!("blobs/sha256/{}", d.digest.hex());
    let path = staging.path(&name)?;
    store.blobs().adopt(&path, Some(&d.digest))?;
    Ok(())
}

/// Imports a manifest with its config and layers, or an index with the
/// manifests of it the archive holds.
fn import_tree(store: &Store, staging: &Staging, d: &Descriptor) -> Result<(), ArchiveError> {
    import_blob(store, staging, d)?;
    let bytes = store.blobs().read(&d.digest)?;
    let document = |source| ArchiveError::Document {
        name: format!("blobs/sha256/{}", d.digest.hex()),
        source,
    };
    match d.media_type.as_str() {
        MEDIA_MANIFEST | DOCKER_MANIFEST => {
            let manifest: Manifest = serde_json::from_slice(&bytes).map_err(document)?;
            import_blob(store, staging, &manifest.config)?;
            for layer in &manifest.layers {
                import_blob(store, staging, layer)?;
            }
        }
        MEDIA_INDEX | DOCKER_MANIFEST_LIST => {
            let index: Index = serde_json::from_slice(&bytes).map_err(document)?;
            let mut any = false;
            for child in &index.manifests {
                let present = store.blobs().contains(&child.digest)
                    || staging.has(&format!("blobs/sha256/{}", child.digest.hex()));
                if present {
                    import_tree(store, staging, child)?;
                    any = true;
                }
            }
            if !any {
                return Err(ArchiveError::Missing(format!(
                    "any manifest of index {}",
                    d.digest
                )));
            }
        }
        _ => {}
    }
    Ok(())
}
