//! A cache in a local directory: an OCI image layout (`oci-layout`,
//! `index.json`, `blobs/sha256/`) whose `index.json` names the cache
//! manifest by tag, as BuildKit's local cache does. Layers are copied into
//! the store only when the build asks for them.

use super::RemoteCacheError;
use super::format::{Encoded, MEDIA_CACHE_CONFIG};
use berth_store::layout::OciLayout;
use berth_store::oci::{ANNOTATION_REF_NAME, Descriptor, Index, MEDIA_MANIFEST, Manifest};
use berth_store::{Digest, Store, StoreError};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

/// A cache directory and the tag of the cache in it.
pub(super) struct LocalEnd {
    dir: PathBuf,
    tag: String,
}

impl LocalEnd {
    /// The cache tagged `tag` in `dir`.
    pub fn new(dir: &Path, tag: &str) -> LocalEnd {
        LocalEnd {
            dir: dir.to_path_buf(),
            tag: tag.to_string(),
        }
    }

    fn location(&self) -> String {
        format!("{}:{}", self.dir.display(), self.tag)
    }

    fn io(&self, action: &'static str, path: &Path, e: impl ToString) -> RemoteCacheError {
        RemoteCacheError::Transfer {
            action,
            location: self.location(),
            message: format!("{}: {}", path.display(), e.to_string()),
        }
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.dir.join("blobs/sha256").join(digest.hex())
    }

    /// A blob of the directory, checked against its digest.
    fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, RemoteCacheError> {
        let path = self.blob_path(digest);
        let bytes = fs::read(&path).map_err(|e| self.io("reading", &path, e))?;
        if Digest::of(&bytes) != *digest {
            return Err(self.io("reading", &path, "the content does not match its digest"));
        }
        Ok(bytes)
    }

    fn read_index(&self) -> Result<Option<Index>, RemoteCacheError> {
        let path = self.dir.join("index.json");
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| self.io("reading", &path, e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io("reading", &path, e)),
        }
    }

    /// Reads the cache manifest and its config: the layers and the config bytes.
    pub fn read(&self) -> Result<(Vec<Descriptor>, Vec<u8>), RemoteCacheError> {
        let not_cache = |reason: String| RemoteCacheError::Format {
            location: self.location(),
            reason,
        };
        let Some(index) = self.read_index()? else {
            return Err(not_cache("the directory has no index.json".into()));
        };
        let Some(entry) = index
            .manifests
            .iter()
            .find(|m| m.annotations.get(ANNOTATION_REF_NAME) == Some(&self.tag))
        else {
            return Err(not_cache(format!(
                "its index.json names no manifest '{}'",
                self.tag
            )));
        };
        let manifest: Manifest = serde_json::from_slice(&self.read_blob(&entry.digest)?)
            .map_err(|e| not_cache(format!("its manifest does not parse: {e}")))?;
        if manifest.config.media_type != MEDIA_CACHE_CONFIG {
            return Err(not_cache(format!(
                "its config has media type {}, not {MEDIA_CACHE_CONFIG}",
                manifest.config.media_type
            )));
        }
        let config = self.read_blob(&manifest.config.digest)?;
        Ok((manifest.layers, config))
    }

    /// Copies `blobs` from the directory into the store.
    pub fn fetch(&self, store: &Store, blobs: &[Descriptor]) -> Result<(), RemoteCacheError> {
        for blob in blobs {
            if store.blobs().contains(&blob.digest) {
                continue;
            }
            let path = self.blob_path(&blob.digest);
            let mut source = File::open(&path).map_err(|e| self.io("reading", &path, e))?;
            let mut writer = store
                .blobs()
                .writer()
                .map_err(|e| self.io("reading", &path, e))?;
            io::copy(&mut source, &mut writer).map_err(|e| self.io("copying", &path, e))?;
            // The writer hashes as it writes; a blob whose content does not
            // match its name must not enter the store under that name.
            let staged = writer.staging_path().to_path_buf();
            let (digest, _) = writer
                .commit()
                .map_err(|e| self.io("copying", &staged, e))?;
            if digest != blob.digest {
                let _ = fs::remove_file(store.blobs().path(&digest));
                return Err(self.io("reading", &path, "the content does not match its digest"));
            }
        }
        Ok(())
    }

    /// Those of `blobs` the directory lacks.
    pub fn missing(&self, blobs: &[Descriptor]) -> Vec<Descriptor> {
        blobs
            .iter()
            .filter(|b| !self.blob_path(&b.digest).is_file())
            .cloned()
            .collect()
    }

    /// Writes the cache: the layers the directory lacks (from the store),
    /// the config and the manifest, then `index.json` with the tag moved to
    /// the new manifest. Other tags in the directory stay.
    pub fn write(&self, store: &Store, encoded: &Encoded) -> Result<(), RemoteCacheError> {
        let fail = |source: StoreError| RemoteCacheError::Export {
            location: self.location(),
            source,
        };
        let layout = OciLayout::create_sync(&self.dir).map_err(fail)?;
        for layer in self.missing(&encoded.manifest.layers) {
            layout
                .add_blob_file(&store.blobs().path(&layer.digest), &layer.digest)
                .map_err(fail)?;
        }
        layout.put(&encoded.config).map_err(fail)?;
        let manifest_digest = layout.put(&encoded.manifest_bytes).map_err(fail)?;
        let mut entry = Descriptor::new(
            MEDIA_MANIFEST,
            manifest_digest,
            encoded.manifest_bytes.len() as u64,
        );
        entry
            .annotations
            .insert(ANNOTATION_REF_NAME.to_string(), self.tag.clone());
        layout
            .edit_index(|index| {
                index
                    .manifests
                    .retain(|m| m.annotations.get(ANNOTATION_REF_NAME) != Some(&self.tag));
                index.manifests.push(entry);
                true
            })
            .map_err(fail)
    }
}
