//! Pushing an image from a local store: nothing moves when the registry already
//! has the manifest; otherwise only the blobs it lacks are mounted or uploaded.

use crate::client::Client;
use crate::error::Error;
use crate::manifest::{Descriptor, Manifest, is_index};
use crate::parallel::run_bounded;
use crate::progress::{BlobOutcome, Event, ProgressSink};
use berth_store::content::ContentStore;
use berth_store::digest::Digest;
use berth_store::reference::Reference;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Options for [`Client::push`].
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// Repositories on the same registry to mount missing blobs from before
    /// uploading them (tried in order; the client also tries repositories it
    /// has seen a blob in).
    pub mount_from: Vec<String>,
}

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushReport {
    /// The digest of the pushed manifest or index.
    pub digest: Digest,
    /// True when the registry already had the manifest under the reference, so
    /// nothing was sent.
    pub up_to_date: bool,
    /// Blobs uploaded.
    pub uploaded: usize,
    /// Blobs mounted from another repository.
    pub mounted: usize,
    /// Blobs the repository already had.
    pub present: usize,
    /// Bytes of blobs uploaded.
    pub bytes_uploaded: u64,
}

/// The manifests of an image, children before parents, and its distinct blobs.
pub(crate) struct ImageParts {
    pub manifests: Vec<(Descriptor, Vec<u8>)>,
    pub blobs: Vec<Descriptor>,
}

impl ImageParts {
    pub fn add_blobs(&mut self, manifest: &Manifest, seen: &mut BTreeMap<Digest, ()>) {
        for blob in manifest.blobs() {
            if seen.insert(blob.digest.clone(), ()).is_none() {
                self.blobs.push(blob.clone());
            }
        }
    }
}

impl Client {
    /// Pushes the image named `name` in `store` to `reference`.
    pub async fn push<S: ContentStore + Clone>(
        &self,
        store: &S,
        name: &str,
        reference: &Reference,
        options: &PushOptions,
        progress: ProgressSink,
    ) -> Result<PushReport, Error> {
        let root = store
            .resolve(name)
            .await?
            .ok_or_else(|| Error::LocalImageNotFound {
                name: name.to_owned(),
                location: store.location(),
            })?;
        let limit = self.options().max_manifest_size;
        let root_bytes = store.read_blob(&root.digest, limit).await?;
        if let Some(remote) = self.head_manifest(reference).await?
            && remote.digest == root.digest
        {
            tracing::debug!(%reference, digest = %root.digest, "the registry has this manifest already");
            return Ok(PushReport {
                digest: root.digest,
                up_to_date: true,
                uploaded: 0,
                mounted: 0,
                present: 0,
                bytes_uploaded: 0,
            });
        }
        let parts = collect(store, &root, root_bytes, limit).await?;
        let results = run_bounded(parts.blobs, self.options().concurrency, |blob| {
            let client = self.clone();
            let store = store.clone();
            let reference = reference.clone();
            let mount_from = options.mount_from.clone();
            let progress = Arc::clone(&progress);
            async move {
                let outcome = client
                    .push_blob(&reference, &blob, &store, &mount_from, &progress)
                    .await?;
                Ok((blob.size, outcome))
            }
        })
        .await?;
        let mut report = PushReport {
            digest: root.digest.clone(),
            up_to_date: false,
            uploaded: 0,
            mounted: 0,
            present: 0,
            bytes_uploaded: 0,
        };
        for (size, outcome) in results {
            match outcome {
                BlobOutcome::Uploaded => {
                    report.uploaded += 1;
                    report.bytes_uploaded += size;
                }
                BlobOutcome::Mounted { .. } => report.mounted += 1,
                BlobOutcome::AlreadyPresent | BlobOutcome::Downloaded => report.present += 1,
            }
        }
        for (descriptor, bytes) in &parts.manifests {
            let target = if descriptor.digest == root.digest {
                reference.clone()
            } else {
                reference.clone_with_digest(descriptor.digest.to_string())
            };
            self.put_manifest(&target, bytes, &descriptor.media_type)
                .await?;
            progress.event(Event::ManifestDone {
                digest: descriptor.digest.clone(),
                media_type: descriptor.media_type.clone(),
            });
        }
        self.inner.locations.save().await;
        Ok(report)
    }
}

/// Reads the manifests under `root` from the store (children first) and lists
/// the blobs they reference.
async fn collect<S: ContentStore>(
    store: &S,
    root: &Descriptor,
    root_bytes: Vec<u8>,
    limit: u64,
) -> Result<ImageParts, Error> {
    let mut parts = ImageParts {
        manifests: Vec::new(),
        blobs: Vec::new(),
    };
    let mut seen = BTreeMap::new();
    // Depth-first, so that every manifest follows the ones it lists.
    let mut stack = vec![(root.clone(), root_bytes, false)];
    while let Some((descriptor, bytes, expanded)) = stack.pop() {
        let manifest = Manifest::parse(&bytes, Some(&descriptor.media_type))?;
        match &manifest {
            Manifest::Index { manifests } if !expanded => {
                let children = manifests.clone();
                stack.push((descriptor, bytes, true));
                for child in children {
                    if !is_index(&child.media_type)
                        && !crate::manifest::is_manifest(&child.media_type)
                    {
                        continue;
                    }
                    let child_bytes = store.read_blob(&child.digest, limit).await?;
                    stack.push((child, child_bytes, false));
                }
            }
            _ => {
                parts.add_blobs(&manifest, &mut seen);
                let media_type = if descriptor.media_type.is_empty() {
                    Manifest::media_type_of(&bytes).unwrap_or_default()
                } else {
                    descriptor.media_type.clone()
                };
                parts.manifests.push((
                    Descriptor {
                        media_type,
                        ..descriptor
                    },
                    bytes,
                ));
            }
        }
    }
    Ok(parts)
}
