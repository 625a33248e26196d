//! Unpacked layer snapshots, one directory per diffID, in overlayfs form
//! (whiteouts as 0/0 character devices, opaque directories marked with the
//! `trusted.overlay.opaque` attribute), ready to be stacked as lower directories.

use super::{Digest, Store, StoreError, io_err, tmp};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

impl Store {
    /// The snapshot directory of a layer (whether or not it exists).
    pub fn snapshot_path(&self, diff_id: &Digest) -> PathBuf {
        self.root().join("snapshots").join(diff_id.hex())
    }

    /// Whether the layer is unpacked.
    pub fn has_snapshot(&self, diff_id: &Digest) -> bool {
        self.snapshot_path(diff_id).is_dir()
    }

    /// A fresh staging directory for a snapshot.
    pub fn snapshot_staging(&self) -> Result<PathBuf, StoreError> {
        let path = tmp::fresh(&self.tmp_dir(), "snapshot");
        fs::create_dir_all(&path).map_err(io_err("creating", &path))?;
        Ok(path)
    }

    /// Moves a finished staging directory into place as the snapshot of
    /// `diff_id`. A concurrent build that got there first wins; the staging copy
    /// is then removed, as the content is the same.
    ///
    /// `diff_id` must be one berth computed from the content or verified
    /// against it (`layer::extract::ensure_snapshot` hashes the stream it
    /// unpacks), never one an image config merely claims: every image naming
    /// that diffID will run this snapshot.
    ///
    /// Snapshots are derived data (an unpacked blob, which is fsync'ed), so the
    /// tree is not fsync'ed file by file: that would cost more than the build.
    /// A killed build leaves at most a staging directory, never a partial
    /// snapshot, because the rename is the last step.
    pub fn commit_snapshot(&self, staging: &Path, diff_id: &Digest) -> Result<PathBuf, StoreError> {
        let dest = self.snapshot_path(diff_id);
        if dest.is_dir() {
            tmp::remove_tree(staging)?;
            return Ok(dest);
        }
        match fs::rename(staging, &dest) {
            Ok(()) => {
                super::atomic::sync_parent(&dest).map_err(io_err("syncing", &dest))?;
                Ok(dest)
            }
            Err(e)
                if dest.is_dir()
                    && matches!(e.raw_os_error(), Some(libc::ENOTEMPTY) | Some(libc::EEXIST)) =>
            {
                tmp::remove_tree(staging)?;
                Ok(dest)
            }
            Err(e) => Err(io_err("renaming into", &dest)(e)),
        }
    }

    /// An always-empty directory, the lower layer of a build from scratch.
    pub fn empty_dir(&self) -> Result<PathBuf, StoreError> {
        let path = self.root().join("snapshots/empty");
        match fs::create_dir(&path) {
            Ok(()) => Ok(path),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(path),
            Err(e) => Err(io_err("creating", &path)(e)),
        }
    }
}
