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

use berth_registry_client::manifest::Platform;
use berth_registry_client::{
    Client, ClientOptions, Error as ClientError, PullOptions, PushOptions,
};
use berth_store::layout::OciLayout;
use berth_store::lock::FileLock;
use berth_store::reference;
use berth_store::{Store, StoreError};
use std::path::PathBuf;
use std::sync::Arc;

pub use berth_registry_client::login::Stored;
pub use berth_registry_client::progress::{BlobOutcome, Event, NoProgress, Progress, ProgressSink};
pub use berth_registry_client::{PullReport, PushReport};

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

/// What a pull or push may be told beyond the reference.
#[derive(Debug, Clone, Default)]
pub struct TransferOptions {
    /// The platform to pick from a multi-platform image (pull only); the
    /// host's when `None`.
    pub platform: Option<Platform>,
    /// Registries (`host[:port]`) to reach over plain HTTP besides the
    /// loopback ones, which always are (as in Docker).
    pub insecure_registries: Vec<String>,
}

/// The environment variable listing (comma-separated) more registries to
/// reach over plain HTTP, for every pull and push (`FROM` and `--push` too).
pub const INSECURE_REGISTRIES_ENV: &str = "BERTH_INSECURE_REGISTRIES";

impl TransferOptions {
    /// Options with the insecure registries `BERTH_INSECURE_REGISTRIES` names.
    pub fn from_env() -> TransferOptions {
        let listed = std::env::var(INSECURE_REGISTRIES_ENV).unwrap_or_default();
        TransferOptions {
            platform: None,
            insecure_registries: listed
                .split(',')
                .map(str::trim)
                .filter(|host| !host.is_empty())
                .map(str::to_string)
                .collect(),
        }
    }
}

/// Parses `os/arch[/variant]` (`linux/arm64`, `linux/arm/v7`).
pub fn parse_platform(text: &str) -> Option<Platform> {
    Platform::parse(text)
}

/// What a pull or push runs on: a store lease (nothing it uses or decides
/// to reuse may be collected before it ends), threads, the store's layout
/// and a client.
struct Session {
    runtime: tokio::runtime::Runtime,
    layout: OciLayout,
    client: Client,
    _lease: FileLock,
}

impl Session {
    fn open(
        store: &Store,
        action: &'static str,
        reference: &str,
        options: &TransferOptions,
    ) -> Result<Session, RegistryError> {
        let fail = |message: String| RegistryError::Transfer {
            action,
            reference: reference.to_string(),
            message,
        };
        let lease = store
            .lease()
            .map_err(|e| fail(crate::engine::fetch::error_chain(&e)))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| fail(format!("starting the transfer threads: {e}")))?;
        let layout = store.layout().clone();
        let client = Client::new(ClientOptions {
            insecure_registries: options.insecure_registries.clone(),
            // Pushes mount blobs from repositories earlier pulls and pushes
            // put them in, across berth processes.
            blob_location_cache: Some(store.root().join("registry").join("blob-locations.json")),
            ..ClientOptions::default()
        })
        .map_err(|e| fail(crate::engine::fetch::error_chain(&e)))?;
        Ok(Session {
            runtime,
            layout,
            client,
            _lease: lease,
        })
    }
}

fn parse(text: &str) -> Result<reference::Reference, RegistryError> {
    reference::parse(text).map_err(|e| RegistryError::Reference {
        reference: text.to_string(),
        reason: e.reason,
    })
}

/// What the user names to `berth login` for this reference's registry.
fn login_name(reference: &reference::Reference) -> String {
    match reference.registry() {
        "docker.io" | "index.docker.io" => "docker.io".to_string(),
        other => other.to_string(),
    }
}

/// Turns a client error into one that says what went wrong in the user's
/// terms, with a hint.
async fn explain(
    action: &'static str,
    text: &str,
    parsed: &reference::Reference,
    store: &Store,
    client: Option<&Client>,
    err: ClientError,
) -> RegistryError {
    let registry = parsed.registry().to_string();
    match err {
        ClientError::Unauthorized { message, .. } => RegistryError::Unauthorized {
            action,
            reference: text.to_string(),
            login: login_name(parsed),
            registry,
            message,
        },
        ClientError::NotFound { what, message, .. } if what.starts_with("manifest") => {
            // Registries answer an unknown repository and an unknown tag alike
            // (MANIFEST_UNKNOWN or NAME_UNKNOWN); the tag list tells them apart.
            let tags = match client {
                Some(client) => Some(client.list_tags(parsed).await),
                None => None,
            };
            let available = match tags {
                Some(Err(ClientError::NotFound { .. })) => {
                    return RegistryError::UnknownRepository {
                        action,
                        reference: text.to_string(),
                        repository: parsed.repository().to_string(),
                        registry,
                        message,
                    };
                }
                _ if message.contains("NAME_UNKNOWN") => {
                    return RegistryError::UnknownRepository {
                        action,
                        reference: text.to_string(),
                        repository: parsed.repository().to_string(),
                        registry,
                        message,
                    };
                }
                Some(Ok(tags)) if tags.is_empty() => "no tags".to_string(),
                Some(Ok(tags)) => {
                    let mut shown: Vec<String> = tags.into_iter().take(10).collect();
                    if shown.len() == 10 {
                        shown.push("…".to_string());
                    }
                    shown.join(", ")
                }
                Some(Err(_)) => "(the tag list is not readable)".to_string(),
                None => "(not listed)".to_string(),
            };
            RegistryError::UnknownTag {
                action,
                reference: text.to_string(),
                tag: reference::target(parsed).to_string(),
                place: format!("repository '{}' on {registry}", parsed.repository()),
                available,
            }
        }
        ClientError::Store(StoreError::Io { ref source, .. })
            if source.raw_os_error() == Some(libc::ENOSPC) =>
        {
            RegistryError::NoSpace {
                action,
                reference: text.to_string(),
                root: store.root().to_path_buf(),
                message: crate::engine::fetch::error_chain(&err),
            }
        }
        other => RegistryError::Transfer {
            action,
            reference: text.to_string(),
            message: with_causes(&other),
        },
    }
}

/// The client error's message and then its causes, which the client keeps as
/// sources (a manifest's JSON error, for one); `Transfer` holds text, so they
/// go into it. A cause the message already quotes (the store's errors still
/// do) is left out.
fn with_causes(err: &ClientError) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
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

/// Pulls `image` into the store under `name` (its local name, see
/// [`berth_store::tags::normalize`]). Blobs the store already has are not
/// downloaded; the name is written last, so a failed pull leaves no tag.
pub fn pull_image(
    store: &Store,
    image: &str,
    name: &str,
    options: &TransferOptions,
    progress: ProgressSink,
) -> Result<PullReport, RegistryError> {
    let parsed = parse(image)?;
    let session = Session::open(store, "pulling", image, options)?;
    let target = session.layout.clone();
    let pull_options = PullOptions {
        platform: options.platform.clone(),
        all_platforms: false,
    };
    session.runtime.block_on(async {
        let pulled = session
            .client
            .pull(&parsed, &target, name, &pull_options, progress)
            .await;
        match pulled {
            Ok(report) => Ok(report),
            Err(err) => {
                Err(explain("pulling", image, &parsed, store, Some(&session.client), err).await)
            }
        }
    })
}

/// Pushes the image the store names `name` to `target`; blobs the registry
/// has are not sent (a blob it can mount from another repository is
/// mounted).
pub fn push_image(
    store: &Store,
    name: &str,
    target: &str,
    options: &TransferOptions,
    progress: ProgressSink,
) -> Result<PushReport, RegistryError> {
    let parsed = parse(target)?;
    let session = Session::open(store, "pushing", target, options)?;
    session.runtime.block_on(async {
        let pushed = session
            .client
            .push(
                &session.layout,
                name,
                &parsed,
                &PushOptions::default(),
                progress,
            )
            .await;
        match pushed {
            Ok(report) => Ok(report),
            Err(ClientError::LocalImageNotFound { name, .. }) => Err(RegistryError::Transfer {
                action: "pushing",
                reference: target.to_string(),
                message: format!(
                    "no image named '{name}' in the local store at {}\n\
                     hint: 'berth images' lists them; build, pull or tag one under that name",
                    store.root().display()
                ),
            }),
            Err(err) => Err(explain("pushing", target, &parsed, store, None, err).await),
        }
    })
}

/// Pulls `image` into the store under `name`, sending (bytes received, bytes
/// to receive) over all blobs to `bytes` as they move (a `FROM` pull's
/// progress).
pub fn pull(
    store: &Store,
    image: &str,
    name: &str,
    bytes: std::sync::mpsc::Sender<(u64, u64)>,
) -> Result<(), RegistryError> {
    pull_image(
        store,
        image,
        name,
        &TransferOptions::from_env(),
        Arc::new(byte_counter(bytes)),
    )
    .map(|_report| ())
}

/// A registry progress receiver that sums the blobs' byte counts and sends
/// (done, total) on each change.
fn byte_counter(bytes: std::sync::mpsc::Sender<(u64, u64)>) -> impl Fn(Event) + Send + Sync {
    let blobs = std::sync::Mutex::new(std::collections::BTreeMap::new());
    move |event| {
        let Ok(mut blobs) = blobs.lock() else { return };
        match event {
            Event::BlobStarted { digest, size } => {
                blobs.insert(digest.to_string(), (0, size));
            }
            Event::BlobProgress {
                digest,
                done,
                total,
            } => {
                blobs.insert(digest.to_string(), (done, total));
            }
            Event::BlobDone { digest, .. } => {
                if let Some((done, total)) = blobs.get_mut(&digest.to_string()) {
                    *done = *total;
                }
            }
            _ => return,
        }
        let (done, total) = blobs
            .values()
            .fold((0, 0), |(d, t), (done, total)| (d + done, t + total));
        let _ = bytes.send((done, total));
    }
}

/// Pushes the image the store names `name` to `target` without progress and
/// returns the manifest digest.
pub fn push(store: &Store, name: &str, target: &str) -> Result<String, RegistryError> {
    push_image(
        store,
        name,
        target,
        &TransferOptions::from_env(),
        Arc::new(NoProgress),
    )
    .map(|report| report.digest.to_string())
}

/// Where credentials are stored: Docker's `config.json`
/// (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`).
fn config_path(action: &'static str, registry: &str) -> Result<PathBuf, RegistryError> {
    berth_registry_client::login::docker_config_path().ok_or_else(|| RegistryError::Login {
        action,
        registry: registry.to_string(),
        message: "neither DOCKER_CONFIG nor HOME is set, so there is no Docker config.json \
                  to keep the credential in"
            .to_string(),
    })
}

/// Checks the username and password against `registry` (`GET /v2/`) and, if
/// it accepts them, stores them where Docker does (its `config.json`, or the
/// credential helper that file names for the registry).
pub fn login(
    registry: &str,
    username: &str,
    password: &str,
    options: &TransferOptions,
) -> Result<Stored, RegistryError> {
    let action = "logging in to";
    let fail = |message: String| RegistryError::Login {
        action,
        registry: registry.to_string(),
        message,
    };
    let key = berth_registry_client::login::server_key(registry);
    let config = config_path(action, registry)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| fail(format!("starting the client: {e}")))?;
    let client_options = ClientOptions {
        insecure_registries: options.insecure_registries.clone(),
        // A wrong address should fail fast, not after minutes of retries.
        max_attempts: 2,
        ..ClientOptions::default()
    };
    let checked = runtime.block_on(Client::check_login(
        client_options,
        &key,
        username,
        password,
    ));
    match checked {
        Ok(()) => {}
        Err(ClientError::Unauthorized { message, .. }) => {
            return Err(RegistryError::LoginRefused {
                registry: registry.to_string(),
                message,
            });
        }
        Err(err) => return Err(fail(crate::engine::fetch::error_chain(&err))),
    }
    berth_registry_client::login::save(&config, &key, username, password)
        .map_err(|e| fail(crate::engine::fetch::error_chain(&e)))
}

/// Removes the stored credential for `registry`; `None` when there was none.
pub fn logout(registry: &str) -> Result<Option<Stored>, RegistryError> {
    let action = "logging out of";
    let key = berth_registry_client::login::server_key(registry);
    let config = config_path(action, registry)?;
    berth_registry_client::login::erase(&config, &key).map_err(|e| RegistryError::Login {
        action,
        registry: registry.to_string(),
        message: crate::engine::fetch::error_chain(&e),
    })
}

/// Whether a `FROM` name should be looked for in a registry when the local
/// store lacks it. Everything but `scratch` can be; a local-only name simply
/// fails to pull with the registry's answer.
pub fn may_pull(image: &str) -> bool {
    image != "scratch"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_names_docker_hub_by_its_short_name() {
        for (input, want) in [
            ("busybox", "docker.io"),
            ("docker.io/library/alpine:3", "docker.io"),
            ("127.0.0.1:5000/app", "127.0.0.1:5000"),
            ("quay.io/org/app", "quay.io"),
        ] {
            assert_eq!(login_name(&parse(input).unwrap()), want, "{input}");
        }
    }

    #[test]
    fn transfer_errors_keep_the_client_errors_causes() {
        let malformed = berth_registry_client::manifest::Manifest::parse(b"{", None)
            .err()
            .map(ClientError::from);
        let text = malformed.as_ref().map(with_causes).unwrap_or_default();
        assert!(text.starts_with("malformed manifest sha256:"), "{text}");
        assert!(text.contains("EOF while parsing"), "{text}");
    }
}
