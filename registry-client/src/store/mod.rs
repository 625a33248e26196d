//! Local content stores: where pulled images land and pushed images come from.
//!
//! A store holds blobs by digest and names (tags) that point at manifests. The
//! client only ever goes through [`ContentStore`], so the builder's store and
//! other backends plug in by implementing it. Writes are verified: a blob
//! becomes visible only after its digest and size were checked, and it appears
//! atomically (write to a temporary file, then rename).
//!
//! The first implementation is [`OciLayout`], an OCI image layout directory
//! that `skopeo copy oci:DIR:tag …` reads and writes too.

mod layout;

pub use layout::OciLayout;

use crate::manifest::Descriptor;
use berth_store::digest::Digest;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use tokio::io::AsyncRead;

/// An open blob: its size and a reader over its bytes.
pub struct BlobReader {
    /// The blob's size in bytes.
    pub size: u64,
    /// Its content.
    pub reader: Pin<Box<dyn AsyncRead + Send>>,
}

/// What went wrong in a content store. Messages name the path or digest.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A filesystem operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done, e.g. "reading".
        action: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The store has no blob with this digest.
    #[error("blob {digest} is not in the store at {}", root.display())]
    BlobNotFound {
        /// The missing digest.
        digest: Digest,
        /// The store's location.
        root: PathBuf,
    },
    /// Content did not hash to the digest it was written or read under; it was
    /// discarded.
    #[error(
        "content for {expected} does not match its digest: got {actual} ({size} bytes); \
         the corrupt data was discarded"
    )]
    DigestMismatch {
        /// The digest the content was supposed to have.
        expected: Digest,
        /// The digest it had.
        actual: Digest,
        /// How many bytes were received.
        size: u64,
    },
    /// Content had a different size than its descriptor said.
    #[error(
        "content for {digest} has the wrong size: expected {expected} bytes, got {actual}; \
         it was discarded"
    )]
    SizeMismatch {
        /// The blob's digest.
        digest: Digest,
        /// The size the descriptor declared.
        expected: u64,
        /// The size received so far.
        actual: u64,
    },
    /// A store metadata file (such as `index.json`) is malformed.
    #[error("malformed {}: {reason}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A blob was larger than the caller allowed.
    #[error("blob {digest} is {size} bytes, more than the limit of {limit}")]
    TooLarge {
        /// The blob's digest.
        digest: Digest,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
}

/// A blob being written. Nothing is visible in the store until [`commit`]
/// succeeds; dropping the writer without committing discards what was written.
///
/// [`commit`]: BlobWriter::commit
pub trait BlobWriter: Send {
    /// Appends bytes, hashing them on the way.
    fn write(&mut self, bytes: &[u8]) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// How many bytes were written so far: where a resumed download continues.
    fn written(&self) -> u64;

    /// Discards everything written, to start over (when a server ignores a
    /// `Range` request and sends the whole blob again).
    fn restart(&mut self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Checks the size and digest against the descriptor the writer was opened
    /// for and, if they match, makes the blob visible atomically. On a mismatch
    /// the data is discarded and the error names both digests.
    fn commit(self) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// A local store of blobs and named manifests.
pub trait ContentStore: Send + Sync + 'static {
    /// The writer [`ContentStore::write_blob`] returns.
    type Writer: BlobWriter + 'static;

    /// Where the store is, for messages (a path or URL).
    fn location(&self) -> String;

    /// Whether the store holds the blob.
    fn has_blob(&self, digest: &Digest) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Opens a blob for reading.
    fn open_blob(
        &self,
        digest: &Digest,
    ) -> impl Future<Output = Result<BlobReader, StoreError>> + Send;

    /// Reads a whole (small) blob, refusing ones larger than `limit`, and checks
    /// its digest.
    fn read_blob(
        &self,
        digest: &Digest,
        limit: u64,
    ) -> impl Future<Output = Result<Vec<u8>, StoreError>> + Send;

    /// Starts writing the blob `expected` describes.
    fn write_blob(
        &self,
        expected: &Descriptor,
    ) -> impl Future<Output = Result<Self::Writer, StoreError>> + Send;

    /// Writes a small blob from memory and returns its digest.
    fn put_blob(&self, bytes: &[u8]) -> impl Future<Output = Result<Digest, StoreError>> + Send;

    /// The descriptor a name points at, if any.
    fn resolve(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<Descriptor>, StoreError>> + Send;

    /// Points a name at a manifest or index (already in the store), replacing
    /// what it pointed at before.
    fn tag(
        &self,
        name: &str,
        descriptor: &Descriptor,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Every named entry, as (name, descriptor).
    fn names(&self) -> impl Future<Output = Result<Vec<(String, Descriptor)>, StoreError>> + Send;
}
