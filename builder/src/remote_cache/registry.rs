//! A cache in a registry: the cache manifest under a tag, its config and
//! layers as blobs of the same repository. Reads fetch the manifest and the
//! config only; layers move when the build asks for them.

use super::RemoteCacheError;
use super::format::{Encoded, MEDIA_CACHE_CONFIG};
use berth_registry_client::manifest::Manifest;
use berth_registry_client::progress::{NoProgress, ProgressSink};
use berth_registry_client::{Client, ClientOptions};
use berth_store::Store;
use berth_store::layout::OciLayout;
use berth_store::oci::{self, MEDIA_MANIFEST};
use berth_store::reference::{self, Reference};
use std::sync::Arc;

/// One registry cache reference with its client and transfer threads.
pub(super) struct RegistryEnd {
    text: String,
    reference: Reference,
    client: Client,
    runtime: tokio::runtime::Runtime,
}

impl RegistryEnd {
    /// Prepares transfers with the cache at `text` (nothing is sent yet).
    pub fn open(store: &Store, text: &str) -> Result<RegistryEnd, RemoteCacheError> {
        let fail = |message: String| RemoteCacheError::Transfer {
            action: "reaching",
            location: text.to_string(),
            message,
        };
        let reference =
            reference::parse(text).map_err(|e| fail(format!("invalid reference: {}", e.reason)))?;
        let client = Client::new(ClientOptions {
            // Plain HTTP for the registries BERTH_INSECURE_REGISTRIES names,
            // as for pulls and pushes.
            insecure_registries: crate::registry::TransferOptions::from_env().insecure_registries,
            // The file berth's pulls and pushes keep (crate::registry), so a
            // cache blob is mounted from the repository an image push put it in.
            blob_location_cache: Some(store.root().join("registry").join("blob-locations.json")),
            ..ClientOptions::default()
        })
        .map_err(|e| fail(crate::text::error_chain(&e)))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| fail(format!("starting the transfer threads: {e}")))?;
        Ok(RegistryEnd {
            text: text.to_string(),
            reference,
            client,
            runtime,
        })
    }

    /// The registry host, for mounts between repositories of one registry.
    pub fn registry(&self) -> &str {
        self.reference.registry()
    }

    /// The repository.
    pub fn repository(&self) -> &str {
        self.reference.repository()
    }

    fn error(&self, action: &'static str, message: impl ToString) -> RemoteCacheError {
        RemoteCacheError::Transfer {
            action,
            location: self.text.clone(),
            message: message.to_string(),
        }
    }

    /// Reads the cache manifest and its config (fetched into the store):
    /// the layers and the config bytes.
    pub fn read(&self, store: &Store) -> Result<(Vec<oci::Descriptor>, Vec<u8>), RemoteCacheError> {
        let layout_dir = store.layout_dir();
        self.runtime
            .block_on(async {
                let fetched = self
                    .client
                    .get_manifest(&self.reference)
                    .await
                    .map_err(|e| self.error("reading", e))?;
                let not_cache = |reason: String| RemoteCacheError::Format {
                    location: self.text.clone(),
                    reason,
                };
                let (config, layers) =
                    match fetched.parse().map_err(|e| self.error("reading", e))? {
                        Manifest::Image { config, layers, .. } => (config, layers),
                        Manifest::Index { .. } => {
                            return Err(not_cache(
                                "it is an image index, not a cache manifest".into(),
                            ));
                        }
                    };
                if config.media_type != MEDIA_CACHE_CONFIG {
                    return Err(not_cache(format!(
                        "its config has media type {}, not {MEDIA_CACHE_CONFIG}",
                        config.media_type
                    )));
                }
                let layout = OciLayout::open(layout_dir)
                    .await
                    .map_err(|e| self.error("reading", e))?;
                let progress: ProgressSink = Arc::new(NoProgress);
                self.client
                    .fetch_blob(&self.reference, &config, &layout, &progress)
                    .await
                    .map_err(|e| self.error("reading", e))?;
                let layers = layers.iter().map(blob_only).collect::<Vec<_>>();
                Ok((layers, config.digest))
            })
            .and_then(|(layers, config_digest)| {
                let config = store
                    .blobs()
                    .read(&config_digest)
                    .map_err(|e| self.error("reading", e))?;
                Ok((layers, config))
            })
    }

    /// Downloads `blobs` into the store, several at a time.
    pub fn fetch(&self, store: &Store, blobs: &[oci::Descriptor]) -> Result<(), RemoteCacheError> {
        let wire = blobs.iter().map(blob_only).collect::<Vec<_>>();
        self.runtime.block_on(self.each_blob(
            store,
            wire,
            "fetching layers from",
            |client, reference, layout, descriptor| async move {
                tracing::debug!(digest = %descriptor.digest, "fetching a cached layer");
                let progress: ProgressSink = Arc::new(NoProgress);
                client
                    .fetch_blob(&reference, &descriptor, &layout, &progress)
                    .await
            },
        ))
    }

    /// Runs `transfer` for each blob, as many at once as the client's
    /// concurrency allows, on the store's layout.
    async fn each_blob<F, Fut, T>(
        &self,
        store: &Store,
        blobs: Vec<oci::Descriptor>,
        action: &'static str,
        transfer: F,
    ) -> Result<(), RemoteCacheError>
    where
        F: Fn(Client, Reference, OciLayout, oci::Descriptor) -> Fut,
        Fut: Future<Output = Result<T, berth_registry_client::Error>> + Send + 'static,
        T: Send + 'static,
    {
        let layout = OciLayout::open(store.layout_dir())
            .await
            .map_err(|e| self.error(action, e))?;
        let limit = Arc::new(tokio::sync::Semaphore::new(
            self.client.options().concurrency.max(1),
        ));
        let mut tasks = tokio::task::JoinSet::new();
        for descriptor in blobs {
            let work = transfer(
                self.client.clone(),
                self.reference.clone(),
                layout.clone(),
                descriptor,
            );
            let limit = limit.clone();
            tasks.spawn(async move {
                let _permit = limit.acquire_owned().await;
                work.await.map_err(|e| e.to_string())
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.map_err(|e| self.error(action, e))?
                .map_err(|e| self.error(action, e))?;
        }
        Ok(())
    }

    /// Those of `blobs` the repository lacks.
    pub fn missing(
        &self,
        blobs: &[oci::Descriptor],
    ) -> Result<Vec<oci::Descriptor>, RemoteCacheError> {
        self.runtime.block_on(async {
            let mut missing = Vec::new();
            for blob in blobs {
                let digest = blob.digest.clone();
                let found = self
                    .client
                    .head_blob(&self.reference, &digest)
                    .await
                    .map_err(|e| self.error("writing", e))?;
                if found.is_none() {
                    missing.push(blob.clone());
                }
            }
            Ok(missing)
        })
    }

    /// Pushes the cache: every blob the repository lacks (mounted from
    /// `mount_from` or other repositories it was seen in when possible, else
    /// uploaded from the store), then the manifest under the reference.
    pub fn write(
        &self,
        store: &Store,
        encoded: &Encoded,
        mount_from: &[String],
    ) -> Result<(), RemoteCacheError> {
        let mut blobs = vec![blob_only(&encoded.manifest.config)];
        for layer in &encoded.manifest.layers {
            blobs.push(blob_only(layer));
        }
        self.runtime.block_on(async {
            let mount_from = mount_from.to_vec();
            self.each_blob(
                store,
                blobs,
                "writing",
                |client, reference, layout, descriptor| {
                    let mount_from = mount_from.clone();
                    async move {
                        let progress: ProgressSink = Arc::new(NoProgress);
                        client
                            .push_blob(&reference, &descriptor, &layout, &mount_from, &progress)
                            .await
                    }
                },
            )
            .await?;
            self.client
                .put_manifest(&self.reference, &encoded.manifest_bytes, MEDIA_MANIFEST)
                .await
                .map_err(|e| self.error("writing", e))?;
            Ok(())
        })
    }
}

/// A blob descriptor as the registry sees it: media type, digest and size.
fn blob_only(descriptor: &oci::Descriptor) -> oci::Descriptor {
    oci::Descriptor::new(
        descriptor.media_type.clone(),
        descriptor.digest.clone(),
        descriptor.size,
    )
}
