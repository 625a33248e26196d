//! Images from and to registries, through berth's registry client: a `FROM`
//! of an image the local store lacks pulls it (only the blobs the store is
//! missing), and `--push` sends a built image to its registry.
//!
//! The store's `oci/` directory is an OCI image layout, so the registry
//! client's layout store works on it directly; the store's index lock is held
//! while the client updates `index.json`.

use crate::store::Store;
use crate::store::lock::{FileLock, LockMode};
use berth_registry_client::store::OciLayout;
use berth_registry_client::{Client, ClientOptions, PullOptions, PushOptions, reference};
use std::sync::Arc;

/// Errors talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The reference does not parse.
    #[error("invalid image reference '{reference}': {reason}")]
    Reference {
        /// The reference.
        reference: String,
        /// Why.
        reason: String,
    },
    /// The pull or push failed.
    #[error("{action} {reference}: {message}")]
    Transfer {
        /// `pulling` or `pushing`.
        action: &'static str,
        /// The reference.
        reference: String,
        /// The client's message.
        message: String,
    },
}

fn runtime(
    action: &'static str,
    reference: &str,
) -> Result<tokio::runtime::Runtime, RegistryError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| RegistryError::Transfer {
            action,
            reference: reference.to_string(),
            message: e.to_string(),
        })
}

fn parse(text: &str) -> Result<berth_registry_client::Reference, RegistryError> {
    reference::parse(text).map_err(|e| RegistryError::Reference {
        reference: text.to_string(),
        reason: e.reason,
    })
}

/// Pulls `image` into the store under `name` (its normalised local name).
/// Blobs the store already has are not downloaded. `bytes` receives
/// (bytes received, bytes to receive) over all blobs as they move.
pub fn pull(
    store: &Store,
    image: &str,
    name: &str,
    bytes: std::sync::mpsc::Sender<(u64, u64)>,
) -> Result<(), RegistryError> {
    let reference = parse(image)?;
    let fail = |message: String| RegistryError::Transfer {
        action: "pulling",
        reference: image.to_string(),
        message,
    };
    let lock_path = store.lock_path("index");
    let _lock =
        FileLock::acquire(&lock_path, LockMode::Exclusive).map_err(|e| fail(e.to_string()))?;
    let rt = runtime("pulling", image)?;
    rt.block_on(async {
        let layout = OciLayout::open(store.layout_dir())
            .await
            .map_err(|e| fail(e.to_string()))?;
        let client = Client::new(ClientOptions::default()).map_err(|e| fail(e.to_string()))?;
        client
            .pull(
                &reference,
                &layout,
                name,
                &PullOptions::default(),
                Arc::new(byte_counter(bytes)),
            )
            .await
            .map_err(|e| fail(e.to_string()))?;
        Ok(())
    })
}

/// A registry progress receiver that sums the blobs' byte counts and sends
/// (done, total) on each change.
fn byte_counter(
    bytes: std::sync::mpsc::Sender<(u64, u64)>,
) -> impl Fn(berth_registry_client::progress::Event) + Send + Sync {
    use berth_registry_client::progress::Event;
    let blobs = std::sync::Mutex::new(std::collections::BTreeMap::new());
    move |event| {
        let Ok(mut blobs) = blobs.lock() else { return };
        match event {
            Event::BlobStarted { digest, size } => {
                blobs.insert(digest.to_string(), (0, size));
            }
            Event::BlobProgress {
                digest,
                done,
                total,
            } => {
                blobs.insert(digest.to_string(), (done, total));
            }
            Event::BlobDone { digest, .. } => {
                if let Some((done, total)) = blobs.get_mut(&digest.to_string()) {
                    *done = *total;
                }
            }
            _ => return,
        }
        let (done, total) = blobs
            .values()
            .fold((0, 0), |(d, t), (done, total)| (d + done, t + total));
        let _ = bytes.send((done, total));
    }
}

/// Pushes the image the store names `name` to `target`.
pub fn push(store: &Store, name: &str, target: &str) -> Result<String, RegistryError> {
    let reference = parse(target)?;
    let fail = |message: String| RegistryError::Transfer {
        action: "pushing",
        reference: target.to_string(),
        message,
    };
    let rt = runtime("pushing", target)?;
    rt.block_on(async {
        let layout = OciLayout::open(store.layout_dir())
            .await
            .map_err(|e| fail(e.to_string()))?;
        let client = Client::new(ClientOptions::default()).map_err(|e| fail(e.to_string()))?;
        let report = client
            .push(
                &layout,
                name,
                &reference,
                &PushOptions::default(),
                Arc::new(berth_registry_client::progress::NoProgress),
            )
            .await
            .map_err(|e| fail(e.to_string()))?;
        Ok(report.digest.to_string())
    })
}

/// Whether a `FROM` name should be looked for in a registry when the local
/// store lacks it. Everything but `scratch` can be; a local-only name simply
/// fails to pull with the registry's answer.
pub fn may_pull(image: &str) -> bool {
    image != "scratch"
}
