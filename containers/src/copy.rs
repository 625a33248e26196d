//! `berth cp`: files out of and into a container, as tar streams.
//!
//! The container's root filesystem is its to shape: every path in it is
//! resolved inside it (openat2 `RESOLVE_IN_ROOT` through pathrs), so a
//! symlink such as `/evil -> /` or `/etc -> /host-etc` leads to the
//! container's own `/`, never the host's. A directory copied out is read
//! with fd-relative walks that record symlinks as symlinks; what is copied
//! in is unpacked under the destination directory's fd with the store's
//! `RootWriter`, which never follows a symlink it finds there.
//!
//! A running container's merged root is its bundle's `rootfs`; a stopped
//! container's is mounted for the copy (its layers under its upper
//! directory) at a staging path, under the container's lock.
//! Volumes and the bind-mounted `/etc/hosts` are not seen (they are
//! mounted in the container's own mount namespace).

use super::{ContainerError, ContainerRecord, cio, container_dir};
use crate::executor::mount;
use berth_store::layer::extract::{self, ExtractError};
use berth_store::layer::scan_root::{ScanRootError, scan_in_root};
use berth_store::layer::write::write_tar_in_root;
use berth_store::layer::{Entry, EntryKind, LayerError};
use berth_store::{Store, tmp};
use pathrs::flags::OpenFlags;
use std::io;
use std::path::{Path, PathBuf};

/// Errors of `berth cp`.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// A container operation failed.
    #[error(transparent)]
    Container(#[from] ContainerError),
    /// The path does not resolve in the container.
    #[error("could not find the file {path} in container {id}")]
    NotFound {
        /// The container.
        id: String,
        /// The path asked for.
        path: String,
        /// Why.
        source: io::Error,
    },
    /// The destination in the container is not a directory.
    #[error("the destination {path} in container {id} is not a directory")]
    NotADirectory {
        /// The container.
        id: String,
        /// The path.
        path: String,
    },
    /// Reading the container's files failed.
    #[error(transparent)]
    Scan(#[from] ScanRootError),
    /// Writing the tar stream failed.
    #[error(transparent)]
    Write(#[from] LayerError),
    /// Unpacking into the container failed.
    #[error(transparent)]
    Unpack(#[from] ExtractError),
}

/// A container's merged root filesystem, mounted for the copy when the
/// container is stopped.
struct View {
    path: PathBuf,
    staged: bool,
    _lock: Option<berth_store::lock::FileLock>,
}

impl Drop for View {
    fn drop(&mut self) {
        if self.staged {
            tmp::unmount_under(&self.path);
            let _ = tmp::remove_tree(&self.path);
        }
    }
}

fn view(store: &Store, record: &ContainerRecord) -> Result<View, ContainerError> {
    let dir = container_dir(store, &record.id);
    // Under the lock the container can neither start nor stop, so the
    // choice between its mounted root and a staged one holds for the whole
    // copy (a start never mounts the same upper directory beside ours).
    let lock = super::lock(store, &record.id)?;
    let current = super::load(store, &record.id)?;
    let record = &current;
    if record.is_running() {
        return Ok(View {
            path: dir.join("rootfs"),
            staged: false,
            _lock: Some(lock),
        });
    }
    let bytes = store.blobs().read(&record.image_digest)?;
    let manifest: berth_store::oci::Manifest =
        serde_json::from_slice(&bytes).map_err(|e| ContainerError::Io {
            action: "reading the image manifest of",
            path: dir.clone(),
            source: io::Error::other(e),
        })?;
    let config_bytes = store.blobs().read(&manifest.config.digest)?;
    let config: berth_store::oci::ImageConfig =
        serde_json::from_slice(&config_bytes).map_err(|e| ContainerError::Io {
            action: "reading the image config of",
            path: dir.clone(),
            source: io::Error::other(e),
        })?;
    let mut lowers = Vec::new();
    for (layer, diff_id) in manifest.layers.iter().zip(&config.rootfs.diff_ids).rev() {
        lowers.push(extract::ensure_snapshot(store, &layer.digest, diff_id)?);
    }
    if lowers.is_empty() {
        lowers.push(store.empty_dir()?);
    }
    let path = tmp::fresh(&store.tmp_dir(), "cp-view");
    std::fs::create_dir_all(&path).map_err(cio("creating", &path))?;
    let view = View {
        path,
        staged: true,
        _lock: Some(lock),
    };
    mount::mount_overlay(
        &view.path,
        &lowers,
        Some((&dir.join("upper"), &dir.join("work"))),
    )
    .map_err(cio("mounting the root filesystem at", &view.path))?;
    Ok(view)
}

/// The last name of a container path (`.` for `/`).
fn base_name(path: &str) -> String {
    Path::new(path.trim_end_matches('/'))
        .file_name()
        .map_or_else(|| ".".to_string(), |n| n.to_string_lossy().into_owned())
}

/// Writes the file or directory `path` of the container to `out` as a tar
/// stream whose entries are named from its last name, as `docker cp` does.
/// `follow` (`-L`) follows a symlink at `path` itself, inside the container.
pub fn copy_out<W: io::Write>(
    store: &Store,
    record: &ContainerRecord,
    path: &str,
    follow: bool,
    out: W,
) -> Result<W, CopyError> {
    let view = view(store, record)?;
    let root = mount::open_root(&view.path).map_err(cio("opening", &view.path))?;
    let name = base_name(path);
    write_tree_tar(&root, &view.path, path, &name, follow, out).map_err(|e| match e {
        CopyError::NotFound { source, .. } => CopyError::NotFound {
            id: record.short_id().to_string(),
            path: path.to_string(),
            source,
        },
        other => other,
    })
}

/// Writes the file or directory `path` inside `root` (`root_path` is where
/// it is) to `out` as a tar stream whose entries are named from `name`.
/// `follow` follows a symlink at `path` itself, inside the root. Used for
/// both sides of `berth cp`.
pub fn write_tree_tar<W: io::Write>(
    root: &pathrs::Root,
    root_path: &Path,
    path: &str,
    name: &str,
    follow: bool,
    out: W,
) -> Result<W, CopyError> {
    let not_found = |source| CopyError::NotFound {
        id: String::new(),
        path: path.to_string(),
        source,
    };
    let lookup = if path.trim_matches('/').is_empty() {
        "/"
    } else {
        path
    };
    let handle = if follow {
        root.resolve(lookup)
    } else {
        root.resolve_nofollow(lookup)
    }
    .map_err(|e| not_found(mount::pathrs_io(e)))?;
    let file = std::fs::File::from(std::os::fd::OwnedFd::from(handle));
    let meta = file.metadata().map_err(not_found)?;
    let entries: Vec<Entry> = if meta.is_dir() {
        let mut entries = scan_in_root(root, root_path, lookup, false, &|_| false)?;
        for entry in &mut entries {
            entry.path = format!("{name}/{}", entry.path);
            if let EntryKind::Hardlink(target) = &mut entry.kind {
                *target = format!("{name}/{target}");
            }
        }
        entries.push(top_entry(name, &meta, EntryKind::Dir));
        entries
    } else {
        // Where the handle really is inside the root (after `-L`), so its
        // parent is scanned and only its own name kept.
        let real = real_path(&file, root_path).map_err(not_found)?;
        let (parent, real_name) = match real.rsplit_once('/') {
            Some((parent, last)) => (parent.to_string(), last.to_string()),
            None => (String::new(), real.clone()),
        };
        let mut found = scan_in_root(root, root_path, &parent, false, &|rel| rel != real_name)?;
        found.retain(|e| e.path == real_name);
        for entry in &mut found {
            entry.path = name.to_string();
        }
        if found.is_empty() {
            return Err(not_found(io::Error::from(io::ErrorKind::NotFound)));
        }
        found
    };
    Ok(write_tar_in_root(out, entries, root)?)
}

/// Writes the host file or directory `name` in the host directory `parent`
/// as a tar stream named from `entry_name` (the host side of a copy in).
pub fn host_tar<W: io::Write>(
    parent: &Path,
    name: &str,
    entry_name: &str,
    follow: bool,
    out: W,
) -> Result<W, CopyError> {
    let root = mount::open_root(parent).map_err(cio("opening", parent))?;
    write_tree_tar(&root, parent, name, entry_name, follow, out)
}

/// Whether `path` is a directory in the container (symlinks followed inside
/// its root).
pub fn is_dir_in(store: &Store, record: &ContainerRecord, path: &str) -> Result<bool, CopyError> {
    let view = view(store, record)?;
    let root = mount::open_root(&view.path).map_err(cio("opening", &view.path))?;
    let lookup = if path.trim_matches('/').is_empty() {
        "/"
    } else {
        path
    };
    Ok(root
        .resolve(lookup)
        .ok()
        .and_then(|h| {
            std::fs::File::from(std::os::fd::OwnedFd::from(h))
                .metadata()
                .ok()
        })
        .is_some_and(|m| m.is_dir()))
}

/// The path of an open file relative to the root at `root_path` (from the
/// kernel's own record of the fd, so no path is walked again).
fn real_path(file: &std::fs::File, root_path: &Path) -> io::Result<String> {
    use std::os::fd::AsRawFd;
    let link = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))?;
    let root_path = root_path.canonicalize()?;
    let rel = link
        .strip_prefix(&root_path)
        .map_err(|_| io::Error::new(io::ErrorKind::NotFound, "outside the container's root"))?;
    Ok(rel.to_string_lossy().into_owned())
}

fn top_entry(name: &str, meta: &std::fs::Metadata, kind: EntryKind) -> Entry {
    use std::os::unix::fs::MetadataExt;
    Entry {
        path: name.to_string(),
        kind,
        mode: meta.mode() & 0o7777,
        uid: u64::from(meta.uid()),
        gid: u64::from(meta.gid()),
        mtime: meta.mtime(),
    }
}

/// Unpacks the tar stream `tar` into the directory `dest` of the container.
/// `dest` resolves inside the container; what the stream holds is created
/// under that directory's fd and never through a symlink found there.
pub fn copy_in(
    store: &Store,
    record: &ContainerRecord,
    dest: &str,
    tar: impl io::BufRead,
) -> Result<(), CopyError> {
    let view = view(store, record)?;
    let root = mount::open_root(&view.path).map_err(cio("opening", &view.path))?;
    let lookup = if dest.trim_matches('/').is_empty() {
        "/"
    } else {
        dest
    };
    let handle = root.resolve(lookup).map_err(|e| CopyError::NotFound {
        id: record.short_id().to_string(),
        path: dest.to_string(),
        source: mount::pathrs_io(e),
    })?;
    let dir = handle
        .reopen(OpenFlags::O_RDONLY | OpenFlags::O_DIRECTORY)
        .map_err(|_| CopyError::NotADirectory {
            id: record.short_id().to_string(),
            path: dest.to_string(),
        })?;
    let shown = PathBuf::from(format!("{}:{dest}", record.short_id()));
    extract::unpack_into_dir(tar, dir, &shown, "the copied files")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_names_come_from_the_last_name() {
        for (path, want) in [
            ("/etc/passwd", "passwd"),
            ("/etc/", "etc"),
            ("/", "."),
            ("rel/x", "x"),
        ] {
            assert_eq!(base_name(path), want, "{path}");
        }
    }
}
