//! The local store: content-addressed blobs in OCI image layout form, a tag
//! index, unpacked layer snapshots usable as overlayfs lower directories, and
//! the build cache records.
//!
//! Layout under the root:
//!
//! ```text
//! oci/                  an OCI image layout: oci-layout, index.json (tags), blobs/sha256/
//! snapshots/<hex>/      one unpacked layer per diffID, in overlayfs form
//! cache/<hex>.json      one record per cache key
//! context/<hex>.tsv     per-context file hash caches
//! cache-mounts/<hex>/   RUN --mount=type=cache directories
//! tmp/<pid>-…           staging areas, removed once their process is gone
//! locks/                lock files
//! ```
//!
//! Everything becomes visible by a rename after an fsync, so a build killed at
//! any point leaves only `tmp/` entries behind, which the next open removes.

pub mod atomic;
pub mod blobs;
pub mod cache;
pub mod collect;
pub mod digest;
pub mod lease;
pub mod lock;
pub mod snapshots;
pub mod tags;
pub mod tmp;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub use blobs::BlobStore;
pub use digest::Digest;

/// Errors of the local store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A filesystem operation failed.
    #[error("{action} {}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A store document did not parse.
    #[error("corrupt store file {}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
    /// A blob is not in the store.
    #[error("blob {0} is not in the local store")]
    MissingBlob(Digest),
    /// A tag is not in the store.
    #[error("image '{0}' is not in the local store\nhint: build or import it first")]
    UnknownImage(String),
    /// A blob's content does not match its digest.
    #[error("blob {expected} has digest {actual}; the store copy is corrupt")]
    DigestMismatch {
        /// The digest asked for.
        expected: Digest,
        /// The digest of the content.
        actual: Digest,
    },
}

/// Wraps an io error with the action and path.
pub(crate) fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io {
        action,
        path,
        source,
    }
}

/// An open local store.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    blobs: BlobStore,
}

impl Store {
    /// The default root: `$BERTH_ROOT`, else `/var/lib/berth` as root, else
    /// `$XDG_DATA_HOME/berth` (or `~/.local/share/berth`).
    pub fn default_root() -> PathBuf {
        if let Some(root) = std::env::var_os("BERTH_ROOT").filter(|r| !r.is_empty()) {
            return PathBuf::from(root);
        }
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } == 0 {
            return PathBuf::from("/var/lib/berth");
        }
        if let Some(data) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
            return PathBuf::from(data).join("berth");
        }
        let home = std::env::var_os("HOME").unwrap_or_default();
        PathBuf::from(home).join(".local/share/berth")
    }

    /// Opens (creating if needed) the store at `root` and removes staging
    /// entries left by processes that no longer run.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        for sub in [
            "oci/blobs/sha256",
            "snapshots",
            "cache",
            "context",
            "cache-mounts",
            "tmp",
            "locks",
        ] {
            let dir = root.join(sub);
            fs::create_dir_all(&dir).map_err(io_err("creating", &dir))?;
        }
        let layout = root.join("oci/oci-layout");
        if !layout.exists() {
            atomic::write(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)
                .map_err(io_err("writing", &layout))?;
        }
        let store = Store {
            root: root.to_path_buf(),
            blobs: BlobStore::new(root.join("oci"), root.join("tmp")),
        };
        tmp::remove_stale(&store.tmp_dir())?;
        Ok(store)
    }

    /// The store root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The blob store.
    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    /// The OCI image layout directory.
    pub fn layout_dir(&self) -> PathBuf {
        self.root.join("oci")
    }

    /// The staging directory.
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Writes a JSON document atomically.
    pub fn write_json<T: serde::Serialize>(
        &self,
        path: &Path,
        value: &T,
    ) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(value).map_err(|source| StoreError::Corrupt {
            path: path.to_path_buf(),
            source,
        })?;
        atomic::write(path, &bytes).map_err(io_err("writing", path))
    }

    /// The lock file with this name.
    pub fn lock_path(&self, name: &str) -> PathBuf {
        self.root.join("locks").join(name)
    }
}
