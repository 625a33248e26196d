//! The tag index: the image layout's `index.json`, one manifest descriptor per
//! tag, named by the `org.opencontainers.image.ref.name` annotation.

use super::{Store, StoreError};
use crate::oci::{ANNOTATION_REF_NAME, Descriptor, Index};

/// Normalises an image name: a name without a tag gets `:latest`.
pub fn normalize(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') || last.contains('@') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

impl Store {
    /// Reads `index.json`.
    pub fn read_index(&self) -> Result<Index, StoreError> {
        self.layout().read_index()
    }

    /// The manifest descriptor tagged `name`.
    pub fn resolve_tag(&self, name: &str) -> Result<Descriptor, StoreError> {
        let wanted = normalize(name);
        self.read_index()?
            .manifests
            .into_iter()
            .find(|d| d.annotations.get(ANNOTATION_REF_NAME) == Some(&wanted))
            .ok_or(StoreError::UnknownImage(wanted))
    }

    /// Points `name` at `manifest`, replacing an older entry for the same name.
    pub fn tag(&self, name: &str, manifest: &Descriptor) -> Result<(), StoreError> {
        let name = normalize(name);
        self.edit_index(|entries| {
            entries.retain(|d| d.annotations.get(ANNOTATION_REF_NAME) != Some(&name));
            let mut entry = manifest.clone();
            entry
                .annotations
                .insert(ANNOTATION_REF_NAME.to_string(), name);
            entries.push(entry);
            entries.sort_by(|a, b| {
                a.annotations
                    .get(ANNOTATION_REF_NAME)
                    .cmp(&b.annotations.get(ANNOTATION_REF_NAME))
            });
            true
        })
    }

    /// Every tag with its manifest descriptor, in index order; entries without
    /// a name (an untagged image kept by a load) come with `None`.
    pub fn tags(&self) -> Result<Vec<(Option<String>, Descriptor)>, StoreError> {
        Ok(self
            .read_index()?
            .manifests
            .into_iter()
            .map(|d| (d.annotations.get(ANNOTATION_REF_NAME).cloned(), d))
            .collect())
    }

    /// Edits `index.json` through the layout, under its lock: `edit` gets
    /// the entries and the index is written back (durably, keeping every
    /// field berth does not know) only when it returns true.
    pub fn edit_index(
        &self,
        edit: impl FnOnce(&mut Vec<Descriptor>) -> bool,
    ) -> Result<(), StoreError> {
        self.layout().edit_index(|index| edit(&mut index.manifests))
    }

    /// Removes the tag `name`; returns the descriptor it pointed at.
    pub fn untag(&self, name: &str) -> Result<Descriptor, StoreError> {
        let wanted = normalize(name);
        let mut removed = None;
        self.edit_index(|entries| {
            if let Some(pos) = entries
                .iter()
                .position(|d| d.annotations.get(ANNOTATION_REF_NAME) == Some(&wanted))
            {
                removed = Some(entries.remove(pos));
            }
            removed.is_some()
        })?;
        removed.ok_or(StoreError::UnknownImage(wanted))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::MEDIA_MANIFEST;

    #[test]
    fn normalize_adds_latest_only_without_tag_or_digest() {
        for (input, want) in [
            ("demo", "demo:latest"),
            ("demo:1", "demo:1"),
            ("localhost:5000/demo", "localhost:5000/demo:latest"),
            ("localhost:5000/demo:2", "localhost:5000/demo:2"),
            ("demo@sha256:ab", "demo@sha256:ab"),
        ] {
            assert_eq!(normalize(input), want);
        }
    }

    #[test]
    fn tagging_replaces_the_old_entry() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let one = store.blobs().put(b"one").unwrap();
        let two = store.blobs().put(b"two").unwrap();
        let desc = |digest| Descriptor {
            artifact_type: None,
            unknown: Default::default(),
            urls: None,
            media_type: MEDIA_MANIFEST.into(),
            digest,
            size: 3,
            annotations: Default::default(),
            platform: None,
        };
        store.tag("app", &desc(one)).unwrap();
        store.tag("other", &desc(two.clone())).unwrap();
        store.tag("app:latest", &desc(two.clone())).unwrap();
        assert_eq!(store.resolve_tag("app").unwrap().digest, two);
        assert_eq!(store.read_index().unwrap().manifests.len(), 2);
        assert!(matches!(
            store.resolve_tag("missing"),
            Err(StoreError::UnknownImage(_))
        ));

        assert_eq!(store.untag("other").unwrap().digest, two);
        assert!(matches!(
            store.untag("other"),
            Err(StoreError::UnknownImage(_))
        ));
        let left: Vec<_> = store
            .tags()
            .unwrap()
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert_eq!(left, vec![Some("app:latest".to_string())]);
    }
}
