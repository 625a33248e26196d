//! The berth registry client: it pushes and pulls images over the OCI
//! distribution protocol (and Docker's registry dialect) and moves only the blobs
//! the other side is missing.
//!
//! It knows nothing of containers or Dockerfiles: its world is references,
//! manifests, blobs and a local content store. It never prints; progress is
//! reported to the caller as [`progress::Event`]s.
//!
//! - [`reference`]: Docker-style image references.
//! - [`manifest`]: manifests, indexes, descriptors and platform selection.
//! - [`store`]: the [`store::ContentStore`] trait and the OCI image layout.
//! - [`Client`]: single operations (manifests, blobs, tags, delete, referrers)
//!   and whole-image [`Client::push`] and [`Client::pull`].
//! - [`auth`]: credentials from Docker's and podman's files, tokens.

pub mod auth;
mod blob;
mod client;
pub mod digest;
mod error;
mod locations;
pub mod manifest;
mod parallel;
pub mod progress;
mod pull;
mod push;
pub mod reference;
pub mod store;
mod tls;
mod transport;

pub use client::{Client, ClientOptions, FetchedManifest, Referrers};
pub use digest::Digest;
pub use error::Error;
pub use pull::{PullOptions, PullReport};
pub use push::{PushOptions, PushReport};
pub use reference::Reference;
