//! Progress reporting: the client describes what it does as [`Event`]s sent to
//! a caller-supplied [`Progress`] sink; the CLI renders them, tests count them.

use berth_store::digest::Digest;
use std::sync::Arc;
use std::time::Duration;

/// What happened to one blob in the end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobOutcome {
    /// It was uploaded.
    Uploaded,
    /// It was downloaded into the local store.
    Downloaded,
    /// The other side already had it, so nothing moved.
    AlreadyPresent,
    /// The registry linked it from another repository without an upload.
    Mounted {
        /// The repository it was mounted from.
        from: String,
    },
}

/// A progress event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A blob transfer starts (or starts over after a failed attempt).
    BlobStarted {
        /// The blob.
        digest: Digest,
        /// Its size in bytes.
        size: u64,
    },
    /// Bytes of a blob moved; `done` counts from the start of the blob.
    BlobProgress {
        /// The blob.
        digest: Digest,
        /// Bytes moved so far.
        done: u64,
        /// The blob's size.
        total: u64,
    },
    /// A download was cut off and continues from `offset` with a Range request.
    BlobResumed {
        /// The blob.
        digest: Digest,
        /// Where the download continues.
        offset: u64,
    },
    /// A blob is finished.
    BlobDone {
        /// The blob.
        digest: Digest,
        /// What happened.
        outcome: BlobOutcome,
    },
    /// A manifest or index was written (to the registry on push, to the store
    /// on pull).
    ManifestDone {
        /// Its digest.
        digest: Digest,
        /// Its media type.
        media_type: String,
    },
    /// A request failed in a way worth retrying; it is retried after `wait`.
    Retrying {
        /// The method and URL.
        request: String,
        /// Why: a status code or a connection error.
        reason: String,
        /// The attempt that failed (1-based).
        attempt: u32,
        /// How long the client waits before the next attempt.
        wait: Duration,
    },
}

/// A sink for progress events. Implemented for closures.
pub trait Progress: Send + Sync {
    /// Receives one event. Must not block for long: transfers wait for it.
    fn event(&self, event: Event);
}

impl<F: Fn(Event) + Send + Sync> Progress for F {
    fn event(&self, event: Event) {
        self(event);
    }
}

/// A sink that drops every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn event(&self, _event: Event) {}
}

/// The shared form the client passes around its tasks.
pub type ProgressSink = Arc<dyn Progress>;
