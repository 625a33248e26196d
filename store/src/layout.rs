//! The one OCI image layout implementation of berth: a directory with
//! `oci-layout`, `index.json` and `blobs/sha256/…`. The local store's `oci/`
//! is one; so are the layouts `--output type=oci` and `--cache-to type=local`
//! write. Pulls write into it through [`ContentStore`]; the store's
//! synchronous blob writer ([`crate::blobs`]) publishes through
//! [`publish_blob`] here.
//!
//! Durability: every blob and every `index.json` is written to a staging
//! file, fsynced, renamed into place, and its directory fsynced, so after a
//! power loss a name in `index.json` never points at a torn blob.
//! `index.json` is only ever rewritten under an exclusive `flock` of the
//! layout directory (in-process tasks and other processes alike), and
//! fields berth does not know are kept.
//!
//! Names are the `org.opencontainers.image.ref.name` annotations of the
//! `index.json` entries, which is what `skopeo copy … oci:DIR:NAME` uses.
//! Blobs are written to `.ingest/` first and renamed into `blobs/sha256/` once
//! verified, so readers never see partial or corrupt content.
//!
//! A download in progress lives in `.ingest/<hex>.partial`, locked by its
//! writer. If the process dies or the transfer is abandoned, the file stays, and
//! the next writer of the same blob continues after its bytes (a pull resumes
//! with a `Range` request instead of starting over). Content that failed to
//! verify, or whose writing failed on the store's side (a full disk), is
//! removed instead.

use crate::content::{BlobReader, BlobWriter, ContentStore};
use crate::digest::{Digest, Verifier};
use crate::oci::{ANNOTATION_REF_NAME as REF_NAME_ANNOTATION, Descriptor, Index};
use crate::{StoreError, atomic};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{Seek as _, Write as _};
use std::os::fd::AsRawFd as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::AsyncReadExt;

const LAYOUT_FILE: &str = "oci-layout";
const INDEX_FILE: &str = "index.json";
const INGEST_DIR: &str = ".ingest";
const LAYOUT_VERSION: &str = "1.0.0";
/// Writes are batched to this size: network reads arrive in small pieces and
/// each file write is a trip to tokio's blocking pool.
const WRITE_BUFFER: usize = 1024 * 1024;

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// An OCI image layout directory. Cloning is cheap.
#[derive(Debug, Clone)]
pub struct OciLayout {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct LayoutMarker {
    #[serde(rename = "imageLayoutVersion")]
    image_layout_version: String,
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.to_owned();
    move |source| StoreError::Io {
        action,
        path,
        source,
    }
}

impl OciLayout {
    /// Opens the layout at `root`, creating the directory, `oci-layout`,
    /// `index.json` and `blobs/sha256` as needed.
    pub async fn create(root: impl Into<PathBuf>) -> Result<OciLayout, StoreError> {
        let root = root.into();
        blocking(&root.clone(), move || OciLayout::create_sync(root)).await
    }

    /// [`OciLayout::create`] for synchronous callers.
    pub fn create_sync(root: impl Into<PathBuf>) -> Result<OciLayout, StoreError> {
        let root = root.into();
        let blobs = root.join("blobs").join("sha256");
        std::fs::create_dir_all(&blobs).map_err(io_error("creating", &blobs))?;
        let marker = root.join(LAYOUT_FILE);
        if marker.exists() {
            check_marker_sync(&marker)?;
        } else {
            let body = serde_json::to_vec(&LayoutMarker {
                image_layout_version: LAYOUT_VERSION.to_owned(),
            })
            .map_err(|e| malformed(&marker, e))?;
            atomic::write(&marker, &body).map_err(io_error("writing", &marker))?;
        }
        let layout = Self::at(root);
        if !layout.index_path().exists() {
            layout.edit_index(|_| true)?;
        }
        Ok(layout)
    }

    /// Opens an existing layout; fails if `root` has no `oci-layout` file.
    pub async fn open(root: impl Into<PathBuf>) -> Result<OciLayout, StoreError> {
        let root = root.into();
        let marker = root.join(LAYOUT_FILE);
        blocking(&marker.clone(), move || check_marker_sync(&marker)).await?;
        Ok(Self::at(root))
    }

    fn at(root: PathBuf) -> OciLayout {
        OciLayout {
            inner: Arc::new(Inner { root }),
        }
    }

    /// The layout's directory.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// Where the blob with this digest lives (whether or not it exists).
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.inner
            .root
            .join("blobs")
            .join(digest.algorithm())
            .join(digest.hex())
    }

    /// The staging file a resumable download of `digest` uses.
    pub fn partial_path(&self, digest: &Digest) -> PathBuf {
        self.inner
            .root
            .join(INGEST_DIR)
            .join(format!("{}.partial", digest.hex()))
    }

    fn temp_path(&self, digest: &Digest) -> PathBuf {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        self.inner.root.join(INGEST_DIR).join(format!(
            "{}-{}-{n}",
            digest.hex(),
            std::process::id()
        ))
    }

    /// The layout's `index.json`.
    pub fn index_path(&self) -> PathBuf {
        self.inner.root.join(INDEX_FILE)
    }

    /// Reads `index.json`; a layout without one has an empty index.
    pub fn read_index(&self) -> Result<Index, StoreError> {
        let path = self.index_path();
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|source| StoreError::Corrupt { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Index::default()),
            Err(e) => Err(io_error("reading", &path)(e)),
        }
    }

    /// Edits `index.json` under the layout's lock: `edit` gets the whole
    /// index (unknown fields included) and it is written back, durably,
    /// only when `edit` returns true.
    pub fn edit_index(&self, edit: impl FnOnce(&mut Index) -> bool) -> Result<(), StoreError> {
        let _lock = self.lock_index()?;
        let mut index = self.read_index()?;
        if edit(&mut index) {
            let path = self.index_path();
            let body = serde_json::to_vec(&index).map_err(|source| StoreError::Corrupt {
                path: path.clone(),
                source,
            })?;
            atomic::write(&path, &body).map_err(io_error("writing", &path))?;
        }
        Ok(())
    }

    /// Stores `bytes` as a blob (staged in `.ingest/`, then published
    /// durably) and returns its digest.
    pub fn put(&self, bytes: &[u8]) -> Result<Digest, StoreError> {
        let digest = Digest::of(bytes);
        let dest = self.blob_path(&digest);
        if dest.exists() {
            return Ok(digest);
        }
        let staged = self.sync_staging_path(&digest)?;
        let result = (|| {
            let mut file = File::create(&staged).map_err(io_error("creating", &staged))?;
            file.write_all(bytes)
                .map_err(io_error("writing", &staged))?;
            publish_blob(&file, &staged, &dest)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&staged);
        }
        result.map(|()| digest)
    }

    /// Adds the blob `digest` from the file `source` (a blob of another
    /// layout, the local store's): hard-linked when both are on one
    /// filesystem, copied otherwise, and made durable either way.
    pub fn add_blob_file(&self, source: &Path, digest: &Digest) -> Result<(), StoreError> {
        let dest = self.blob_path(digest);
        if dest.exists() {
            return Ok(());
        }
        let staged = self.sync_staging_path(digest)?;
        let result = (|| {
            if std::fs::hard_link(source, &staged).is_err() {
                std::fs::copy(source, &staged).map_err(io_error("copying", source))?;
            }
            let file = File::open(&staged).map_err(io_error("opening", &staged))?;
            publish_blob(&file, &staged, &dest)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&staged);
        }
        result
    }

    /// A fresh staging path in `.ingest/` for a synchronous writer.
    fn sync_staging_path(&self, digest: &Digest) -> Result<PathBuf, StoreError> {
        let ingest = self.inner.root.join(INGEST_DIR);
        std::fs::create_dir_all(&ingest).map_err(io_error("creating", &ingest))?;
        Ok(self.temp_path(digest))
    }

    /// Takes the exclusive lock every `index.json` writer holds: a `flock`
    /// of the layout directory itself, so the layout needs no lock file and
    /// every process and task that edits the index waits for the others.
    fn lock_index(&self) -> Result<File, StoreError> {
        let root = &self.inner.root;
        let dir = File::open(root).map_err(io_error("opening", root))?;
        loop {
            // SAFETY: flock on a descriptor this function owns.
            if unsafe { libc::flock(dir.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(dir);
            }
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(io_error("locking", root)(err));
            }
        }
    }
}

/// Publishes a staged blob at `dest` (its digest's path): the staged file is
/// fsynced, renamed into place and the blobs directory fsynced, so nothing
/// written after this (a tag) can name a blob a power loss would tear. When
/// the blob is already there, the staged copy is dropped.
pub fn publish_blob(file: &File, staged: &Path, dest: &Path) -> Result<(), StoreError> {
    if dest.exists() {
        let _ = std::fs::remove_file(staged);
        return Ok(());
    }
    file.sync_all().map_err(io_error("syncing", staged))?;
    std::fs::rename(staged, dest).map_err(io_error("renaming into", dest))?;
    atomic::sync_parent(dest).map_err(io_error("syncing the directory of", dest))
}

/// Runs blocking filesystem work off the async runtime.
async fn blocking<T: Send + 'static>(
    place: &Path,
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| StoreError::Io {
            action: "waiting for a blocking task on",
            path: place.to_owned(),
            source: std::io::Error::other(err.to_string()),
        })?
}

fn malformed(path: &Path, err: impl std::fmt::Display) -> StoreError {
    StoreError::Malformed {
        path: path.to_owned(),
        reason: err.to_string(),
    }
}

fn check_marker_sync(marker: &Path) -> Result<(), StoreError> {
    let bytes = std::fs::read(marker).map_err(|source| StoreError::Io {
        action: "reading the OCI layout marker",
        path: marker.to_owned(),
        source,
    })?;
    let parsed: LayoutMarker = serde_json::from_slice(&bytes).map_err(|e| malformed(marker, e))?;
    if parsed.image_layout_version != LAYOUT_VERSION {
        return Err(malformed(
            marker,
            format!(
                "unsupported imageLayoutVersion '{}' (expected {LAYOUT_VERSION})",
                parsed.image_layout_version
            ),
        ));
    }
    Ok(())
}

impl ContentStore for OciLayout {
    type Writer = LayoutWriter;

    fn location(&self) -> String {
        self.inner.root.display().to_string()
    }

    async fn has_blob(&self, digest: &Digest) -> Result<bool, StoreError> {
        let path = self.blob_path(digest);
        tokio::fs::try_exists(&path)
            .await
            .map_err(io_error("checking", &path))
    }

    async fn open_blob(&self, digest: &Digest) -> Result<BlobReader, StoreError> {
        let path = self.blob_path(digest);
        let file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::MissingBlob(digest.clone()));
            }
            Err(err) => return Err(io_error("opening", &path)(err)),
        };
        let size = file
            .metadata()
            .await
            .map_err(io_error("reading metadata of", &path))?
            .len();
        Ok(BlobReader {
            size,
            reader: Box::pin(file),
        })
    }

    async fn read_blob(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>, StoreError> {
        let blob = self.open_blob(digest).await?;
        if blob.size > limit {
            return Err(StoreError::TooLarge {
                digest: digest.clone(),
                size: blob.size,
                limit,
            });
        }
        let mut bytes = Vec::with_capacity(usize::try_from(blob.size).unwrap_or(0));
        let path = self.blob_path(digest);
        blob.reader
            .take(limit)
            .read_to_end(&mut bytes)
            .await
            .map_err(io_error("reading", &path))?;
        let actual = Digest::of(&bytes);
        if actual != *digest {
            return Err(StoreError::DigestMismatch {
                expected: digest.clone(),
                actual,
                size: bytes.len() as u64,
            });
        }
        Ok(bytes)
    }

    async fn write_blob(&self, expected: &Descriptor) -> Result<LayoutWriter, StoreError> {
        let ingest = self.inner.root.join(INGEST_DIR);
        tokio::fs::create_dir_all(&ingest)
            .await
            .map_err(io_error("creating", &ingest))?;
        let partial = self.partial_path(&expected.digest);
        let unique = self.temp_path(&expected.digest);
        let size = expected.size;
        let staged = tokio::task::spawn_blocking(move || open_staging(partial, unique, size))
            .await
            .map_err(|err| StoreError::Io {
                action: "opening a staging file",
                path: ingest.clone(),
                source: std::io::Error::other(err.to_string()),
            })??;
        Ok(LayoutWriter {
            expected: expected.clone(),
            target: self.blob_path(&expected.digest),
            temp: staged.path,
            file: Arc::new(staged.file),
            buffer: Vec::with_capacity(WRITE_BUFFER),
            in_flight: None,
            verifier: staged.verifier,
            resumable: staged.resumable,
            poisoned: false,
        })
    }

    async fn put_blob(&self, bytes: &[u8]) -> Result<Digest, StoreError> {
        let digest = Digest::of(bytes);
        if !self.has_blob(&digest).await? {
            let descriptor = Descriptor::new(
                "application/octet-stream",
                digest.clone(),
                bytes.len() as u64,
            );
            let mut writer = self.write_blob(&descriptor).await?;
            writer.write(bytes).await?;
            writer.commit().await?;
        }
        Ok(digest)
    }

    async fn resolve(&self, name: &str) -> Result<Option<Descriptor>, StoreError> {
        let layout = self.clone();
        let index = blocking(self.root(), move || layout.read_index()).await?;
        Ok(index.manifests.into_iter().find(|entry| {
            entry
                .annotations
                .get(REF_NAME_ANNOTATION)
                .map(String::as_str)
                == Some(name)
        }))
    }

    async fn tag(&self, name: &str, descriptor: &Descriptor) -> Result<(), StoreError> {
        let layout = self.clone();
        let name = name.to_owned();
        let mut entry = descriptor.clone();
        blocking(self.root(), move || {
            layout.edit_index(|index| {
                index.manifests.retain(|entry| {
                    entry
                        .annotations
                        .get(REF_NAME_ANNOTATION)
                        .map(String::as_str)
                        != Some(name.as_str())
                });
                entry
                    .annotations
                    .insert(REF_NAME_ANNOTATION.to_owned(), name);
                index.manifests.push(entry);
                true
            })
        })
        .await
    }

    async fn names(&self) -> Result<Vec<(String, Descriptor)>, StoreError> {
        let layout = self.clone();
        let index = blocking(self.root(), move || layout.read_index()).await?;
        Ok(index
            .manifests
            .into_iter()
            .filter_map(|entry| {
                let name = entry.annotations.get(REF_NAME_ANNOTATION)?.clone();
                Some((name, entry))
            })
            .collect())
    }
}

/// A blob being written into an [`OciLayout`]; see [`BlobWriter`].
///
/// Bytes are gathered into a buffer that, once full, is written by tokio's
/// blocking pool while the next one fills: one write in flight, no copy.
#[derive(Debug)]
pub struct LayoutWriter {
    expected: Descriptor,
    target: PathBuf,
    temp: PathBuf,
    file: Arc<File>,
    buffer: Vec<u8>,
    in_flight: Option<tokio::task::JoinHandle<std::io::Result<Vec<u8>>>>,
    verifier: Verifier,
    /// The staging file is the blob's `.partial` file, kept for the next
    /// writer when this one is dropped unfinished.
    resumable: bool,
    /// Something failed to verify or to be written: the staging file must go.
    poisoned: bool,
}

/// An opened staging file and what it already holds.
struct Staged {
    path: PathBuf,
    file: File,
    verifier: Verifier,
    resumable: bool,
}

/// Opens the blob's `.partial` file, locked, and hashes what an earlier writer
/// left in it; when another writer holds it, a fresh private file is used.
fn open_staging(partial: PathBuf, unique: PathBuf, size: u64) -> Result<Staged, StoreError> {
    use std::io::Read as _;
    use std::os::fd::AsRawFd as _;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&partial)
        .map_err(io_error("opening", &partial))?;
    // SAFETY: flock on a descriptor this function owns; no memory is involved.
    let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
    if !locked {
        // Another process or task is downloading the same blob right now.
        let file = File::create(&unique).map_err(io_error("creating", &unique))?;
        return Ok(Staged {
            path: unique,
            file,
            verifier: Verifier::new(),
            resumable: false,
        });
    }
    let mut verifier = Verifier::new();
    let mut chunk = vec![0u8; WRITE_BUFFER];
    loop {
        let read = file
            .read(&mut chunk)
            .map_err(io_error("reading", &partial))?;
        if read == 0 {
            break;
        }
        verifier.update(&chunk[..read]);
    }
    if verifier.len() > size {
        // Not a prefix of this blob: start over.
        file.set_len(0).map_err(io_error("truncating", &partial))?;
        file.seek(std::io::SeekFrom::Start(0))
            .map_err(io_error("rewinding", &partial))?;
        verifier = Verifier::new();
    }
    Ok(Staged {
        path: partial,
        file,
        verifier,
        resumable: true,
    })
}

impl LayoutWriter {
    /// Waits for the write in flight, returning its buffer for reuse.
    async fn settle(&mut self) -> Result<Vec<u8>, StoreError> {
        let Some(write) = self.in_flight.take() else {
            return Ok(Vec::with_capacity(WRITE_BUFFER));
        };
        let mut buffer = write
            .await
            .map_err(|err| std::io::Error::other(err.to_string()))
            .and_then(|result| result)
            .map_err(io_error("writing", &self.temp))?;
        buffer.clear();
        Ok(buffer)
    }

    /// Hands the full buffer to the blocking pool after the previous write.
    async fn submit(&mut self) -> Result<(), StoreError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let spare = self.settle().await?;
        let full = std::mem::replace(&mut self.buffer, spare);
        let file = Arc::clone(&self.file);
        self.in_flight = Some(tokio::task::spawn_blocking(move || {
            (&*file).write_all(&full)?;
            Ok(full)
        }));
        Ok(())
    }
}

impl LayoutWriter {
    /// Marks the staging file for removal when `result` is an error.
    fn poison_on_error<T>(&mut self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if result.is_err() {
            self.poisoned = true;
        }
        result
    }

    async fn append(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        self.verifier.update(bytes);
        // A server sending more than the descriptor says is cut off here rather
        // than being allowed to fill the disk.
        if self.verifier.len() > self.expected.size {
            return Err(StoreError::SizeMismatch {
                digest: self.expected.digest.clone(),
                expected: self.expected.size,
                actual: self.verifier.len(),
            });
        }
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= WRITE_BUFFER {
            self.submit().await?;
        }
        Ok(())
    }

    async fn finish(&mut self) -> Result<(), StoreError> {
        self.submit().await?;
        self.settle().await?;
        let verifier = std::mem::take(&mut self.verifier);
        let size = verifier.len();
        if size != self.expected.size {
            return Err(StoreError::SizeMismatch {
                digest: self.expected.digest.clone(),
                expected: self.expected.size,
                actual: size,
            });
        }
        let actual = verifier.finish();
        if actual != self.expected.digest {
            return Err(StoreError::DigestMismatch {
                expected: self.expected.digest.clone(),
                actual,
                size,
            });
        }
        let file = Arc::clone(&self.file);
        let (temp, target) = (self.temp.clone(), self.target.clone());
        blocking(&self.target, move || publish_blob(&file, &temp, &target)).await?;
        // The staging file is gone; Drop must not remove anything now.
        self.temp = PathBuf::new();
        Ok(())
    }
}

impl BlobWriter for LayoutWriter {
    async fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        let result = self.append(bytes).await;
        self.poison_on_error(result)
    }

    fn written(&self) -> u64 {
        self.verifier.len()
    }

    async fn restart(&mut self) -> Result<(), StoreError> {
        self.buffer = self.settle().await?;
        self.verifier = Verifier::new();
        self.file
            .set_len(0)
            .map_err(io_error("truncating", &self.temp))?;
        (&*self.file)
            .seek(std::io::SeekFrom::Start(0))
            .map_err(io_error("rewinding", &self.temp))?;
        Ok(())
    }

    async fn commit(mut self) -> Result<(), StoreError> {
        let result = self.finish().await;
        self.poison_on_error(result)
    }
}

impl Drop for LayoutWriter {
    fn drop(&mut self) {
        if self.temp.as_os_str().is_empty() {
            return;
        }
        if !self.resumable || self.poisoned {
            let _ = std::fs::remove_file(&self.temp);
            return;
        }
        // Kept for the next writer: what is buffered goes in too, unless a
        // write is still in flight (then the file holds a shorter prefix,
        // which is as good).
        if self.in_flight.is_none() && !self.buffer.is_empty() {
            let _ = (&*self.file).write_all(&self.buffer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn writes_verified_blobs_and_tags() {
        runtime().block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let layout = OciLayout::create(dir.path()).await.unwrap();
            let digest = layout.put_blob(b"hello").await.unwrap();
            assert!(layout.has_blob(&digest).await.unwrap());
            assert_eq!(layout.read_blob(&digest, 100).await.unwrap(), b"hello");
            let descriptor = Descriptor::new(crate::oci::MEDIA_MANIFEST, digest.clone(), 5);
            layout.tag("v1", &descriptor).await.unwrap();
            layout.tag("v1", &descriptor).await.unwrap();
            layout.tag("v2", &descriptor).await.unwrap();
            let names = layout.names().await.unwrap();
            assert_eq!(
                names.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
                ["v1", "v2"]
            );
            assert_eq!(
                layout.resolve("v2").await.unwrap().map(|d| d.digest),
                Some(digest)
            );
            let reopened = OciLayout::open(dir.path()).await.unwrap();
            assert!(reopened.resolve("missing").await.unwrap().is_none());
        });
    }

    #[test]
    fn corrupt_or_short_content_is_discarded() {
        runtime().block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let layout = OciLayout::create(dir.path()).await.unwrap();
            let wanted = Descriptor::new("application/octet-stream", Digest::of(b"good"), 4);
            let mut writer = layout.write_blob(&wanted).await.unwrap();
            writer.write(b"evil").await.unwrap();
            let err = writer.commit().await.unwrap_err();
            assert!(
                err.to_string().contains(&wanted.digest.to_string()),
                "{err}"
            );
            let mut short = layout.write_blob(&wanted).await.unwrap();
            short.write(b"go").await.unwrap();
            assert!(matches!(
                short.commit().await,
                Err(StoreError::SizeMismatch { .. })
            ));
            let mut long = layout.write_blob(&wanted).await.unwrap();
            assert!(long.write(b"good!").await.is_err());
            drop(long);
            assert!(!layout.has_blob(&wanted.digest).await.unwrap());
            let leftovers = std::fs::read_dir(dir.path().join(INGEST_DIR))
                .unwrap()
                .count();
            assert_eq!(leftovers, 0, "temporary files were left behind");
        });
    }

    #[test]
    fn an_abandoned_download_is_continued_by_the_next_writer() {
        runtime().block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let layout = OciLayout::create(dir.path()).await.unwrap();
            let wanted = Descriptor::new("application/octet-stream", Digest::of(b"good!"), 5);
            let mut first = layout.write_blob(&wanted).await.unwrap();
            first.write(b"goo").await.unwrap();
            // A second writer of the same blob meanwhile gets a private file.
            let mut concurrent = layout.write_blob(&wanted).await.unwrap();
            assert_eq!(concurrent.written(), 0);
            concurrent.write(b"good!").await.unwrap();
            concurrent.commit().await.unwrap();
            drop(first);
            assert!(layout.partial_path(&wanted.digest).exists());

            let other = Descriptor::new("application/octet-stream", Digest::of(b"other"), 5);
            let mut writer = layout.write_blob(&other).await.unwrap();
            writer.write(b"oth").await.unwrap();
            drop(writer);
            let mut resumed = layout.write_blob(&other).await.unwrap();
            assert_eq!(resumed.written(), 3, "the staged prefix is kept");
            resumed.write(b"er").await.unwrap();
            resumed.commit().await.unwrap();
            assert_eq!(layout.read_blob(&other.digest, 5).await.unwrap(), b"other");
            assert!(!layout.partial_path(&other.digest).exists());

            // A staged prefix that turns out wrong is removed at commit.
            let mut bad = layout.write_blob(&other).await.unwrap();
            bad.write(b"xyz").await.unwrap();
            drop(bad);
            let mut resumed = layout.write_blob(&other).await.unwrap();
            resumed.write(b"er").await.unwrap();
            assert!(resumed.commit().await.is_err());
            assert!(!layout.partial_path(&other.digest).exists());
        });
    }

    #[test]
    fn restart_discards_partial_content() {
        runtime().block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let layout = OciLayout::create(dir.path()).await.unwrap();
            let wanted = Descriptor::new("application/octet-stream", Digest::of(b"good"), 4);
            let mut writer = layout.write_blob(&wanted).await.unwrap();
            writer.write(b"xx").await.unwrap();
            writer.restart().await.unwrap();
            assert_eq!(writer.written(), 0);
            writer.write(b"good").await.unwrap();
            writer.commit().await.unwrap();
            assert_eq!(layout.read_blob(&wanted.digest, 4).await.unwrap(), b"good");
        });
    }
}
