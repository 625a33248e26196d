//! `rmi`: untag images, and delete what no other name, container or build
//! cache record still needs.
//!
//! The tags go first, in one atomic write of `index.json`; blobs and
//! snapshots after, under the collector lock (which waits for running
//! builds). A kill in between leaves only unreferenced blobs, which the next
//! `berth prune` removes.

use super::ImagesError;
use super::list::local_images;
use super::resolve::resolve_in;
use crate::collect::{self, Reachable, Reclaimed, RootSource, Scope};
use crate::oci::ANNOTATION_REF_NAME;
use crate::{Digest, Store};

/// How `rmi` behaves.
#[derive(Debug, Clone, Copy, Default)]
pub struct RemoveOptions {
    /// Untag an image a container uses, and remove every tag of an image
    /// named by ID.
    pub force: bool,
}

/// One thing `rmi` did, in docker's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    /// A tag was removed.
    Untagged(String),
    /// The image (by ID) left the store.
    Deleted(Digest),
}

/// What `rmi` did for each reference, and what the collection freed.
#[derive(Debug)]
pub struct RemoveReport {
    /// Per reference, in the order given.
    pub results: Vec<(String, Result<Vec<Removed>, ImagesError>)>,
    /// Blobs and snapshots freed.
    pub reclaimed: Reclaimed,
}

/// Removes the images `references` name. Each reference succeeds or fails
/// on its own, as with docker. `roots` are the holders above the store
/// (containers, the build cache): an image one of them holds keeps its last
/// name unless forced, and what they mark is never deleted. `on_wait` is
/// called if running builds hold the store and removal has to wait for them.
pub fn remove(
    store: &Store,
    references: &[String],
    options: RemoveOptions,
    roots: &[&dyn RootSource],
    on_wait: &dyn Fn(),
) -> Result<RemoveReport, ImagesError> {
    let mut held = Vec::new();
    for source in roots {
        held.extend(source.held_images(store)?);
    }
    let mut candidates = Reachable::default();
    let mut results = Vec::new();
    let mut gone: Vec<(usize, Digest, Digest)> = Vec::new();
    for reference in references {
        let images = local_images(store)?;
        let outcome = (|| {
            let selected = match resolve_in(&images, reference) {
                Ok(selected) => selected,
                // A tag whose image cannot be read (its manifest is gone or
                // corrupt) can still be removed, so a broken store can be
                // mended; what its blobs were is unknown, prune finds them.
                Err(ImagesError::NotFound(_)) if is_tag(store, reference)? => {
                    let name = store.untag(reference)?.annotations;
                    let name = name
                        .get(ANNOTATION_REF_NAME)
                        .cloned()
                        .unwrap_or_else(|| reference.clone());
                    return Ok(vec![Removed::Untagged(name)]);
                }
                Err(e) => return Err(e),
            };
            let image = &selected.image;
            let untag: Vec<String> = match &selected.by_name {
                Some(name) => vec![name.clone()],
                None if image.names.len() > 1 && !options.force => {
                    return Err(ImagesError::SeveralTags {
                        reference: reference.clone(),
                        names: image.names.clone(),
                    });
                }
                None => image.names.clone(),
            };
            let last = untag.len() == image.names.len();
            let users: Vec<String> = held
                .iter()
                .filter(|h| {
                    h.digest == image.top.digest || h.digest == image.image.descriptor.digest
                })
                .map(|h| h.holder.clone())
                .collect();
            if last && !users.is_empty() && !options.force {
                return Err(ImagesError::InUse {
                    reference: reference.clone(),
                    containers: users,
                });
            }
            candidates.visit(store, &image.top.digest)?;
            let top = image.top.digest.clone();
            store.edit_index(|entries| {
                let before = entries.len();
                entries.retain(|d| {
                    let name = d.annotations.get(ANNOTATION_REF_NAME);
                    let doomed = match name {
                        Some(name) => untag.contains(name),
                        None => last,
                    };
                    d.digest != top || !doomed
                });
                entries.len() != before
            })?;
            if last && users.is_empty() {
                gone.push((results.len(), top, image.id().clone()));
            }
            Ok::<Vec<Removed>, ImagesError>(untag.into_iter().map(Removed::Untagged).collect())
        })();
        results.push((reference.clone(), outcome));
    }
    let mut reclaimed = Reclaimed::default();
    if !candidates.blobs.is_empty() {
        let _lock = collect::lock(store, on_wait)?;
        let reachable = collect::mark(store, roots)?;
        reclaimed = collect::sweep(store, &reachable, Scope::Only(&candidates))?;
    }
    for (position, top, id) in gone {
        if !store.blobs().contains(&top)
            && let Some((_, Ok(done))) = results.get_mut(position)
        {
            done.push(Removed::Deleted(id));
        }
    }
    tracing::debug!(
        blobs = reclaimed.blobs,
        snapshots = reclaimed.snapshots,
        bytes = reclaimed.bytes,
        "rmi collected"
    );
    Ok(RemoveReport { results, reclaimed })
}

/// Whether `reference` is a name in `index.json` (readable image or not).
fn is_tag(store: &Store, reference: &str) -> Result<bool, ImagesError> {
    let wanted = crate::tags::normalize(reference);
    Ok(store
        .tags()?
        .iter()
        .any(|(name, _)| name.as_deref() == Some(wanted.as_str())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::{Descriptor, MEDIA_MANIFEST};

    #[test]
    fn a_tag_whose_image_is_unreadable_can_still_be_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let missing = Descriptor {
            artifact_type: None,
            unknown: Default::default(),
            urls: None,
            media_type: MEDIA_MANIFEST.into(),
            digest: Digest::of(b"gone"),
            size: 4,
            annotations: Default::default(),
            platform: None,
        };
        store.tag("broken", &missing).unwrap();
        let report = remove(
            &store,
            &["broken".to_string(), "absent".to_string()],
            RemoveOptions::default(),
            &[],
            &|| {},
        )
        .unwrap();
        assert!(matches!(
            &report.results[0].1,
            Ok(done) if *done == vec![Removed::Untagged("broken:latest".into())]
        ));
        assert!(matches!(
            &report.results[1].1,
            Err(ImagesError::NotFound(name)) if name == "absent"
        ));
        assert!(store.read_index().unwrap().manifests.is_empty());
    }
}
