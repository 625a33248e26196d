//! `berth commit`: a container's changes as a new image. The container's
//! overlay upper directory becomes one layer on top of its image's layers
//! (overlay whiteouts become OCI whiteouts), leaving out every mount point of
//! its bundle: volumes, and the files berth binds over `/etc/hosts`,
//! `/etc/hostname` and `/etc/resolv.conf`.
//!
//! The upper directory is the container's to shape, so it is read inside
//! its root (`berth_store::layer::scan_root`): a planted symlink is stored as
//! a symlink and never read through. A running container is paused through
//! its runtime while its upper directory is read, unless asked otherwise.

use super::supervise::runtime_of;
use super::{ContainerError, ContainerRecord, container_dir};
use crate::runc::Status;
use berth_store::image::{self, StoredImage};
use berth_store::layer::scan_root::{ScanRootError, scan_upper_in_root};
use berth_store::layer::write::write_layer_in_root;
use berth_store::layer::{Compression, WriteOptions, extract};
use berth_store::oci::{Descriptor, History, ImageConfig, MEDIA_MANIFEST, rfc3339};
use berth_store::{Digest, Store};

/// Errors of `berth commit`.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// A container operation failed.
    #[error(transparent)]
    Container(#[from] ContainerError),
    /// Reading the upper directory failed.
    #[error("reading the changes of container {id}")]
    Scan {
        /// The container.
        id: String,
        /// The underlying error.
        source: ScanRootError,
    },
    /// Writing the layer failed.
    #[error("writing the layer of container {id}")]
    Layer {
        /// The container.
        id: String,
        /// The underlying error.
        source: berth_store::layer::LayerError,
    },
    /// The image the container runs is gone from the store.
    #[error("the image {digest} of container {id} is no longer in the local store")]
    Image {
        /// The container.
        id: String,
        /// The image's manifest digest.
        digest: Digest,
        /// The underlying error.
        source: image::ImageError,
    },
    /// The bundle's `config.json` could not be read.
    #[error("reading the mounts of container {id} from {}", path.display())]
    Bundle {
        /// The container.
        id: String,
        /// The file.
        path: std::path::PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// A `--change` could not be applied.
    #[error("applying the changes to the image of container {id}")]
    Change {
        /// The container.
        id: String,
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Writing or naming the image failed.
    #[error(transparent)]
    Write(#[from] image::ImageError),
}

/// How to commit.
pub struct CommitOptions<'a> {
    /// Pause a running container while its changes are read.
    pub pause: bool,
    /// The history comment (`-m`).
    pub comment: Option<&'a str>,
    /// The author (`-a`).
    pub author: Option<&'a str>,
    /// The name to tag the image with; untagged when `None`.
    pub name: Option<&'a str>,
    /// When the image is made, seconds since the epoch.
    pub created: i64,
}

/// The result of a commit.
#[derive(Debug, Clone)]
pub struct Committed {
    /// The new image's manifest.
    pub descriptor: Descriptor,
    /// The image id (its config digest).
    pub id: Digest,
}

/// A callback that edits the new image's configuration (`--change`).
pub type EditConfig<'a> =
    &'a mut dyn FnMut(&mut ImageConfig) -> Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// The mount destinations of the container's bundle, relative (no leading
/// `/`): what the commit leaves out.
fn mount_points(store: &Store, id: &str) -> Result<Vec<String>, CommitError> {
    let path = container_dir(store, id).join("config.json");
    let bundle_err = |source| CommitError::Bundle {
        id: id.to_string(),
        path: path.clone(),
        source,
    };
    let spec =
        oci_spec::runtime::Spec::load(&path).map_err(|e| bundle_err(std::io::Error::other(e)))?;
    let mut points: Vec<String> = spec
        .mounts()
        .iter()
        .flatten()
        .map(|m| {
            m.destination()
                .to_string_lossy()
                .trim_matches('/')
                .to_string()
        })
        .filter(|p| !p.is_empty())
        .collect();
    // berth binds these files itself; they never belong to the image.
    for file in ["etc/hosts", "etc/hostname", "etc/resolv.conf"] {
        points.push(file.to_string());
    }
    Ok(points)
}

/// Whether `rel` is one of `points` or under one.
fn under_any(rel: &str, points: &[String]) -> bool {
    points.iter().any(|p| {
        rel == p
            || rel
                .strip_prefix(p.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

/// Resumes a container paused for the commit when dropped.
struct Paused<'a> {
    store: &'a Store,
    record: &'a ContainerRecord,
}

impl Drop for Paused<'_> {
    fn drop(&mut self) {
        if let Err(e) = runtime_of(self.store, self.record).resume(&self.record.id) {
            tracing::warn!(error = %e, container = %self.record.id, "resuming the container after the commit failed");
        }
    }
}

/// Pauses the container when it runs and is not paused already; the guard
/// resumes it.
fn pause<'a>(
    store: &'a Store,
    record: &'a ContainerRecord,
) -> Result<Option<Paused<'a>>, ContainerError> {
    if !record.is_running() {
        return Ok(None);
    }
    let runc = runtime_of(store, record);
    match runc.state(&record.id) {
        Ok(state) if state.status == Status::Running => {
            runc.pause(&record.id)?;
            Ok(Some(Paused { store, record }))
        }
        _ => Ok(None),
    }
}

/// The image the container was created from, by its manifest digest (its
/// tag may point elsewhere by now).
fn base_image(store: &Store, record: &ContainerRecord) -> Result<StoredImage, image::ImageError> {
    let bytes = store.blobs().read(&record.image_digest)?;
    #[derive(serde::Deserialize)]
    struct MediaType {
        #[serde(rename = "mediaType", default)]
        media_type: Option<String>,
    }
    let media_type = serde_json::from_slice::<MediaType>(&bytes)
        .ok()
        .and_then(|m| m.media_type)
        .unwrap_or_else(|| MEDIA_MANIFEST.to_string());
    let descriptor = Descriptor {
        artifact_type: None,
        unknown: Default::default(),
        urls: None,
        media_type,
        digest: record.image_digest.clone(),
        size: bytes.len() as u64,
        annotations: Default::default(),
        platform: None,
    };
    image::load_descriptor(store, &record.image, descriptor)
}

/// Commits the container `record`: its upper directory as one layer on its
/// image, the config edited by `edit`, a history entry with the comment and
/// author.
pub fn commit(
    store: &Store,
    record: &ContainerRecord,
    options: &CommitOptions<'_>,
    edit: EditConfig<'_>,
) -> Result<Committed, CommitError> {
    let id = record.id.clone();
    let _lease = store.lease().map_err(ContainerError::from)?;
    let base = base_image(store, record).map_err(|source| CommitError::Image {
        id: id.clone(),
        digest: record.image_digest.clone(),
        source,
    })?;
    let mut config = base.config.clone();
    edit(&mut config).map_err(|source| CommitError::Change {
        id: id.clone(),
        source,
    })?;
    let points = mount_points(store, &id)?;
    let upper = container_dir(store, &id).join("upper");
    let layer = {
        let _paused = if options.pause {
            pause(store, record)?
        } else {
            None
        };
        let entries =
            scan_upper_in_root(&upper, &|rel| under_any(rel, &points)).map_err(|source| {
                CommitError::Scan {
                    id: id.clone(),
                    source,
                }
            })?;
        write_layer_in_root(
            store.blobs(),
            entries,
            WriteOptions {
                compression: Compression::Gzip,
                source_date_epoch: None,
            },
            &upper,
        )
        .map_err(|source| CommitError::Layer {
            id: id.clone(),
            source,
        })?
    };
    // Unpacking checks the new layer as any untrusted layer is checked and
    // gives it the snapshot a container of the new image runs on.
    extract::ensure_snapshot(store, &layer.descriptor.digest, &layer.diff_id)
        .map_err(ContainerError::from)?;
    let created = rfc3339(options.created);
    config.created = Some(created.clone());
    if let Some(author) = options.author {
        config.author = Some(author.to_string());
    }
    config.rootfs.diff_ids.push(layer.diff_id.clone());
    config.history.push(History {
        created: Some(created),
        created_by: Some(record.command.join(" ")),
        comment: options.comment.map(str::to_string),
        empty_layer: false,
    });
    let mut layers = base.layers();
    layers.push(layer);
    let descriptor = image::write(store, &config, &layers)?;
    match options.name {
        Some(name) => store.tag(name, &descriptor).map_err(ContainerError::from)?,
        None => store
            .edit_index(|entries| {
                if entries.iter().any(|d| d.digest == descriptor.digest) {
                    return false;
                }
                entries.push(descriptor.clone());
                true
            })
            .map_err(ContainerError::from)?,
    }
    let stored = image::load_descriptor(store, &id, descriptor.clone())?;
    Ok(Committed {
        descriptor,
        id: stored.manifest.config.digest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_and_what_is_under_them_are_left_out() {
        let points: Vec<String> = ["etc/hosts", "data", "dev"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let cases = [
            ("etc/hosts", true),
            ("etc/hostsfile", false),
            ("etc", false),
            ("data", true),
            ("data/x/y", true),
            ("database", false),
            ("dev/null", true),
        ];
        for (rel, want) in cases {
            assert_eq!(under_any(rel, &points), want, "{rel}");
        }
    }

    #[test]
    fn bundle_without_config_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let err = mount_points(&store, "abc").unwrap_err().to_string();
        assert!(err.contains("config.json"), "{err}");
    }
}
