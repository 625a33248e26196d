//! Containers that `berth run` starts: one record per container under the
//! store's `containers/<id>/`, with the bundle it runs from.
//!
//! The records are what `berth ps`, `stop`, `rm` and `logs` work on, and what
//! `berth rmi` consults to refuse removing an image a container still uses.

use crate::store::{Digest, Store, StoreError, io_err};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::PathBuf;

/// The file in a container's directory that holds its record.
pub const RECORD_FILE: &str = "container.json";

/// What berth remembers of a container it started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// The container id (also the runtime's id).
    pub id: String,
    /// The image name the user gave.
    pub image: String,
    /// The manifest digest of that image when the container was created.
    pub image_digest: Digest,
}

/// The directory that holds every container's directory.
pub fn containers_dir(store: &Store) -> PathBuf {
    store.root().join("containers")
}

/// Every container record in the store; unreadable records are skipped with
/// a warning, since a half-written one belongs to a container being created.
pub fn list(store: &Store) -> Result<Vec<ContainerRecord>, StoreError> {
    let dir = containers_dir(store);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("listing", &dir)(e)),
    };
    let mut records = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err("listing", &dir))?;
        let path = entry.path().join(RECORD_FILE);
        match fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(record) => records.push(record),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "skipping an unreadable container record")
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("reading", &path)(e)),
        }
    }
    records.sort_by(|a: &ContainerRecord, b| a.id.cmp(&b.id));
    Ok(records)
}

/// The manifest digests of the images that containers in the store use.
pub fn images_in_use(store: &Store) -> Result<BTreeSet<Digest>, StoreError> {
    Ok(list(store)?.into_iter().map(|r| r.image_digest).collect())
}
