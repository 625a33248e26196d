//! The client's error type. Every message names the reference, URL, digest or
//! path involved, and carries a hint where one helps.

use crate::manifest::ManifestError;
use berth_store::StoreError;
use berth_store::digest::Digest;
use berth_store::reference::ReferenceError;

/// Anything that can go wrong talking to a registry or moving an image.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The image reference could not be parsed.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// The local content store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A manifest could not be read.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The registry could not be reached, or the connection failed, even after
    /// retrying.
    #[error(
        "cannot reach registry {registry} ({method} {url}) after {attempts} attempt(s): {detail}\n\
         hint: check that the registry is running and the address is right; \
         plain HTTP is used only for localhost and registries marked insecure"
    )]
    Unreachable {
        /// The registry host.
        registry: String,
        /// The HTTP method.
        method: String,
        /// The URL requested.
        url: String,
        /// How many attempts were made.
        attempts: u32,
        /// The underlying error, with its causes.
        detail: String,
    },
    /// The registry answered with an unexpected status.
    #[error("{method} {url} failed with HTTP {status}{}: {message}", attempts_note(*attempts))]
    Status {
        /// The HTTP method.
        method: String,
        /// The URL requested.
        url: String,
        /// The status code.
        status: u16,
        /// How many attempts were made.
        attempts: u32,
        /// The registry's error code(s) and message(s), or the body.
        message: String,
    },
    /// Authentication failed or was refused.
    #[error(
        "authentication to {registry} failed for {scope}: {message}\n\
         hint: check the credentials (berth login, docker login or podman login store them)"
    )]
    Unauthorized {
        /// The registry host.
        registry: String,
        /// The access asked for, e.g. `repository:app:pull,push`.
        scope: String,
        /// What the registry or token server said.
        message: String,
    },
    /// The manifest, tag or repository does not exist.
    #[error("{what} not found in {registry}: {message}")]
    NotFound {
        /// What was looked for, e.g. `manifest app:1.0`.
        what: String,
        /// The registry host.
        registry: String,
        /// The registry's message.
        message: String,
    },
    /// A manifest was larger than [`crate::manifest::MAX_MANIFEST_SIZE`].
    #[error(
        "manifest {reference} is {size} bytes, more than the limit of {limit} bytes; refusing it"
    )]
    ManifestTooLarge {
        /// The reference fetched.
        reference: String,
        /// Its declared or received size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A response body that is not a blob was larger than its limit.
    #[error(
        "the {what} from {url} is larger than the limit of {limit} bytes; refusing to read more"
    )]
    BodyTooLarge {
        /// What the body was, e.g. `token response`.
        what: String,
        /// Where it came from.
        url: String,
        /// The limit.
        limit: u64,
    },
    /// An operation that is not a blob transfer took longer than its deadline.
    #[error(
        "{what} ({url}) did not finish within {}s; giving up\n\
         hint: the registry is answering too slowly or never finishes its answer",
        limit.as_secs_f64()
    )]
    DeadlineExceeded {
        /// The operation, e.g. `listing tags of app`.
        what: String,
        /// The URL it started with.
        url: String,
        /// The deadline.
        limit: std::time::Duration,
    },
    /// Tag-list pagination did not end.
    #[error("listing tags from {url}: {reason}")]
    Pagination {
        /// The page URL where it was noticed.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// Content from the registry did not match the digest asked for.
    #[error("{what} from {url} does not match digest {expected}: got {actual}")]
    DigestMismatch {
        /// What was fetched.
        what: String,
        /// Where from.
        url: String,
        /// The digest asked for.
        expected: Digest,
        /// The digest received.
        actual: Digest,
    },
    /// Credentials could not be read from Docker's or podman's configuration.
    #[error("reading credentials for {registry}: {message}")]
    Credentials {
        /// The registry host.
        registry: String,
        /// What failed.
        message: String,
    },
    /// The registry broke the protocol (a missing header, a bad body…).
    #[error("protocol error from {url}: {reason}")]
    Protocol {
        /// The URL involved.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// The index has no manifest for the platform asked for.
    #[error("{reference} has no image for platform {platform}; it has: {available}")]
    NoMatchingPlatform {
        /// The reference pulled.
        reference: String,
        /// The platform wanted.
        platform: String,
        /// The platforms listed.
        available: String,
    },
    /// The local store has no image under this name.
    #[error("no image named '{name}' in the local store at {location}")]
    LocalImageNotFound {
        /// The name asked for.
        name: String,
        /// The store's location.
        location: String,
    },
    /// A bug or a crashed task inside the client.
    #[error("internal error: {0}")]
    Internal(String),
    /// Building the HTTP client failed.
    #[error("setting up the HTTP client: {0}")]
    HttpSetup(String),
}

fn attempts_note(attempts: u32) -> String {
    if attempts > 1 {
        format!(" after {attempts} attempts")
    } else {
        String::new()
    }
}

/// Formats an error with its chain of causes, which reqwest keeps there.
pub(crate) fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
