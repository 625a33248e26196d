//! Pulling images from a registry into the store.

use super::explain::explain;
use super::session::{Session, TransferOptions};
use super::{Event, ProgressSink, PullReport, RegistryError, parse};
use berth_registry_client::PullOptions;
use berth_store::Store;
use std::sync::Arc;

/// Pulls `image` into the store under `name` (its local name, see
/// [`berth_store::tags::normalize`]). Blobs the store already has are not
/// downloaded; the name is written last, so a failed pull leaves no tag.
pub fn pull_image(
    store: &Store,
    image: &str,
    name: &str,
    options: &TransferOptions,
    progress: ProgressSink,
) -> Result<PullReport, RegistryError> {
    let parsed = parse(image)?;
    let session = Session::open(store, "pulling", image, options)?;
    let target = session.layout.clone();
    let pull_options = PullOptions {
        platform: options.platform.clone(),
        all_platforms: false,
    };
    session.runtime.block_on(async {
        let pulled = session
            .client
            .pull(&parsed, &target, name, &pull_options, progress)
            .await;
        match pulled {
            Ok(report) => Ok(report),
            Err(err) => {
                Err(explain("pulling", image, &parsed, store, Some(&session.client), err).await)
            }
        }
    })
}

/// Pulls `image` into the store under `name`, sending (bytes received, bytes
/// to receive) over all blobs to `bytes` as they move (a `FROM` pull's
/// progress).
pub fn pull(
    store: &Store,
    image: &str,
    name: &str,
    bytes: std::sync::mpsc::Sender<(u64, u64)>,
) -> Result<(), RegistryError> {
    pull_image(
        store,
        image,
        name,
        &TransferOptions::from_env(),
        Arc::new(byte_counter(bytes)),
    )
    .map(|_report| ())
}

/// A registry progress receiver that sums the blobs' byte counts and sends
/// (done, total) on each change.
fn byte_counter(bytes: std::sync::mpsc::Sender<(u64, u64)>) -> impl Fn(Event) + Send + Sync {
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
