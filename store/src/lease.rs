//! Leases keep what a running operation uses safe from removal.
//!
//! A build (or a pull, or a container start) holds a lease, a shared lock on
//! `locks/collect`, for its whole run, from the first blob it looks at until
//! its result is tagged or recorded. Removal of blobs, snapshots and cache
//! records (`rmi`, `prune`) happens only under the exclusive collector lock,
//! so it waits for running leases to end and never deletes something a build
//! has already decided to reuse.

use super::lock::{FileLock, LockMode};
use super::{Store, StoreError, io_err};

/// The lock file leases and the collector share.
const COLLECT_LOCK: &str = "collect";

impl Store {
    /// Takes a lease; removal waits until every lease is dropped.
    pub fn lease(&self) -> Result<FileLock, StoreError> {
        let path = self.lock_path(COLLECT_LOCK);
        FileLock::acquire(&path, LockMode::Shared).map_err(io_err("locking", &path))
    }

    /// Takes the collector lock, waiting for running leases to end.
    pub fn collector_lock(&self) -> Result<FileLock, StoreError> {
        let path = self.lock_path(COLLECT_LOCK);
        FileLock::acquire(&path, LockMode::Exclusive).map_err(io_err("locking", &path))
    }

    /// Takes the collector lock only if no lease is held right now.
    pub fn try_collector_lock(&self) -> Result<Option<FileLock>, StoreError> {
        let path = self.lock_path(COLLECT_LOCK);
        FileLock::try_acquire(&path, LockMode::Exclusive).map_err(io_err("locking", &path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_keeps_the_collector_out_until_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let lease = store.lease().unwrap();
        let second = store.lease().unwrap();
        assert!(store.try_collector_lock().unwrap().is_none());
        drop(lease);
        assert!(store.try_collector_lock().unwrap().is_none());
        drop(second);
        let collector = store.try_collector_lock().unwrap();
        assert!(collector.is_some());
        assert!(store.try_collector_lock().unwrap().is_none());
    }
}
