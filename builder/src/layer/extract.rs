//! Unpacking a layer blob into a snapshot directory in overlayfs form, so the
//! snapshot can serve as a lower directory: OCI whiteouts become overlay
//! whiteouts and opaque markers become the opaque attribute.

use super::compress::decompress;
use super::xattr;
use crate::store::{Digest, Store, StoreError};
use std::fs;
use std::io::{self, BufReader};
use std::path::{Component, Path, PathBuf};

/// Errors while unpacking.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// The archive could not be read or an entry not written.
    #[error("unpacking layer {layer} into {}: {source}", dest.display())]
    Unpack {
        /// The layer.
        layer: String,
        /// The destination.
        dest: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// An entry tried to leave the destination.
    #[error("layer {layer} has an entry outside its root: '{path}'")]
    Escape {
        /// The layer.
        layer: String,
        /// The entry path.
        path: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Makes sure the snapshot of a layer exists, unpacking the blob if needed.
pub fn ensure_snapshot(
    store: &Store,
    blob: &Digest,
    diff_id: &Digest,
) -> Result<PathBuf, ExtractError> {
    if store.has_snapshot(diff_id) {
        return Ok(store.snapshot_path(diff_id));
    }
    let staging = store.snapshot_staging()?;
    let file = store.blobs().open(blob)?;
    unpack(
        BufReader::with_capacity(1 << 20, file),
        &staging,
        blob.as_str(),
    )?;
    Ok(store.commit_snapshot(&staging, diff_id)?)
}

/// Unpacks a (possibly compressed) tar stream into `dest` in overlay form.
pub fn unpack(reader: impl io::BufRead, dest: &Path, label: &str) -> Result<(), ExtractError> {
    let unpack_err = |source| ExtractError::Unpack {
        layer: label.to_string(),
        dest: dest.to_path_buf(),
        source,
    };
    let mut archive = tar::Archive::new(decompress(reader).map_err(unpack_err)?);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_preserve_mtime(true);
    archive.set_unpack_xattrs(false);
    archive.set_overwrite(true);
    let mut dirs = Vec::new();
    for entry in archive.entries().map_err(unpack_err)? {
        let mut entry = entry.map_err(unpack_err)?;
        let path = entry.path().map_err(unpack_err)?.into_owned();
        let clean = clean_relative(&path).ok_or_else(|| ExtractError::Escape {
            layer: label.to_string(),
            path: path.display().to_string(),
        })?;
        let name = clean
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parent = dest.join(clean.parent().unwrap_or(Path::new("")));
        if name == ".wh..wh..opq" {
            fs::create_dir_all(&parent).map_err(unpack_err)?;
            xattr::set_opaque(&parent).map_err(unpack_err)?;
            continue;
        }
        if let Some(hidden) = name.strip_prefix(".wh.") {
            fs::create_dir_all(&parent).map_err(unpack_err)?;
            let target = parent.join(hidden);
            remove_any(&target).map_err(unpack_err)?;
            xattr::make_whiteout(&target).map_err(unpack_err)?;
            continue;
        }
        if entry.header().entry_type().is_dir() {
            dirs.push((clean.clone(), entry.header().mtime().unwrap_or(0)));
        }
        entry.unpack_in(dest).map_err(unpack_err)?;
    }
    // Directory mtimes change as their children are written; set them last.
    for (dir, mtime) in dirs.into_iter().rev() {
        let _ = set_mtime(&dest.join(dir), mtime);
    }
    Ok(())
}

fn remove_any(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// `path` without `.` parts and a leading `/`; `None` if it has `..`.
fn clean_relative(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

fn set_mtime(path: &Path, mtime: u64) -> io::Result<()> {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime);
    fs::File::open(path)?.set_modified(time)
}
