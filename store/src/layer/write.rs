//! Writing a layer: entries → deterministic tar → compression → blob, with the
//! diffID (digest of the tar) and the blob digest computed on the way.

use super::compress::{Compression, Compressor};
use super::entry::{Entry, EntryKind, canonical_order};
use crate::digest::HashingWriter;
use crate::layer::LayerRecord;
use crate::oci::Descriptor;
use crate::{BlobStore, StoreError};
use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;

/// Errors while writing a layer.
#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    /// Reading a source file failed.
    #[error("reading {} for the layer", path.display())]
    Source {
        /// The source file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// Writing the tar stream failed.
    #[error("writing the layer entry '{path}'")]
    Write {
        /// The entry.
        path: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Options that shape every entry of a layer.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteOptions {
    /// The compression.
    pub compression: Compression,
    /// `SOURCE_DATE_EPOCH`: later mtimes are clamped to it.
    pub source_date_epoch: Option<i64>,
}

/// Writes `entries` as a layer blob and returns its record.
pub fn write_layer(
    blobs: &BlobStore,
    entries: Vec<Entry>,
    options: WriteOptions,
) -> Result<LayerRecord, LayerError> {
    write_layer_reporting(blobs, entries, options, &mut |_| {})
}

/// [`write_layer`], calling `report` after each entry with the file content
/// bytes written so far (for progress display).
pub fn write_layer_reporting(
    blobs: &BlobStore,
    entries: Vec<Entry>,
    options: WriteOptions,
    report: &mut dyn FnMut(u64),
) -> Result<LayerRecord, LayerError> {
    write_entries(blobs, entries, options, report, &|path| File::open(path))
}

/// [`write_layer`] for entries scanned from an untrusted tree by
/// [`super::scan_root::scan_upper_in_root`]: file sources are relative to
/// `root` and opened inside it, never through a symlink.
pub fn write_layer_in_root(
    blobs: &BlobStore,
    entries: Vec<Entry>,
    options: WriteOptions,
    root: &std::path::Path,
) -> Result<LayerRecord, LayerError> {
    let tree = pathrs::Root::open(root).map_err(|e| LayerError::Source {
        path: root.to_path_buf(),
        source: super::scan_root::pathrs_io(e),
    })?;
    write_entries(blobs, entries, options, &mut |_| {}, &|path| {
        super::scan_root::open_file_in_root(&tree, path)
    })
}

/// Writes `entries` as an uncompressed tar stream to `out` (for `berth cp`):
/// file sources are relative to `root` and opened inside it, never through a
/// symlink.
pub fn write_tar_in_root<W: Write>(
    out: W,
    entries: Vec<Entry>,
    root: &pathrs::Root,
) -> Result<W, LayerError> {
    let mut builder = tar::Builder::new(out);
    builder.mode(tar::HeaderMode::Complete);
    builder.follow_symlinks(false);
    let open = |path: &std::path::Path| super::scan_root::open_file_in_root(root, path);
    for entry in canonical_order(entries) {
        append(&mut builder, &entry, None, &mut |_| {}, &open)?;
    }
    builder.into_inner().map_err(|source| LayerError::Write {
        path: "(end of archive)".into(),
        source,
    })
}

/// Opens a file entry's source.
type Opener<'a> = &'a dyn Fn(&std::path::Path) -> io::Result<File>;

fn write_entries(
    blobs: &BlobStore,
    entries: Vec<Entry>,
    options: WriteOptions,
    report: &mut dyn FnMut(u64),
    open: Opener<'_>,
) -> Result<LayerRecord, LayerError> {
    let blob = blobs.writer()?;
    let compressor =
        Compressor::new(options.compression, blob).map_err(|source| LayerError::Write {
            path: String::new(),
            source,
        })?;
    let mut builder = tar::Builder::new(HashingWriter::new(compressor));
    builder.mode(tar::HeaderMode::Complete);
    builder.follow_symlinks(false);
    let mut written = 0u64;
    let mut on_read = |n: u64| {
        written += n;
        report(written);
    };
    for entry in canonical_order(entries) {
        append(
            &mut builder,
            &entry,
            options.source_date_epoch,
            &mut on_read,
            open,
        )?;
    }
    let finish_err = |source| LayerError::Write {
        path: "(end of archive)".into(),
        source,
    };
    let hashing = builder.into_inner().map_err(finish_err)?;
    let (compressor, diff_id, _tar_size) = hashing.finish();
    let blob = compressor.finish().map_err(finish_err)?;
    let (digest, size) = blob.commit()?;
    Ok(LayerRecord {
        descriptor: Descriptor {
            artifact_type: None,
            unknown: Default::default(),
            urls: None,
            media_type: options.compression.media_type().to_string(),
            digest,
            size,
            annotations: Default::default(),
            platform: None,
        },
        diff_id,
    })
}

/// A reader of exactly `left` more bytes: an end of input before them is an
/// error, not a short entry.
struct Exactly<R> {
    inner: R,
    left: u64,
}

impl<R: io::Read> io::Read for Exactly<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.left > 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the file shrank by {} bytes while it was read", self.left),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// A reader that reports how many bytes each read returned.
struct CountingReader<'a, R> {
    inner: R,
    on_read: &'a mut dyn FnMut(u64),
}

impl<R: io::Read> io::Read for CountingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.on_read)(n as u64);
        Ok(n)
    }
}

fn append<W: Write>(
    builder: &mut tar::Builder<W>,
    entry: &Entry,
    epoch: Option<i64>,
    on_read: &mut dyn FnMut(u64),
    open: Opener<'_>,
) -> Result<(), LayerError> {
    let tar_path = entry.tar_path();
    let write_err = |source| LayerError::Write {
        path: tar_path.clone(),
        source,
    };
    let mut header = tar::Header::new_gnu();
    let mtime = match epoch {
        Some(limit) => entry.mtime.min(limit),
        None => entry.mtime,
    };
    header.set_mtime(u64::try_from(mtime).unwrap_or(0));
    header.set_uid(entry.uid);
    header.set_gid(entry.gid);
    header.set_mode(entry.mode & 0o7777);
    header.set_size(0);
    match &entry.kind {
        EntryKind::File { source, .. } => {
            let file = open(source).map_err(|e| LayerError::Source {
                path: source.clone(),
                source: e,
            })?;
            let len = file
                .metadata()
                .map_err(|e| LayerError::Source {
                    path: source.clone(),
                    source: e,
                })?
                .len();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(len);
            // The size is taken from the open file so a file that grows while
            // it is read cannot corrupt the stream: at most `len` bytes are
            // read, and one that shrinks fails (the tar writer would pad from
            // what it got and shift every later header into file data).
            builder
                .append_data(
                    &mut header,
                    &tar_path,
                    CountingReader {
                        inner: Exactly {
                            inner: io::Read::take(file, len),
                            left: len,
                        },
                        on_read,
                    },
                )
                .map_err(write_err)
        }
        EntryKind::Bytes(bytes) => {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(bytes.len() as u64);
            builder
                .append_data(&mut header, &tar_path, &bytes[..])
                .map_err(write_err)?;
            on_read(bytes.len() as u64);
            Ok(())
        }
        EntryKind::Dir => {
            header.set_entry_type(tar::EntryType::Directory);
            builder
                .append_data(&mut header, format!("{tar_path}/"), io::empty())
                .map_err(write_err)
        }
        EntryKind::Symlink(target) => {
            header.set_entry_type(tar::EntryType::Symlink);
            let bytes = target.as_os_str().as_encoded_bytes();
            // The tar crate's link-name canonicalisation turns a target of
            // `/` into `//`; a target that fits the header is stored as is.
            if bytes.len() <= 100 && !bytes.contains(&0) {
                header.set_link_name_literal(bytes).map_err(write_err)?;
                builder
                    .append_data(&mut header, &tar_path, io::empty())
                    .map_err(write_err)
            } else {
                builder
                    .append_link(&mut header, &tar_path, target)
                    .map_err(write_err)
            }
        }
        EntryKind::Hardlink(target) => {
            header.set_entry_type(tar::EntryType::Link);
            builder
                .append_link(&mut header, &tar_path, target)
                .map_err(write_err)
        }
        EntryKind::CharDevice(major, minor) | EntryKind::BlockDevice(major, minor) => {
            let kind = if matches!(entry.kind, EntryKind::CharDevice(..)) {
                tar::EntryType::Char
            } else {
                tar::EntryType::Block
            };
            header.set_entry_type(kind);
            header.set_device_major(*major).map_err(write_err)?;
            header.set_device_minor(*minor).map_err(write_err)?;
            builder
                .append_data(&mut header, &tar_path, io::empty())
                .map_err(write_err)
        }
        EntryKind::Fifo => {
            header.set_entry_type(tar::EntryType::Fifo);
            builder
                .append_data(&mut header, &tar_path, io::empty())
                .map_err(write_err)
        }
        EntryKind::Whiteout | EntryKind::Opaque => {
            header.set_entry_type(tar::EntryType::Regular);
            builder
                .append_data(&mut header, &tar_path, io::empty())
                .map_err(write_err)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Exactly;
    use std::io::Read as _;

    #[test]
    fn a_source_shorter_than_its_header_fails_instead_of_shifting_the_stream() {
        let mut whole = Vec::new();
        let mut exact = Exactly {
            inner: &b"abc"[..],
            left: 3,
        };
        assert_eq!(exact.read_to_end(&mut whole).unwrap(), 3);
        let mut short = Exactly {
            inner: &b"abc"[..],
            left: 5,
        };
        let err = short.read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
        assert!(err.to_string().contains("shrank by 2 bytes"), "{err}");
    }
}
