//! Build outputs: tags in the local store, an OCI image layout (directory or
//! tar), and a Docker archive that `docker load` and `podman load` accept.

use berth_store::image::StoredImage;
use berth_store::layer::compress::decompress;
use berth_store::layout::OciLayout;
use berth_store::oci::{ANNOTATION_REF_NAME, Descriptor, Index};
use berth_store::{Digest, Store, StoreError, atomic, io_err, tmp};
use std::fs::{self, File};
use std::io::{self, BufReader, Write};
use std::path::{Path, PathBuf};

/// Errors writing an output.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing the destination failed.
    #[error("writing the output {}", path.display())]
    Write {
        /// The destination.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A bad `--output` value.
    #[error(
        "invalid --output '{0}': expected type=oci,dest=DIR|FILE.tar or type=docker,dest=FILE.tar"
    )]
    Invalid(String),
}

/// Where an image goes besides the local store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// An OCI image layout directory.
    OciDir(PathBuf),
    /// An OCI image layout as a tar file.
    OciTar(PathBuf),
    /// A Docker archive (`docker save` format).
    DockerTar(PathBuf),
}

impl std::str::FromStr for Output {
    type Err = OutputError;
    fn from_str(text: &str) -> Result<Output, OutputError> {
        let mut kind = None;
        let mut dest = None;
        for part in text.split(',') {
            match part.split_once('=') {
                Some(("type", v)) => kind = Some(v.to_string()),
                Some(("dest", v)) => dest = Some(PathBuf::from(v)),
                _ => return Err(OutputError::Invalid(text.to_string())),
            }
        }
        let dest = dest.ok_or_else(|| OutputError::Invalid(text.to_string()))?;
        let is_tar = dest.extension().is_some_and(|e| e == "tar");
        match kind.as_deref() {
            Some("oci") if is_tar => Ok(Output::OciTar(dest)),
            Some("oci") => Ok(Output::OciDir(dest)),
            Some("docker") => Ok(Output::DockerTar(dest)),
            _ => Err(OutputError::Invalid(text.to_string())),
        }
    }
}

/// Writes `image` to `output`, naming it `names` (the first name is used
/// where a format has room for one).
pub fn write(
    store: &Store,
    image: &StoredImage,
    names: &[String],
    output: &Output,
) -> Result<(), OutputError> {
    match output {
        Output::OciDir(dir) => write_oci_dir(store, image, names, dir),
        Output::OciTar(path) => write_tar_file(path, |tar| {
            write_oci_tar(store, &[Named::new(image, names)], tar)
        }),
        Output::DockerTar(path) => write_tar_file(path, |tar| {
            write_docker_tar(store, &[Named::new(image, names)], tar)
        }),
    }
}

/// The archive formats `berth save` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// An OCI image layout as a tar (`oci-archive`).
    Oci,
    /// A Docker archive (`docker-archive`, what `docker save` writes).
    Docker,
}

/// An image to archive, with the names it goes under (none: unnamed).
#[derive(Debug, Clone)]
pub struct Named<'a> {
    /// The image.
    pub image: &'a StoredImage,
    /// Its names, normalised (`name:tag`).
    pub names: Vec<String>,
}

impl<'a> Named<'a> {
    /// `image` under `names` (normalised here).
    pub fn new(image: &'a StoredImage, names: &[String]) -> Named<'a> {
        Named {
            image,
            names: names
                .iter()
                .map(|n| berth_store::tags::normalize(n))
                .collect(),
        }
    }
}

/// Writes `images` as one archive to `out` (a file, a pipe, stdout) and
/// returns the writer, finished. Blobs shared by several images go in once.
pub fn write_archive<W: Write>(
    store: &Store,
    images: &[Named<'_>],
    format: ArchiveFormat,
    out: W,
) -> Result<W, OutputError> {
    let mut tar = tar::Builder::new(out);
    match format {
        ArchiveFormat::Oci => write_oci_tar(store, images, &mut tar)?,
        ArchiveFormat::Docker => write_docker_tar(store, images, &mut tar)?,
    }
    tar.into_inner()
        .map_err(write_err(Path::new("(archive output)")))
}

fn write_err(path: &Path) -> impl FnOnce(io::Error) -> OutputError {
    let path = path.to_path_buf();
    move |source| OutputError::Write { path, source }
}

fn blobs_of(image: &StoredImage) -> Vec<Descriptor> {
    let mut blobs = vec![image.descriptor.clone(), image.manifest.config.clone()];
    blobs.extend(image.manifest.layers.iter().cloned());
    blobs
}

pub use berth_store::oci::ANNOTATION_CONTAINERD_NAME;

fn index_for(images: &[Named<'_>]) -> Index {
    let mut index = Index::default();
    for named in images {
        if named.names.is_empty() {
            index.manifests.push(named.image.descriptor.clone());
        }
        for name in &named.names {
            let mut d = named.image.descriptor.clone();
            d.annotations
                .insert(ANNOTATION_REF_NAME.to_string(), name.clone());
            d.annotations
                .insert(ANNOTATION_CONTAINERD_NAME.to_string(), name.clone());
            index.manifests.push(d);
        }
    }
    index
}

fn write_oci_dir(
    store: &Store,
    image: &StoredImage,
    names: &[String],
    dir: &Path,
) -> Result<(), OutputError> {
    let fail = |e: StoreError| write_err(dir)(io::Error::other(e));
    let layout = OciLayout::create_sync(dir).map_err(fail)?;
    for d in blobs_of(image) {
        layout
            .add_blob_file(&store.blobs().path(&d.digest), &d.digest)
            .map_err(fail)?;
    }
    let written = index_for(&[Named::new(image, names)]);
    layout
        .edit_index(|index| {
            index.manifests = written.manifests;
            true
        })
        .map_err(fail)
}

fn write_tar_file(
    path: &Path,
    fill: impl FnOnce(&mut tar::Builder<io::BufWriter<File>>) -> Result<(), OutputError>,
) -> Result<(), OutputError> {
    let tmp = atomic::temp_sibling(path);
    let file = File::create(&tmp).map_err(write_err(path))?;
    let mut builder = tar::Builder::new(io::BufWriter::with_capacity(1 << 20, file));
    let result = fill(&mut builder).and_then(|()| {
        let writer = builder.into_inner().map_err(write_err(path))?;
        let file = writer
            .into_inner()
            .map_err(|e| write_err(path)(e.into_error()))?;
        file.sync_all().map_err(write_err(path))?;
        fs::rename(&tmp, path).map_err(write_err(path))
    });
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn header(size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h
}

fn append_bytes<W: Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    bytes: &[u8],
    dest: &Path,
) -> Result<(), OutputError> {
    let mut h = header(bytes.len() as u64);
    tar.append_data(&mut h, name, bytes)
        .map_err(write_err(dest))
}

fn append_dir<W: Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    dest: &Path,
) -> Result<(), OutputError> {
    let mut h = header(0);
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    tar.append_data(&mut h, name, io::empty())
        .map_err(write_err(dest))
}

fn append_blob<W: Write>(
    tar: &mut tar::Builder<W>,
    store: &Store,
    digest: &Digest,
    dest: &Path,
) -> Result<(), OutputError> {
    let file = store.blobs().open(digest)?;
    let size = file
        .metadata()
        .map_err(io_err("reading", &store.blobs().path(digest)))?
        .len();
    let mut h = header(size);
    tar.append_data(&mut h, format!("blobs/sha256/{}", digest.hex()), file)
        .map_err(write_err(dest))
}

fn write_oci_tar<W: Write>(
    store: &Store,
    images: &[Named<'_>],
    tar: &mut tar::Builder<W>,
) -> Result<(), OutputError> {
    let dest = PathBuf::from("(oci archive)");
    append_bytes(
        tar,
        "oci-layout",
        br#"{"imageLayoutVersion":"1.0.0"}"#,
        &dest,
    )?;
    let index = serde_json::to_vec(&index_for(images))
        .map_err(|e| write_err(&dest)(io::Error::other(e)))?;
    append_bytes(tar, "index.json", &index, &dest)?;
    append_dir(tar, "blobs/", &dest)?;
    append_dir(tar, "blobs/sha256/", &dest)?;
    let mut seen = std::collections::BTreeSet::new();
    for named in images {
        for d in blobs_of(named.image) {
            if seen.insert(d.digest.clone()) {
                append_blob(tar, store, &d.digest, &dest)?;
            }
        }
    }
    Ok(())
}

fn write_docker_tar<W: Write>(
    store: &Store,
    images: &[Named<'_>],
    tar: &mut tar::Builder<W>,
) -> Result<(), OutputError> {
    let dest = PathBuf::from("(docker archive)");
    append_dir(tar, "blobs/", &dest)?;
    append_dir(tar, "blobs/sha256/", &dest)?;
    let mut seen = std::collections::BTreeSet::new();
    let mut entries = Vec::new();
    for named in images {
        let image = named.image;
        if seen.insert(image.manifest.config.digest.clone()) {
            append_blob(tar, store, &image.manifest.config.digest, &dest)?;
        }
        // Docker archives carry uncompressed layers, named by diffID.
        let mut layer_paths = Vec::new();
        for (layer, diff_id) in image
            .manifest
            .layers
            .iter()
            .zip(&image.config.rootfs.diff_ids)
        {
            let name = format!("blobs/sha256/{}", diff_id.hex());
            layer_paths.push(name.clone());
            if seen.insert(diff_id.clone()) {
                append_uncompressed_layer(tar, store, &layer.digest, &name, &dest)?;
            }
        }
        entries.push(serde_json::json!({
            "Config": format!("blobs/sha256/{}", image.manifest.config.digest.hex()),
            "RepoTags": named.names,
            "Layers": layer_paths,
        }));
    }
    let bytes = serde_json::to_vec(&serde_json::Value::Array(entries))
        .map_err(|e| write_err(&dest)(io::Error::other(e)))?;
    append_bytes(tar, "manifest.json", &bytes, &dest)
}

/// Appends a layer blob uncompressed. The tar header needs the size first,
/// so the layer is decompressed to a staging file (an uncompressed blob is
/// appended straight from the store).
fn append_uncompressed_layer<W: Write>(
    tar: &mut tar::Builder<W>,
    store: &Store,
    blob: &Digest,
    name: &str,
    dest: &Path,
) -> Result<(), OutputError> {
    let mut reader = BufReader::with_capacity(1 << 20, store.blobs().open(blob)?);
    let head = io::BufRead::fill_buf(&mut reader).map_err(write_err(dest))?;
    let compressed = head.starts_with(&[0x1f, 0x8b]) || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]);
    if !compressed {
        let file = store.blobs().open(blob)?;
        let size = file
            .metadata()
            .map_err(io_err("reading", &store.blobs().path(blob)))?
            .len();
        return tar
            .append_data(&mut header(size), name, file)
            .map_err(write_err(dest));
    }
    let staging = tmp::fresh(&store.tmp_dir(), "docker-layer");
    let result = (|| {
        let mut reader = decompress(reader).map_err(write_err(&staging))?;
        let mut out = File::create(&staging).map_err(write_err(&staging))?;
        let size = io::copy(&mut reader, &mut out).map_err(write_err(&staging))?;
        drop(out);
        let file = File::open(&staging).map_err(write_err(&staging))?;
        tar.append_data(&mut header(size), name, file)
            .map_err(write_err(dest))
    })();
    let _ = fs::remove_file(&staging);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_flags_parse() {
        assert_eq!(
            "type=oci,dest=out".parse::<Output>().unwrap(),
            Output::OciDir("out".into())
        );
        assert_eq!(
            "type=oci,dest=o.tar".parse::<Output>().unwrap(),
            Output::OciTar("o.tar".into())
        );
        assert_eq!(
            "type=docker,dest=d.tar".parse::<Output>().unwrap(),
            Output::DockerTar("d.tar".into())
        );
        for bad in ["type=oci", "dest=x", "type=zip,dest=x", "oci"] {
            assert!(bad.parse::<Output>().is_err(), "{bad}");
        }
    }
}
