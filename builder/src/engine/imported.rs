//! Cache records from outside the local store: a build given `--cache-from`
//! asks a [`RecordSource`] for every key its store misses, and fetches the
//! layer blob of such a record only when something reads it (a later step
//! that runs on top of it, or the image being written). A hit that a later
//! hit supersedes therefore never moves its layer.

use crate::cache::CacheRecord;
use berth_store::oci::Descriptor;
use berth_store::{Digest, Store};

/// The error a [`RecordSource`] gives for a blob it could not deliver.
pub type FetchError = Box<dyn std::error::Error + Send + Sync>;

/// Cache records imported from another machine (a registry or a directory).
pub trait RecordSource: Sync {
    /// The record for `key`, if the source has one.
    fn lookup(&self, key: &Digest) -> Option<CacheRecord>;

    /// Puts the blobs into `store` (the ones it already has are skipped).
    /// Called from several build threads at once.
    fn fetch_blobs(&self, store: &Store, blobs: &[Descriptor]) -> Result<(), FetchError>;
}
