//! Pulling an image into a local store: only the blobs the store lacks are
//! downloaded, and the name is set only once everything is verified and stored.

use crate::client::{Client, FetchedManifest};
use crate::error::Error;
use crate::manifest::{Manifest, Platform};
use crate::parallel::run_bounded;
use crate::progress::{BlobOutcome, Event, ProgressSink};
use berth_store::content::ContentStore;
use berth_store::digest::Digest;
use berth_store::reference::Reference;
use std::collections::BTreeSet;
use std::sync::Arc;

/// Options for [`Client::pull`].
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// The platform to pick from an index; the host's when `None`.
    pub platform: Option<Platform>,
    /// Keep the whole index and every platform's image instead of picking one.
    pub all_platforms: bool,
}

/// What a pull did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullReport {
    /// The digest of the manifest (or index) now named in the store.
    pub digest: Digest,
    /// Blobs downloaded.
    pub downloaded: usize,
    /// Blobs the store already had.
    pub present: usize,
    /// Bytes downloaded.
    pub bytes_downloaded: u64,
}

impl Client {
    /// Pulls `reference` into `store` under `name`.
    pub async fn pull<S: ContentStore + Clone>(
        &self,
        reference: &Reference,
        store: &S,
        name: &str,
        options: &PullOptions,
        progress: ProgressSink,
    ) -> Result<PullReport, Error> {
        let fetched = self.fetch_manifest(reference, &*progress).await?;
        let mut images: Vec<FetchedManifest> = Vec::new();
        let mut indexes: Vec<FetchedManifest> = Vec::new();
        let named = match fetched.parse()? {
            Manifest::Image { .. } => {
                images.push(fetched.clone());
                fetched
            }
            Manifest::Index { manifests } if options.all_platforms => {
                for child in &manifests {
                    let child_ref = reference.clone_with_digest(child.digest.to_string());
                    images.push(self.fetch_manifest(&child_ref, &*progress).await?);
                }
                indexes.push(fetched.clone());
                fetched
            }
            index @ Manifest::Index { .. } => {
                let platform = options.platform.clone().unwrap_or_else(Platform::host);
                let chosen = index.select_platform(&platform).ok_or_else(|| {
                    let available = match &index {
                        Manifest::Index { manifests } => manifests
                            .iter()
                            .filter_map(|m| m.platform.as_ref().map(ToString::to_string))
                            .collect::<Vec<_>>()
                            .join(", "),
                        Manifest::Image { .. } => String::new(),
                    };
                    Error::NoMatchingPlatform {
                        reference: reference.to_string(),
                        platform: platform.to_string(),
                        available,
                    }
                })?;
                let child = self
                    .fetch_manifest(
                        &reference.clone_with_digest(chosen.digest.to_string()),
                        &*progress,
                    )
                    .await?;
                images.push(child.clone());
                child
            }
        };
        let mut wanted = Vec::new();
        let mut seen = BTreeSet::new();
        let mut present = 0;
        for image in &images {
            for blob in image.parse()?.blobs() {
                if !seen.insert(blob.digest.clone()) {
                    continue;
                }
                if store.has_blob(&blob.digest).await? {
                    present += 1;
                    progress.event(Event::BlobDone {
                        digest: blob.digest.clone(),
                        outcome: BlobOutcome::AlreadyPresent,
                    });
                } else {
                    wanted.push(blob.clone());
                }
            }
        }
        let downloaded = run_bounded(wanted, self.options().concurrency, |blob| {
            let client = self.clone();
            let store = store.clone();
            let reference = reference.clone();
            let progress = Arc::clone(&progress);
            async move {
                client
                    .fetch_blob(&reference, &blob, &store, &progress)
                    .await?;
                Ok(blob.size)
            }
        })
        .await?;
        // Manifests go in after their blobs and the name last, so a named image
        // in the store is always complete.
        for manifest in images.iter().chain(indexes.iter()) {
            store.put_blob(&manifest.bytes).await?;
            progress.event(Event::ManifestDone {
                digest: manifest.digest.clone(),
                media_type: manifest.media_type.clone(),
            });
        }
        store.tag(name, &named.descriptor()).await?;
        self.inner.locations.save().await;
        Ok(PullReport {
            digest: named.digest,
            downloaded: downloaded.len(),
            present,
            bytes_downloaded: downloaded.iter().sum(),
        })
    }
}
