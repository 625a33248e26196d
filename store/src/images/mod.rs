//! The images of the local store as a user sees them: listing, naming an
//! image, inspecting it, its history, removing it and pruning the store.
//!
//! An image is a manifest (or an index) named in `index.json`; its ID is
//! the digest of its image config, as in docker and podman. A user names an
//! image by `name[:tag]`, by `name@sha256:<manifest digest>`, by its
//! manifest digest, or by a unique prefix of its ID (with or without
//! `sha256:`); a name always wins over an ID prefix that looks the same.

mod history;
mod inspect;
mod list;
mod name;
mod remove;
mod resolve;
pub mod time;

pub use history::{HistoryRow, history};
pub use inspect::{inspect, repository_of};
pub use list::{LocalImage, load as load_top, local_images};
pub use name::validate_name;
pub use remove::{RemoveOptions, RemoveReport, Removed, remove};
pub use resolve::{Selected, resolve, resolve_in};

use crate::image::ImageError;
use crate::{Digest, StoreError};

/// Errors of image management.
#[derive(Debug, thiserror::Error)]
pub enum ImagesError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An image document could not be read.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// No image matches.
    #[error("no such image: '{0}'\nhint: `berth images` lists the local images")]
    NotFound(String),
    /// An ID prefix matches several images.
    #[error(
        "image ID prefix '{prefix}' is ambiguous: it matches {}\nhint: name the image by its manifest digest (berth images --digests)",
        .matches.join(", ")
    )]
    Ambiguous {
        /// The prefix the user gave.
        prefix: String,
        /// The IDs it matches.
        matches: Vec<String>,
    },
    /// A container uses the image.
    #[error(
        "image '{reference}' is in use by container {}\nhint: remove the container first, or use --force to untag the image anyway",
        .containers.join(", ")
    )]
    InUse {
        /// The reference the user gave.
        reference: String,
        /// The containers (short ids).
        containers: Vec<String>,
    },
    /// An ID names an image with several tags.
    #[error(
        "image '{reference}' has several tags ({}); remove them one by one or use --force",
        .names.join(", ")
    )]
    SeveralTags {
        /// The reference the user gave.
        reference: String,
        /// Its tags.
        names: Vec<String>,
    },
    /// A new name does not follow docker's reference grammar.
    #[error("invalid image name '{name}': {reason}")]
    InvalidName {
        /// The name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// The first 12 hex digits of a digest, as docker shows image IDs.
pub fn short_id(digest: &Digest) -> &str {
    &digest.hex()[..12]
}
