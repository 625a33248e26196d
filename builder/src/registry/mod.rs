//! Images from and to registries, through berth's registry client: `berth
//! pull`, `berth push`, a `FROM` of an image the local store lacks, and
//! `build --push` all go through [`pull_image`] and [`push_image`].
//!
//! Only what the other side is missing moves. Progress is reported as the
//! client's [`Event`]s to a caller-supplied sink; this module never prints.
//!
//! The store's `oci/` directory is an OCI image layout, so the registry
//! client's layout store works on it directly. A pull holds a store lease
//! until the image is tagged (so `rmi`/`prune` never remove blobs it has
//! decided to reuse), and takes the store's index lock only to write the tag.
//! A download cut off (a killed process, a lost connection) stays staged in
//! `oci/.ingest/<hex>.partial` and the next pull continues after its bytes.

mod explain;
mod login;
mod pull;
mod push;
mod session;

use berth_store::reference;
use std::path::PathBuf;

pub use berth_registry_client::login::Stored;
pub use berth_registry_client::progress::{BlobOutcome, Event, NoProgress, Progress, ProgressSink};
pub use berth_registry_client::{PullReport, PushReport};
pub use login::{login, logout};
pub use pull::{pull, pull_image};
pub use push::{push, push_image};
pub use session::{INSECURE_REGISTRIES_ENV, TransferOptions, parse_platform};

/// Errors talking to a registry. Each names the reference and, where it
/// helps, ends with a hint on its own line.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The reference does not parse.
    #[error("invalid image reference '{reference}': {reason}")]
    Reference {
        /// The reference.
        reference: String,
        /// Why.
        reason: String,
    },
    /// The registry refused the credential (or the lack of one).
    #[error(
        "{action} {reference}: unauthorized: {registry} refused access ({message})\n\
         hint: check the name; if it is right, log in with 'berth login {login}' \
         (or check the credential stored for it)"
    )]
    Unauthorized {
        /// `pulling` or `pushing`.
        action: &'static str,
        /// The reference.
        reference: String,
        /// The registry host that refused.
        registry: String,
        /// What `berth login` should be given.
        login: String,
        /// What the registry said.
        message: String,
    },
    /// The repository is not on the registry.
    #[error(
        "{action} {reference}: repository '{repository}' not found on {registry} ({message})\n\
         hint: check the image name; a private repository also answers this way until you \
         'berth login {registry}'"
    )]
    UnknownRepository {
        /// `pulling` or `pushing`.
        action: &'static str,
        /// The reference.
        reference: String,
        /// The repository path.
        repository: String,
        /// The registry.
        registry: String,
        /// What the registry said.
        message: String,
    },
    /// The repository exists but has no such tag (or digest).
    #[error(
        "{action} {reference}: tag '{tag}' not found in {place}\n\
         hint: check the tag; the registry has: {available}"
    )]
    UnknownTag {
        /// `pulling` or `pushing`.
        action: &'static str,
        /// The reference.
        reference: String,
        /// The tag or digest asked for.
        tag: String,
        /// The repository and registry, e.g. `repository 'app' on host:5000`.
        place: String,
        /// Some tags the repository does have.
        available: String,
    },
    /// The local store ran out of space; the partial download was removed.
    #[error(
        "{action} {reference}: no space left on device writing to the store at {}: {message}\n\
         hint: free space there (berth prune, berth rmi) or use another --root; \
         nothing was tagged and the partial download was removed",
        root.display()
    )]
    NoSpace {
        /// `pulling` or `pushing`.
        action: &'static str,
        /// The reference.
        reference: String,
        /// The store root.
        root: PathBuf,
        /// The store's error.
        message: String,
    },
    /// A login was refused: nothing was stored.
    #[error(
        "logging in to {registry}: unauthorized: the registry refused the username and \
         password ({message})\nhint: check them; nothing was stored"
    )]
    LoginRefused {
        /// The registry.
        registry: String,
        /// What the registry said.
        message: String,
    },
    /// Logging in or out failed otherwise.
    #[error("{action} {registry}: {message}")]
    Login {
        /// `logging in to` or `logging out of`.
        action: &'static str,
        /// The registry.
        registry: String,
        /// What failed.
        message: String,
    },
    /// Any other failure of the pull or push.
    #[error("{action} {reference}: {message}")]
    Transfer {
        /// `pulling` or `pushing`.
        action: &'static str,
        /// The reference.
        reference: String,
        /// The client's message.
        message: String,
    },
}

fn parse(text: &str) -> Result<reference::Reference, RegistryError> {
    reference::parse(text).map_err(|e| RegistryError::Reference {
        reference: text.to_string(),
        reason: e.reason,
    })
}

/// Whether a `FROM` name should be looked for in a registry when the local
/// store lacks it. Everything but `scratch` can be; a local-only name simply
/// fails to pull with the registry's answer.
pub fn may_pull(image: &str) -> bool {
    image != "scratch"
}
