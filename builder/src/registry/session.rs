//! What every transfer runs on: its options and a session (lease, threads, layout, client).

use super::RegistryError;
use berth_registry_client::manifest::Platform;
use berth_registry_client::{Client, ClientOptions};
use berth_store::Store;
use berth_store::layout::OciLayout;
use berth_store::lock::FileLock;

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
pub(super) struct Session {
    pub(super) runtime: tokio::runtime::Runtime,
    pub(super) layout: OciLayout,
    pub(super) client: Client,
    _lease: FileLock,
}

impl Session {
    pub(super) fn open(
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
            .map_err(|e| fail(crate::text::error_chain(&e)))?;
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
        .map_err(|e| fail(crate::text::error_chain(&e)))?;
        Ok(Session {
            runtime,
            layout,
            client,
            _lease: lease,
        })
    }
}
