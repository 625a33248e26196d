//! Unpacking a layer blob into a snapshot directory in overlayfs form, so the
//! snapshot can serve as a lower directory: OCI whiteouts become overlay
//! whiteouts and opaque markers become the opaque attribute.
//!
//! A layer is untrusted input: every entry is created relative to the
//! snapshot's root by [`RootWriter`], which never follows a symlink out of
//! it, and a snapshot is committed under a diffID only once the
//! uncompressed stream was hashed and found equal to it.

use super::compress::decompress;
use super::root::{Meta, Node, ParentError, RootWriter};
use crate::{Digest, Store, StoreError};
use sha2::{Digest as _, Sha256};
use std::io::{self, BufReader, Read};
use std::path::{Component, Path, PathBuf};

/// Errors while unpacking.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// The archive could not be read.
    #[error("reading layer {layer} to unpack it into {}", dest.display())]
    Unpack {
        /// The layer.
        layer: String,
        /// The destination.
        dest: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// An entry was refused or could not be written.
    #[error(transparent)]
    Entry(Box<EntryError>),
    /// The layer's content is not what the image config claims.
    #[error(transparent)]
    DiffIdMismatch(Box<DiffIdMismatch>),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One layer entry that was refused or could not be written. The message
/// names the layer, the entry and what is wrong with it; the system error
/// beneath, if any, is its source.
#[derive(Debug)]
pub struct EntryError {
    /// The layer.
    pub layer: String,
    /// The entry path, as the archive has it.
    pub path: String,
    /// What is wrong with it.
    pub problem: EntryProblem,
}

impl std::fmt::Display for EntryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "layer {} entry '{}': {}",
            self.layer, self.path, self.problem
        )
    }
}

impl std::error::Error for EntryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.problem)
    }
}

/// What is wrong with a layer entry.
#[derive(Debug, thiserror::Error)]
pub enum EntryProblem {
    /// Its path climbs out with `..`.
    #[error("is outside the layer root: its path climbs with '..'")]
    Escape,
    /// A hard link pointing out of the root.
    #[error("is a hardlink to '{0}', outside the layer root")]
    HardlinkEscape(String),
    /// A whiteout naming no file (`.wh.`, `.wh..`).
    #[error("is a whiteout for '{0}', which is not a file name")]
    BadWhiteout(String),
    /// A tar entry type berth does not unpack.
    #[error("has tar entry type {0:?}, which berth cannot unpack")]
    Unsupported(char),
    /// Its parent path does not lead to a directory inside the root.
    #[error(
        "{action}: its parent '{parent}' is not a directory inside the layer root (a symlink \
         to a missing or outside path, or a file)"
    )]
    Parent {
        /// What was being done.
        action: String,
        /// The parent path.
        parent: String,
        /// The resolution error.
        source: pathrs::error::Error,
    },
    /// Writing it failed.
    #[error("{action}")]
    Io {
        /// What was being done.
        action: String,
        /// The underlying error.
        source: io::Error,
    },
}

/// A layer whose uncompressed content does not hash to its claimed diffID.
#[derive(Debug, thiserror::Error)]
#[error(
    "layer {layer} does not match its diffID: the image config claims {claimed} but its \
     content is {actual}; the image is corrupt or hostile"
)]
pub struct DiffIdMismatch {
    /// The layer blob.
    pub layer: Digest,
    /// The diffID the config claims.
    pub claimed: Digest,
    /// The digest of the uncompressed stream.
    pub actual: Digest,
}

/// Makes sure the snapshot of a layer exists, unpacking the blob if needed.
/// The uncompressed stream is hashed while it is unpacked; the snapshot is
/// committed under `diff_id` only if that hash equals it.
pub fn ensure_snapshot(
    store: &Store,
    blob: &Digest,
    diff_id: &Digest,
) -> Result<PathBuf, ExtractError> {
    if store.has_snapshot(diff_id) {
        return Ok(store.snapshot_path(diff_id));
    }
    let file = store.blobs().open(blob)?;
    let staging = store.snapshot_staging()?;
    match unpack_verified(file, &staging, blob, diff_id) {
        Ok(()) => Ok(store.commit_snapshot(&staging, diff_id)?),
        Err(e) => {
            let _ = crate::tmp::remove_tree(&staging);
            Err(e)
        }
    }
}

fn unpack_verified(
    file: std::fs::File,
    staging: &Path,
    blob: &Digest,
    diff_id: &Digest,
) -> Result<(), ExtractError> {
    let read_err = |source| ExtractError::Unpack {
        layer: blob.to_string(),
        dest: staging.to_path_buf(),
        source,
    };
    let mut reader = HashingReader {
        inner: decompress(BufReader::with_capacity(1 << 20, file)).map_err(read_err)?,
        hasher: Sha256::new(),
    };
    unpack_stream(&mut reader, staging, blob.as_str())?;
    // Whatever follows the end-of-archive blocks is part of the diffID too.
    io::copy(&mut reader, &mut io::sink()).map_err(read_err)?;
    let actual = Digest::from_hasher(reader.hasher);
    if actual != *diff_id {
        return Err(ExtractError::DiffIdMismatch(Box::new(DiffIdMismatch {
            layer: blob.clone(),
            claimed: diff_id.clone(),
            actual,
        })));
    }
    Ok(())
}

/// Hashes what is read through it.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Unpacks a (possibly compressed) tar stream into `dest` in overlay form;
/// `label` names the layer in errors.
pub fn unpack(reader: impl io::BufRead, dest: &Path, label: &str) -> Result<(), ExtractError> {
    let stream = decompress(reader).map_err(|source| ExtractError::Unpack {
        layer: label.to_string(),
        dest: dest.to_path_buf(),
        source,
    })?;
    unpack_stream(stream, dest, label)
}

/// Unpacks a (possibly compressed) tar stream into the open directory `dir`
/// (`berth cp` into a container: the directory was resolved inside the
/// container's root, and nothing is resolved by host path again); `shown`
/// names it in errors.
pub fn unpack_into_dir(
    reader: impl io::BufRead,
    dir: std::fs::File,
    shown: &Path,
    label: &str,
) -> Result<(), ExtractError> {
    let read_err = |source| ExtractError::Unpack {
        layer: label.to_string(),
        dest: shown.to_path_buf(),
        source,
    };
    let stream = decompress(reader).map_err(read_err)?;
    let root = RootWriter::from_dir(dir).map_err(read_err)?;
    unpack_with(stream, root, shown, label)
}

/// Unpacks an uncompressed tar stream into `dest` in overlay form.
fn unpack_stream(stream: impl Read, dest: &Path, label: &str) -> Result<(), ExtractError> {
    let root = RootWriter::open(dest).map_err(|source| ExtractError::Unpack {
        layer: label.to_string(),
        dest: dest.to_path_buf(),
        source,
    })?;
    unpack_with(stream, root, dest, label)
}

/// Unpacks an uncompressed tar stream through `root` (`dest` names it).
fn unpack_with(
    stream: impl Read,
    mut root: RootWriter,
    dest: &Path,
    label: &str,
) -> Result<(), ExtractError> {
    let read_err = |source| ExtractError::Unpack {
        layer: label.to_string(),
        dest: dest.to_path_buf(),
        source,
    };
    let mut archive = tar::Archive::new(stream);
    for entry in archive.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        let raw_path = entry.path_bytes();
        let shown = String::from_utf8_lossy(&raw_path).into_owned();
        let path = entry.path().map_err(read_err)?.into_owned();
        let refuse = |problem| {
            ExtractError::Entry(Box::new(EntryError {
                layer: label.to_string(),
                path: shown.clone(),
                problem,
            }))
        };
        let entry_err = |action: String| {
            move |source: io::Error| {
                refuse(match ParentError::take(source) {
                    Ok(ParentError { parent, source }) => EntryProblem::Parent {
                        action,
                        parent: parent.display().to_string(),
                        source,
                    },
                    Err(source) => EntryProblem::Io { action, source },
                })
            }
        };
        let clean = clean_relative(&path).ok_or_else(|| refuse(EntryProblem::Escape))?;
        let name = clean
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parent = clean.parent().unwrap_or(Path::new("")).to_path_buf();
        if name == ".wh..wh..opq" {
            root.opaque(&parent)
                .map_err(entry_err("marking its directory opaque".into()))?;
            continue;
        }
        if let Some(hidden) = name.strip_prefix(".wh.") {
            if hidden.starts_with(".wh.") {
                // Other AUFS metadata (`.wh..wh.plnk`...) means nothing here.
                continue;
            }
            if hidden.is_empty() || hidden == "." || hidden == ".." {
                return Err(refuse(EntryProblem::BadWhiteout(hidden.to_string())));
            }
            root.whiteout(&parent.join(hidden))
                .map_err(entry_err(format!("creating a whiteout for '{hidden}'")))?;
            continue;
        }
        let header = entry.header();
        let mtime = header.mtime().unwrap_or(0);
        let meta = Meta {
            uid: header.uid().ok().and_then(|u| u32::try_from(u).ok()),
            gid: header.gid().ok().and_then(|g| u32::try_from(g).ok()),
            mode: header.mode().unwrap_or(0o644),
            // As the tar crate did: 0 means "unknown" to some tools.
            mtime: i64::try_from(mtime.max(1)).unwrap_or(i64::MAX),
        };
        let kind = header.entry_type();
        use tar::EntryType as T;
        match kind {
            T::Directory => root
                .dir(&clean, &meta)
                .map_err(entry_err("creating the directory".into()))?,
            T::Regular | T::Continuous | T::GNUSparse => {
                if clean.as_os_str().is_empty() {
                    return Err(refuse(EntryProblem::Io {
                        action: "creating a file".into(),
                        source: io::Error::new(
                            io::ErrorKind::InvalidInput,
                            "a file cannot replace the root",
                        ),
                    }));
                }
                root.file(&clean, &meta, &mut entry)
                    .map_err(entry_err("writing the file".into()))?
            }
            T::Symlink | T::Link => {
                let target = entry
                    .link_name()
                    .map_err(read_err)?
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                let shown_target = target.display().to_string();
                if kind == T::Symlink {
                    root.symlink(&clean, &target, &meta)
                        .map_err(entry_err(format!("creating a symlink to '{shown_target}'")))?;
                    continue;
                }
                let inside = clean_relative(&target)
                    .filter(|t| !t.as_os_str().is_empty())
                    .ok_or_else(|| refuse(EntryProblem::HardlinkEscape(shown_target.clone())))?;
                root.hardlink(&clean, &inside).map_err(entry_err(format!(
                    "creating a hardlink to '{shown_target}'"
                )))?;
            }
            T::Char | T::Block | T::Fifo => {
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                let node = match kind {
                    T::Char => Node::Char(major, minor),
                    T::Block => Node::Block(major, minor),
                    _ => Node::Fifo,
                };
                root.node(&clean, node, &meta)
                    .map_err(entry_err("creating the special file".into()))?;
            }
            // Global pax headers carry no entry.
            T::XGlobalHeader => {}
            other => {
                return Err(refuse(EntryProblem::Unsupported(char::from(
                    other.as_byte(),
                ))));
            }
        }
    }
    root.finish().map_err(read_err)
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
