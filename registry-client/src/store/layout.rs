//! An OCI image layout directory (`oci-layout`, `index.json`, `blobs/sha256/…`)
//! as a [`ContentStore`].
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

use super::{BlobReader, BlobWriter, ContentStore, StoreError};
use crate::manifest::{Descriptor, OCI_INDEX, REF_NAME_ANNOTATION};
use berth_store::digest::{Digest, Verifier};
use serde::{Deserialize, Serialize};
use std::io::{Seek as _, Write as _};
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

/// An OCI image layout directory. Cloning is cheap and clones share the lock
/// that serialises `index.json` updates.
#[derive(Debug, Clone)]
pub struct OciLayout {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    index_lock: tokio::sync::Mutex<()>,
}

#[derive(Serialize, Deserialize)]
struct LayoutMarker {
    #[serde(rename = "imageLayoutVersion")]
    image_layout_version: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IndexFile {
    schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Vec<Descriptor>,
    /// Fields this client does not interpret (annotations, subject, …) are kept.
    #[serde(flatten)]
    other: serde_json::Map<String, serde_json::Value>,
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
        let blobs = root.join("blobs").join("sha256");
        tokio::fs::create_dir_all(&blobs)
            .await
            .map_err(io_error("creating", &blobs))?;
        let marker = root.join(LAYOUT_FILE);
        if tokio::fs::try_exists(&marker)
            .await
            .map_err(io_error("checking", &marker))?
        {
            check_marker(&marker).await?;
        } else {
            let body = serde_json::to_vec(&LayoutMarker {
                image_layout_version: LAYOUT_VERSION.to_owned(),
            })
            .map_err(|e| malformed(&marker, e))?;
            write_atomically(&root, &marker, &body).await?;
        }
        let index = root.join(INDEX_FILE);
        if !tokio::fs::try_exists(&index)
            .await
            .map_err(io_error("checking", &index))?
        {
            let empty = IndexFile {
                schema_version: 2,
                media_type: Some(OCI_INDEX.to_owned()),
                manifests: Vec::new(),
                other: serde_json::Map::new(),
            };
            let body = serde_json::to_vec(&empty).map_err(|e| malformed(&index, e))?;
            write_atomically(&root, &index, &body).await?;
        }
        Ok(Self::at(root))
    }

    /// Opens an existing layout; fails if `root` has no `oci-layout` file.
    pub async fn open(root: impl Into<PathBuf>) -> Result<OciLayout, StoreError> {
        let root = root.into();
        check_marker(&root.join(LAYOUT_FILE)).await?;
        Ok(Self::at(root))
    }

    fn at(root: PathBuf) -> OciLayout {
        OciLayout {
            inner: Arc::new(Inner {
                root,
                index_lock: tokio::sync::Mutex::new(()),
            }),
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

    async fn read_index(&self) -> Result<IndexFile, StoreError> {
        let path = self.inner.root.join(INDEX_FILE);
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(io_error("reading", &path))?;
        serde_json::from_slice(&bytes).map_err(|e| malformed(&path, e))
    }
}

fn malformed(path: &Path, err: impl std::fmt::Display) -> StoreError {
    StoreError::Malformed {
        path: path.to_owned(),
        reason: err.to_string(),
    }
}

async fn check_marker(marker: &Path) -> Result<(), StoreError> {
    let bytes = tokio::fs::read(marker)
        .await
        .map_err(|source| StoreError::Io {
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

/// Writes a small file by writing a sibling temporary file and renaming it.
async fn write_atomically(root: &Path, path: &Path, body: &[u8]) -> Result<(), StoreError> {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let temp = root.join(format!(".{name}.{}-{n}.tmp", std::process::id()));
    tokio::fs::write(&temp, body)
        .await
        .map_err(io_error("writing", &temp))?;
    if let Err(err) = tokio::fs::rename(&temp, path).await {
        let _ = tokio::fs::remove_file(&temp).await;
        return Err(io_error("renaming into", path)(err));
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
                return Err(StoreError::BlobNotFound {
                    digest: digest.clone(),
                    root: self.inner.root.clone(),
                });
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
        let index = self.read_index().await?;
        Ok(index.manifests.into_iter().find(|entry| {
            entry
                .annotations
                .get(REF_NAME_ANNOTATION)
                .map(String::as_str)
                == Some(name)
        }))
    }

    async fn tag(&self, name: &str, descriptor: &Descriptor) -> Result<(), StoreError> {
        let _guard = self.inner.index_lock.lock().await;
        let mut index = self.read_index().await?;
        index.manifests.retain(|entry| {
            entry
                .annotations
                .get(REF_NAME_ANNOTATION)
                .map(String::as_str)
                != Some(name)
        });
        let mut entry = descriptor.clone();
        entry
            .annotations
            .insert(REF_NAME_ANNOTATION.to_owned(), name.to_owned());
        index.manifests.push(entry);
        let path = self.inner.root.join(INDEX_FILE);
        let body = serde_json::to_vec(&index).map_err(|e| malformed(&path, e))?;
        write_atomically(&self.inner.root, &path, &body).await
    }

    async fn names(&self) -> Result<Vec<(String, Descriptor)>, StoreError> {
        let index = self.read_index().await?;
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
    file: Arc<std::fs::File>,
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
    file: std::fs::File,
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
        let file = std::fs::File::create(&unique).map_err(io_error("creating", &unique))?;
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
        tokio::fs::rename(&self.temp, &self.target)
            .await
            .map_err(io_error("renaming into", &self.target))?;
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
            let descriptor = Descriptor::new(crate::manifest::OCI_MANIFEST, digest.clone(), 5);
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
