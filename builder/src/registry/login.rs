//! `berth login` and `berth logout`: checking and storing registry credentials.

use super::session::TransferOptions;
use super::{RegistryError, Stored};
use berth_registry_client::{Client, ClientOptions, Error as ClientError};
use std::path::PathBuf;

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
        Err(err) => return Err(fail(crate::text::error_chain(&err))),
    }
    berth_registry_client::login::save(&config, &key, username, password)
        .map_err(|e| fail(crate::text::error_chain(&e)))
}

/// Removes the stored credential for `registry`; `None` when there was none.
pub fn logout(registry: &str) -> Result<Option<Stored>, RegistryError> {
    let action = "logging out of";
    let key = berth_registry_client::login::server_key(registry);
    let config = config_path(action, registry)?;
    berth_registry_client::login::erase(&config, &key).map_err(|e| RegistryError::Login {
        action,
        registry: registry.to_string(),
        message: crate::text::error_chain(&e),
    })
}
