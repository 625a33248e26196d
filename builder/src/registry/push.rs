//! Pushing images from the store to a registry.

use super::explain::explain;
use super::session::{Session, TransferOptions};
use super::{NoProgress, ProgressSink, PushReport, RegistryError, parse};
use berth_registry_client::{Error as ClientError, PushOptions};
use berth_store::Store;
use std::sync::Arc;

/// Pushes the image the store names `name` to `target`; blobs the registry
/// has are not sent (a blob it can mount from another repository is
/// mounted).
pub fn push_image(
    store: &Store,
    name: &str,
    target: &str,
    options: &TransferOptions,
    progress: ProgressSink,
) -> Result<PushReport, RegistryError> {
    let parsed = parse(target)?;
    let session = Session::open(store, "pushing", target, options)?;
    session.runtime.block_on(async {
        let pushed = session
            .client
            .push(
                &session.layout,
                name,
                &parsed,
                &PushOptions::default(),
                progress,
            )
            .await;
        match pushed {
            Ok(report) => Ok(report),
            Err(ClientError::LocalImageNotFound { name, .. }) => Err(RegistryError::Transfer {
                action: "pushing",
                reference: target.to_string(),
                message: format!(
                    "no image named '{name}' in the local store at {}\n\
                     hint: 'berth images' lists them; build, pull or tag one under that name",
                    store.root().display()
                ),
            }),
            Err(err) => Err(explain("pushing", target, &parsed, store, None, err).await),
        }
    })
}

/// Pushes the image the store names `name` to `target` without progress and
/// returns the manifest digest.
pub fn push(store: &Store, name: &str, target: &str) -> Result<String, RegistryError> {
    push_image(
        store,
        name,
        target,
        &TransferOptions::from_env(),
        Arc::new(NoProgress),
    )
    .map(|report| report.digest.to_string())
}
