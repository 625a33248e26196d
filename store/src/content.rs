//! The blob-store trait: where pulled images land and pushed images come
//! from.
//!
//! A content store holds blobs by digest and names (tags) that point at
//! manifests. The registry client only ever goes through [`ContentStore`].
//! Writes are verified: a blob becomes visible only after its digest and
//! size were checked, and it appears atomically and durably (fsync, rename,
//! fsync of the directory).
//!
//! The implementation is [`crate::layout::OciLayout`], the one OCI image
//! layout of berth, which `skopeo copy oci:DIR:tag …` reads and writes too.

use crate::StoreError;
use crate::digest::Digest;
use crate::oci::Descriptor;
use std::future::Future;
use std::pin::Pin;
use tokio::io::AsyncRead;

/// An open blob: its size and a reader over its bytes.
pub struct BlobReader {
    /// The blob's size in bytes.
    pub size: u64,
    /// Its content.
    pub reader: Pin<Box<dyn AsyncRead + Send>>,
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
