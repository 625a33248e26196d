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

pub mod archive;
pub mod atomic;
pub mod blobs;
pub mod collect;
pub mod content;
pub mod digest;
pub mod image;
pub mod images;
pub mod layer;
pub mod layout;
pub mod lease;
pub mod lock;
pub mod oci;
pub mod reference;
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
    /// A store metadata file (such as `index.json`) is malformed.
    #[error("malformed {}: {reason}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A blob is not in the store.
    #[error("blob {0} is not in the local store")]
    MissingBlob(Digest),
    /// Content had a different size than its descriptor said; it was
    /// discarded.
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
    /// A tag is not in the store.
    #[error("image '{0}' is not in the local store\nhint: build or import it first")]
    UnknownImage(String),
    /// Content does not hash to the digest it was written or read under.
    #[error("content for {expected} does not match its digest: got {actual} ({size} bytes)")]
    DigestMismatch {
        /// The digest asked for.
        expected: Digest,
        /// The digest of the content.
        actual: Digest,
        /// How many bytes the content had.
        size: u64,
    },
}

/// Wraps an io error with the action and path.
pub fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError {
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
    layout: layout::OciLayout,
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
        let store = Store {
            root: root.to_path_buf(),
            blobs: BlobStore::new(root.join("oci"), root.join("tmp")),
            layout: layout::OciLayout::create_sync(root.join("oci"))?,
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

    /// The store's OCI image layout: every `index.json` edit and every
    /// pull goes through it.
    pub fn layout(&self) -> &layout::OciLayout {
        &self.layout
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
