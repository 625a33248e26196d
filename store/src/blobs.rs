//! Content-addressed blobs under `oci/blobs/sha256/`: the synchronous face
//! of the store's [`crate::layout::OciLayout`]. Content is staged in the
//! store's `tmp/` and published by the layout's one routine
//! ([`layout::publish_blob`]: fsync, rename, fsync of the directory).

use super::digest::{Digest, HashingWriter};
use super::{StoreError, io_err, layout, tmp};
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// The blobs of one image layout.
#[derive(Debug, Clone)]
pub struct BlobStore {
    layout: PathBuf,
    tmp_dir: PathBuf,
}

impl BlobStore {
    /// Blobs of the layout at `layout`, staged in `tmp_dir` (same filesystem).
    pub fn new(layout: PathBuf, tmp_dir: PathBuf) -> BlobStore {
        BlobStore { layout, tmp_dir }
    }

    /// Where a blob lives (whether or not it exists).
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.layout.join("blobs/sha256").join(digest.hex())
    }

    /// Whether the blob is present.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// The blob's size, if present.
    pub fn size(&self, digest: &Digest) -> Option<u64> {
        fs::metadata(self.path(digest)).ok().map(|m| m.len())
    }

    /// Opens a blob for reading.
    pub fn open(&self, digest: &Digest) -> Result<File, StoreError> {
        let path = self.path(digest);
        File::open(&path).map_err(|e| {
            if e.kind() == io::ErrorKind::NotFound {
                StoreError::MissingBlob(digest.clone())
            } else {
                io_err("opening", &path)(e)
            }
        })
    }

    /// Reads a whole (small) blob and checks its digest.
    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        let mut bytes = Vec::new();
        let path = self.path(digest);
        self.open(digest)?
            .read_to_end(&mut bytes)
            .map_err(io_err("reading", &path))?;
        let actual = Digest::of(&bytes);
        if &actual != digest {
            return Err(StoreError::DigestMismatch {
                expected: digest.clone(),
                actual,
                size: bytes.len() as u64,
            });
        }
        Ok(bytes)
    }

    /// Stores `bytes` and returns their digest.
    pub fn put(&self, bytes: &[u8]) -> Result<Digest, StoreError> {
        let mut writer = self.writer()?;
        writer
            .write_all(bytes)
            .map_err(io_err("writing", &writer.tmp_path))?;
        Ok(writer.commit()?.0)
    }

    /// Moves a finished file (on the store's filesystem, e.g. under `tmp/`)
    /// into the store as a blob, after hashing it; when `expected` is given,
    /// the content must have that digest. The file is gone afterwards either
    /// way (if the store already has the blob, the copy is dropped).
    pub fn adopt(
        &self,
        path: &Path,
        expected: Option<&Digest>,
    ) -> Result<(Digest, u64), StoreError> {
        let mut file = File::open(path).map_err(io_err("opening", path))?;
        let mut hasher = HashingWriter::new(io::sink());
        io::copy(&mut file, &mut hasher).map_err(io_err("reading", path))?;
        let (_, digest, size) = hasher.finish();
        if let Some(expected) = expected
            && *expected != digest
        {
            return Err(StoreError::DigestMismatch {
                expected: expected.clone(),
                actual: digest,
                size,
            });
        }
        layout::publish_blob(&file, path, &self.path(&digest))?;
        Ok((digest, size))
    }

    /// A writer whose content becomes a blob on [`BlobWriter::commit`].
    pub fn writer(&self) -> Result<BlobWriter, StoreError> {
        let tmp_path = tmp::fresh(&self.tmp_dir, "blob");
        let file = File::create(&tmp_path).map_err(io_err("creating", &tmp_path))?;
        Ok(BlobWriter {
            inner: Some(HashingWriter::new(BufWriter::with_capacity(1 << 20, file))),
            tmp_path,
            dest_dir: self.layout.join("blobs/sha256"),
        })
    }
}

/// A blob being written; dropped without commit, it leaves nothing behind.
pub struct BlobWriter {
    inner: Option<HashingWriter<BufWriter<File>>>,
    tmp_path: PathBuf,
    dest_dir: PathBuf,
}

impl BlobWriter {
    /// Fsyncs and renames the content into place; returns its digest and size.
    pub fn commit(mut self) -> Result<(Digest, u64), StoreError> {
        let Some(inner) = self.inner.take() else {
            return Err(io_err("committing", &self.tmp_path)(io::Error::other(
                "blob writer already finished",
            )));
        };
        let (buffered, digest, size) = inner.finish();
        let file = buffered
            .into_inner()
            .map_err(|e| io_err("writing", &self.tmp_path)(e.into_error()))?;
        layout::publish_blob(&file, &self.tmp_path, &self.dest_dir.join(digest.hex()))?;
        Ok((digest, size))
    }

    /// The staging path, for messages.
    pub fn staging_path(&self) -> &Path {
        &self.tmp_path
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.inner.as_mut() {
            Some(w) => w.write(buf),
            None => Err(io::Error::other("blob writer already finished")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.inner.as_mut() {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if self.inner.is_some() {
            let _ = fs::remove_file(&self.tmp_path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, BlobStore) {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("oci/blobs/sha256")).unwrap();
        fs::create_dir_all(dir.path().join("tmp")).unwrap();
        let blobs = BlobStore::new(dir.path().join("oci"), dir.path().join("tmp"));
        (dir, blobs)
    }

    #[test]
    fn put_then_read_round_trips_and_dedups() {
        let (dir, blobs) = store();
        let a = blobs.put(b"content").unwrap();
        let b = blobs.put(b"content").unwrap();
        assert_eq!(a, b);
        assert_eq!(blobs.read(&a).unwrap(), b"content");
        assert_eq!(blobs.size(&a), Some(7));
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn dropped_writer_leaves_nothing() {
        let (dir, blobs) = store();
        let mut w = blobs.writer().unwrap();
        w.write_all(b"partial").unwrap();
        drop(w);
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
        assert_eq!(
            fs::read_dir(dir.path().join("oci/blobs/sha256"))
                .unwrap()
                .count(),
            0
        );
    }

    #[test]
    fn adopt_moves_a_file_in_and_checks_its_digest() {
        let (dir, blobs) = store();
        let file = dir.path().join("tmp/staged");
        fs::write(&file, b"layer").unwrap();
        let want = Digest::of(b"layer");
        assert_eq!(blobs.adopt(&file, Some(&want)).unwrap(), (want.clone(), 5));
        assert!(!file.exists());
        assert_eq!(blobs.read(&want).unwrap(), b"layer");
        fs::write(&file, b"other").unwrap();
        assert!(matches!(
            blobs.adopt(&file, Some(&want)),
            Err(StoreError::DigestMismatch { .. })
        ));
        assert!(!blobs.contains(&Digest::of(b"other")));
    }

    #[test]
    fn corrupt_blob_is_reported() {
        let (_dir, blobs) = store();
        let d = blobs.put(b"good").unwrap();
        fs::write(blobs.path(&d), b"evil").unwrap();
        assert!(matches!(
            blobs.read(&d),
            Err(StoreError::DigestMismatch { .. })
        ));
    }
}
