//! Client errors turned into explanations in the user's terms, with hints.

use super::RegistryError;
use berth_registry_client::{Client, Error as ClientError};
use berth_store::reference;
use berth_store::{Store, StoreError};

/// What the user names to `berth login` for this reference's registry.
fn login_name(reference: &reference::Reference) -> String {
    match reference.registry() {
        "docker.io" | "index.docker.io" => "docker.io".to_string(),
        other => other.to_string(),
    }
}

/// Turns a client error into one that says what went wrong in the user's
/// terms, with a hint.
pub(super) async fn explain(
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
                message: crate::text::error_chain(&err),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::parse;

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
