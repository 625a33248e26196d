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
//! - content goes to and comes from a [`berth_store::content::ContentStore`],
//!   the store's one OCI layout ([`berth_store::layout::OciLayout`]).
//! - [`Client`]: single operations (manifests, blobs, tags, delete, referrers)
//!   and whole-image [`Client::push`] and [`Client::pull`].
//! - [`auth`]: credentials from Docker's and podman's files, tokens.
//! - [`login`]: checking a credential and storing it where Docker does.

pub mod auth;
mod blob;
mod client;
mod error;
mod locations;
pub mod login;
pub mod manifest;
mod parallel;
pub mod progress;
mod pull;
mod push;
mod tls;
mod transport;

pub use client::{Client, ClientOptions, FetchedManifest, Referrers};
pub use error::Error;
pub use pull::{PullOptions, PullReport};
pub use push::{PushOptions, PushReport};

/// The TLS settings the client uses (rustls on the ring provider, servers
/// verified against the platform's trust store), for other HTTP clients of
/// berth such as `ADD <url>`; pass it to reqwest's `tls_backend_preconfigured`.
pub fn tls_client_config() -> Result<rustls::ClientConfig, rustls::Error> {
    // Another part of the process may have installed a provider already.
    let _ = rustls::crypto::ring::default_provider().install_default();
    tls::client_config()
}
