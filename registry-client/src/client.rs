//! The registry client: options, and the single-request operations on
//! manifests, tags, blobs, referrers and deletion. Whole-image transfers are in
//! [`crate::push`] and [`crate::pull`].

use crate::auth::Credentials;
use crate::error::Error;
use crate::locations::BlobLocations;
use crate::manifest::{ACCEPT, Descriptor, MAX_MANIFEST_SIZE, Manifest, OCI_INDEX};
use crate::progress::{NoProgress, Progress};
use crate::transport::{Call, RetryPolicy, Sent, Transport, read_body, status_error};
use berth_store::digest::Digest;
use berth_store::reference::{self, Reference};
use futures_util::StreamExt as _;
use reqwest::header::{ACCEPT as ACCEPT_HEADER, CONTENT_LENGTH, CONTENT_TYPE, LINK, LOCATION};
use reqwest::{Method, StatusCode};
use std::sync::Arc;
use std::time::Duration;

/// How a [`Client`] behaves. `Default` gives sensible values.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Where credentials come from.
    pub credentials: Credentials,
    /// Registries (`host[:port]`) spoken to over plain HTTP. Loopback hosts
    /// (`localhost`, `127.*`, `[::1]`) always are.
    pub insecure_registries: Vec<String>,
    /// Attempts per request (first try included) before giving up on
    /// connection errors, 408, 429 and 5xx.
    pub max_attempts: u32,
    /// The first backoff; it doubles per attempt.
    pub initial_backoff: Duration,
    /// The longest backoff.
    pub max_backoff: Duration,
    /// The longest `Retry-After` honoured; longer requests are cut to this.
    pub max_retry_after: Duration,
    /// Time allowed to establish a connection.
    pub connect_timeout: Duration,
    /// Time allowed between two reads of a response before it is abandoned
    /// (and, for blob downloads, resumed).
    pub read_timeout: Duration,
    /// Blobs transferred at once.
    pub concurrency: usize,
    /// Blobs up to this size are uploaded in one request; larger ones are
    /// streamed in one PATCH, or chunked when `chunk_size` is set.
    pub monolithic_limit: u64,
    /// Upload large blobs in chunks of this size (raised to the registry's
    /// `OCI-Chunk-Min-Length`).
    pub chunk_size: Option<u64>,
    /// The largest manifest accepted.
    pub max_manifest_size: u64,
    /// Tags asked for per page when listing tags.
    pub tag_page_size: u32,
    /// The most tag-list pages followed before giving up.
    pub max_tag_pages: usize,
    /// The longest any operation that is not a blob transfer may take (a
    /// manifest, a tag list, a token, a HEAD…), retries and body included.
    /// Blob transfers have no overall deadline; `read_timeout` catches a
    /// stalled one.
    pub operation_timeout: Duration,
    /// A file remembering which repositories hold which blobs on each
    /// registry, shared between processes, so that a push mounts a blob from
    /// a repository an earlier push or pull put it in without being told. With
    /// `None` the client remembers only for its own lifetime.
    pub blob_location_cache: Option<std::path::PathBuf>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            credentials: Credentials::default(),
            insecure_registries: Vec::new(),
            max_attempts: 5,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(60),
            concurrency: 4,
            monolithic_limit: 32 * 1024 * 1024,
            chunk_size: None,
            max_manifest_size: MAX_MANIFEST_SIZE,
            tag_page_size: 1000,
            max_tag_pages: 10_000,
            operation_timeout: Duration::from_secs(300),
            blob_location_cache: None,
        }
    }
}

/// The largest tag-list page read (a page of 1000 tags of 128 characters is
/// about 130 KiB).
const TAG_PAGE_LIMIT: u64 = 4 * 1024 * 1024;

/// What a HEAD of a manifest found.
enum Head {
    Found(Box<Descriptor>),
    Missing,
    /// The registry did not say the digest.
    NoDigest,
}

/// A manifest or index as served, with its exact bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedManifest {
    /// The exact bytes.
    pub bytes: Vec<u8>,
    /// The media type (served Content-Type, else the declared one).
    pub media_type: String,
    /// The digest of the bytes.
    pub digest: Digest,
}

impl FetchedManifest {
    /// A descriptor for it.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor::new(
            self.media_type.clone(),
            self.digest.clone(),
            self.bytes.len() as u64,
        )
    }

    /// Parses it.
    pub fn parse(&self) -> Result<Manifest, Error> {
        Ok(Manifest::parse(&self.bytes, Some(&self.media_type))?)
    }
}

/// Referrers of a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referrers {
    /// Whether the registry offers the referrers API (otherwise the fallback
    /// tag `sha256-<hex>` was read).
    pub api_supported: bool,
    /// The referring manifests.
    pub manifests: Vec<Descriptor>,
}

/// An OCI distribution client. Cloning is cheap; clones share connections,
/// tokens and what is known about where blobs live.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub transport: Transport,
    pub options: ClientOptions,
    /// Repositories on a registry known to hold a blob, for cross-repository
    /// mounts.
    pub locations: BlobLocations,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("options", &self.inner.options)
            .finish()
    }
}

/// The scope string for a repository and actions.
pub(crate) fn scope(repository: &str, actions: &str) -> String {
    format!("repository:{repository}:{actions}")
}

impl Client {
    /// Builds a client. TLS uses rustls on the ring provider, with the
    /// platform's trust store (read on the first TLS connection).
    pub fn new(options: ClientOptions) -> Result<Client, Error> {
        // Another part of the process may have installed a provider already;
        // that one is used then.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let tls = crate::tls::client_config()
            .map_err(|err| Error::HttpSetup(format!("configuring TLS: {err}")))?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(options.connect_timeout)
            .read_timeout(options.read_timeout)
            // Blob GETs are redirected to storage; reqwest drops the
            // Authorization header when a redirect changes scheme, host or port.
            .redirect(reqwest::redirect::Policy::limited(10))
            .pool_max_idle_per_host(options.concurrency.max(1) * 2)
            .build()
            .map_err(|err| Error::HttpSetup(crate::error::chain(&err)))?;
        let retry = RetryPolicy {
            max_attempts: options.max_attempts.max(1),
            initial_backoff: options.initial_backoff,
            max_backoff: options.max_backoff,
            max_retry_after: options.max_retry_after,
            deadline: options.operation_timeout,
        };
        Ok(Client {
            inner: Arc::new(Inner {
                transport: Transport::new(http, retry, options.credentials.clone()),
                locations: BlobLocations::load(options.blob_location_cache.clone()),
                options,
            }),
        })
    }

    /// The options the client was built with.
    pub fn options(&self) -> &ClientOptions {
        &self.inner.options
    }

    /// `http://host` or `https://host` for the reference's registry.
    pub fn base_url(&self, reference: &Reference) -> String {
        let host = reference::api_host(reference);
        let name = host.rsplit_once(':').map_or(host, |(name, _port)| name);
        let plain = name == "localhost"
            || name.starts_with("127.")
            || name == "[::1]"
            || self
                .inner
                .options
                .insecure_registries
                .iter()
                .any(|insecure| insecure == host || insecure == reference.registry());
        format!("{}://{host}", if plain { "http" } else { "https" })
    }

    pub(crate) fn call(
        &self,
        method: Method,
        reference: &Reference,
        path: &str,
        actions: &str,
    ) -> Call {
        let url = format!(
            "{}/v2/{}/{path}",
            self.base_url(reference),
            reference.repository()
        );
        Call::new(
            method,
            url,
            reference::api_host(reference),
            reference::credential_key(reference),
        )
        .scope(scope(reference.repository(), actions))
    }

    pub(crate) async fn send(
        &self,
        call: &mut Call,
        progress: &dyn Progress,
    ) -> Result<Sent, Error> {
        self.inner.transport.send(call, progress).await
    }

    /// Runs an operation that is not a blob transfer within
    /// [`ClientOptions::operation_timeout`].
    pub(crate) async fn within<T>(
        &self,
        what: impl FnOnce() -> String,
        url: impl FnOnce() -> String,
        operation: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        let limit = self.inner.options.operation_timeout;
        match tokio::time::timeout(limit, operation).await {
            Ok(result) => result,
            Err(_elapsed) => Err(Error::DeadlineExceeded {
                what: what(),
                url: url(),
                limit,
            }),
        }
    }

    /// The URL of an API path in the reference's repository, for messages.
    fn api_url(&self, reference: &Reference, path: &str) -> String {
        format!(
            "{}/v2/{}/{path}",
            self.base_url(reference),
            reference.repository()
        )
    }

    pub(crate) fn remember_location(&self, reference: &Reference, digest: &Digest) {
        self.inner.locations.remember(
            reference::api_host(reference),
            digest,
            reference.repository(),
        );
    }

    pub(crate) fn known_location(&self, reference: &Reference, digest: &Digest) -> Option<String> {
        self.inner.locations.lookup(
            reference::api_host(reference),
            digest,
            reference.repository(),
        )
    }

    /// Fetches the manifest or index the reference points at, keeping its exact
    /// bytes. A reference by digest is checked against that digest.
    pub async fn get_manifest(&self, reference: &Reference) -> Result<FetchedManifest, Error> {
        self.fetch_manifest(reference, &NoProgress).await
    }

    /// [`Client::get_manifest`], reporting retries to `progress`.
    pub(crate) async fn fetch_manifest(
        &self,
        reference: &Reference,
        progress: &dyn Progress,
    ) -> Result<FetchedManifest, Error> {
        let target = reference::target(reference);
        self.within(
            || format!("fetching manifest {reference}"),
            || self.api_url(reference, &format!("manifests/{target}")),
            self.fetch_manifest_now(reference, progress),
        )
        .await
    }

    async fn fetch_manifest_now(
        &self,
        reference: &Reference,
        progress: &dyn Progress,
    ) -> Result<FetchedManifest, Error> {
        let target = reference::target(reference);
        let mut call = self
            .call(
                Method::GET,
                reference,
                &format!("manifests/{target}"),
                "pull",
            )
            .header(ACCEPT_HEADER, ACCEPT);
        let sent = self.send(&mut call, progress).await?;
        if sent.response.status() != StatusCode::OK {
            return Err(status_error(&call, sent, &format!("manifest {reference}")).await);
        }
        let limit = self.inner.options.max_manifest_size;
        let too_large = |size| Error::ManifestTooLarge {
            reference: reference.to_string(),
            size,
            limit,
        };
        if let Some(length) = sent.response.content_length().filter(|len| *len > limit) {
            return Err(too_large(length));
        }
        let media_type = sent
            .response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_owned());
        let mut bytes = Vec::new();
        let mut stream = sent.response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|err| Error::Unreachable {
                registry: call.host.clone(),
                method: "GET".into(),
                url: call.url.clone(),
                attempts: 1,
                detail: crate::error::chain(&err),
            })?;
            if (bytes.len() + chunk.len()) as u64 > limit {
                return Err(too_large((bytes.len() + chunk.len()) as u64));
            }
            bytes.extend_from_slice(&chunk);
        }
        let digest = Digest::of(&bytes);
        if let Some(expected) = reference::pinned_digest(reference)?
            && expected != digest
        {
            return Err(Error::DigestMismatch {
                what: format!("manifest {reference}"),
                url: call.url,
                expected,
                actual: digest,
            });
        }
        let media_type = match media_type.filter(|t| crate::manifest::is_manifest(t)) {
            Some(served) => served,
            None => Manifest::media_type_of(&bytes).unwrap_or_else(|| OCI_INDEX.to_owned()),
        };
        Ok(FetchedManifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// Whether the registry has the manifest, and its digest, size and media
    /// type if so (from a HEAD request).
    pub async fn head_manifest(&self, reference: &Reference) -> Result<Option<Descriptor>, Error> {
        let target = reference::target(reference);
        let head = self.within(
            || format!("checking manifest {reference}"),
            || self.api_url(reference, &format!("manifests/{target}")),
            self.head_manifest_now(reference),
        );
        match head.await? {
            Head::Found(descriptor) => Ok(Some(*descriptor)),
            Head::Missing => Ok(None),
            // Without the digest header only the body tells the digest.
            Head::NoDigest => Ok(Some(self.get_manifest(reference).await?.descriptor())),
        }
    }

    async fn head_manifest_now(&self, reference: &Reference) -> Result<Head, Error> {
        let target = reference::target(reference);
        let mut call = self
            .call(
                Method::HEAD,
                reference,
                &format!("manifests/{target}"),
                "pull",
            )
            .header(ACCEPT_HEADER, ACCEPT);
        let sent = self.send(&mut call, &NoProgress).await?;
        match sent.response.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Ok(Head::Missing),
            _ => return Err(status_error(&call, sent, &format!("manifest {reference}")).await),
        }
        let headers = sent.response.headers();
        let digest = headers
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<Digest>().ok());
        let Some(digest) = digest else {
            return Ok(Head::NoDigest);
        };
        let media_type = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let size = sent.response.content_length().unwrap_or(0);
        Ok(Head::Found(Box::new(Descriptor::new(
            media_type, digest, size,
        ))))
    }

    /// Uploads a manifest or index under the reference's tag (or digest) and
    /// returns the digest of the bytes.
    pub async fn put_manifest(
        &self,
        reference: &Reference,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<Digest, Error> {
        let limit = self.inner.options.max_manifest_size;
        if bytes.len() as u64 > limit {
            return Err(Error::ManifestTooLarge {
                reference: reference.to_string(),
                size: bytes.len() as u64,
                limit,
            });
        }
        let target = reference::target(reference);
        self.within(
            || format!("pushing manifest {reference}"),
            || self.api_url(reference, &format!("manifests/{target}")),
            self.put_manifest_now(reference, bytes, media_type),
        )
        .await
    }

    async fn put_manifest_now(
        &self,
        reference: &Reference,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<Digest, Error> {
        let target = reference::target(reference);
        let body = bytes::Bytes::copy_from_slice(bytes);
        let mut call = self
            .call(
                Method::PUT,
                reference,
                &format!("manifests/{target}"),
                "pull,push",
            )
            .header(CONTENT_TYPE, media_type)
            .body(Box::new(move || {
                let body = body.clone();
                Box::pin(async move { Ok(reqwest::Body::from(body)) })
            }));
        let sent = self.send(&mut call, &NoProgress).await?;
        if sent.response.status() != StatusCode::CREATED {
            return Err(status_error(
                &call,
                sent,
                &format!("repository {}", reference.repository()),
            )
            .await);
        }
        Ok(Digest::of(bytes))
    }

    /// The blob's size if the repository has it (a HEAD request).
    pub async fn head_blob(
        &self,
        reference: &Reference,
        digest: &Digest,
    ) -> Result<Option<u64>, Error> {
        self.within(
            || format!("checking blob {digest} in {}", reference.repository()),
            || self.api_url(reference, &format!("blobs/{digest}")),
            self.head_blob_now(reference, digest),
        )
        .await
    }

    async fn head_blob_now(
        &self,
        reference: &Reference,
        digest: &Digest,
    ) -> Result<Option<u64>, Error> {
        let mut call = self.call(Method::HEAD, reference, &format!("blobs/{digest}"), "pull");
        let sent = self.send(&mut call, &NoProgress).await?;
        match sent.response.status() {
            StatusCode::OK => Ok(Some(sent.response.content_length().unwrap_or(0))),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(status_error(&call, sent, &format!("blob {digest}")).await),
        }
    }

    /// Every tag of the reference's repository, following `Link` pagination
    /// (at most [`ClientOptions::max_tag_pages`] pages, never one twice).
    pub async fn list_tags(&self, reference: &Reference) -> Result<Vec<String>, Error> {
        self.within(
            || format!("listing tags of {}", reference.repository()),
            || self.api_url(reference, "tags/list"),
            self.list_tags_now(reference),
        )
        .await
    }

    async fn list_tags_now(&self, reference: &Reference) -> Result<Vec<String>, Error> {
        #[derive(serde::Deserialize)]
        struct TagList {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let base = self.base_url(reference);
        let max_pages = self.inner.options.max_tag_pages;
        let mut tags = Vec::new();
        let mut visited = std::collections::HashSet::new();
        let mut next = Some(format!(
            "{base}/v2/{}/tags/list?n={}",
            reference.repository(),
            self.inner.options.tag_page_size
        ));
        while let Some(url) = next.take() {
            if !visited.insert(url.clone()) {
                return Err(Error::Pagination {
                    url,
                    reason: "the Link header points back to a page already read".into(),
                });
            }
            if visited.len() > max_pages {
                return Err(Error::Pagination {
                    url,
                    reason: format!("more than {max_pages} pages; giving up"),
                });
            }
            let mut call = self.call(Method::GET, reference, "tags/list", "pull");
            call.url = url;
            let sent = self.send(&mut call, &NoProgress).await?;
            if sent.response.status() != StatusCode::OK {
                return Err(status_error(
                    &call,
                    sent,
                    &format!("repository {}", reference.repository()),
                )
                .await);
            }
            next = sent
                .response
                .headers()
                .get(LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(next_link)
                .map(|link| resolve_url(&base, &link));
            let body = read_body(sent.response, TAG_PAGE_LIMIT, "tag list", &call.url).await?;
            let page: TagList = serde_json::from_slice(&body).map_err(|err| Error::Protocol {
                url: call.url.clone(),
                reason: format!("unreadable tag list: {err}"),
            })?;
            tags.extend(page.tags.unwrap_or_default());
        }
        Ok(tags)
    }

    /// Deletes a manifest. A tag is first resolved to its digest, since
    /// registries delete manifests by digest only.
    pub async fn delete_manifest(&self, reference: &Reference) -> Result<Digest, Error> {
        self.within(
            || format!("deleting manifest {reference}"),
            || self.api_url(reference, "manifests/"),
            self.delete_manifest_now(reference),
        )
        .await
    }

    async fn delete_manifest_now(&self, reference: &Reference) -> Result<Digest, Error> {
        let digest = match reference::pinned_digest(reference)? {
            Some(digest) => digest,
            None => {
                self.head_manifest(reference)
                    .await?
                    .ok_or_else(|| Error::NotFound {
                        what: format!("manifest {reference}"),
                        registry: reference::api_host(reference).to_owned(),
                        message: "nothing to delete".into(),
                    })?
                    .digest
            }
        };
        let mut call = self.call(
            Method::DELETE,
            reference,
            &format!("manifests/{digest}"),
            "delete",
        );
        let sent = self.send(&mut call, &NoProgress).await?;
        if sent.response.status() != StatusCode::ACCEPTED {
            return Err(status_error(&call, sent, &format!("manifest {reference}")).await);
        }
        Ok(digest)
    }

    /// Deletes a blob from the reference's repository.
    pub async fn delete_blob(&self, reference: &Reference, digest: &Digest) -> Result<(), Error> {
        self.within(
            || format!("deleting blob {digest} from {}", reference.repository()),
            || self.api_url(reference, &format!("blobs/{digest}")),
            self.delete_blob_now(reference, digest),
        )
        .await
    }

    async fn delete_blob_now(&self, reference: &Reference, digest: &Digest) -> Result<(), Error> {
        let mut call = self.call(
            Method::DELETE,
            reference,
            &format!("blobs/{digest}"),
            "delete",
        );
        let sent = self.send(&mut call, &NoProgress).await?;
        if sent.response.status() != StatusCode::ACCEPTED {
            return Err(status_error(&call, sent, &format!("blob {digest}")).await);
        }
        Ok(())
    }

    /// The manifests that refer to `digest` (OCI 1.1 referrers API), optionally
    /// only those of one artifact type. Registries without the API are read
    /// through the `sha256-<hex>` fallback tag.
    pub async fn referrers(
        &self,
        reference: &Reference,
        digest: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Referrers, Error> {
        self.within(
            || format!("listing referrers of {digest}"),
            || self.api_url(reference, &format!("referrers/{digest}")),
            self.referrers_now(reference, digest, artifact_type),
        )
        .await
    }

    async fn referrers_now(
        &self,
        reference: &Reference,
        digest: &Digest,
        artifact_type: Option<&str>,
    ) -> Result<Referrers, Error> {
        let mut path = format!("referrers/{digest}");
        if let Some(artifact_type) = artifact_type {
            path.push_str("?artifactType=");
            path.push_str(artifact_type);
        }
        let mut call = self
            .call(Method::GET, reference, &path, "pull")
            .header(ACCEPT_HEADER, OCI_INDEX);
        let sent = self.send(&mut call, &NoProgress).await?;
        let (api_supported, bytes) = match sent.response.status() {
            StatusCode::OK => {
                let limit = self.inner.options.max_manifest_size;
                (
                    true,
                    read_body(sent.response, limit, "referrers index", &call.url).await?,
                )
            }
            StatusCode::NOT_FOUND => {
                let fallback = reference.clone_with_digest(String::new());
                let tagged = Reference::with_tag(
                    fallback.registry().to_owned(),
                    fallback.repository().to_owned(),
                    format!("{}-{}", digest.algorithm(), digest.hex()),
                );
                match self.get_manifest(&tagged).await {
                    Ok(fetched) => (false, fetched.bytes),
                    Err(Error::NotFound { .. }) => {
                        return Ok(Referrers {
                            api_supported: false,
                            manifests: Vec::new(),
                        });
                    }
                    Err(err) => return Err(err),
                }
            }
            _ => return Err(status_error(&call, sent, &format!("referrers of {digest}")).await),
        };
        let manifests = match Manifest::parse(&bytes, Some(OCI_INDEX))? {
            Manifest::Index { manifests } => manifests,
            Manifest::Image { .. } => Vec::new(),
        };
        let manifests = manifests
            .into_iter()
            .filter(|m| {
                artifact_type.is_none_or(|wanted| m.artifact_type.as_deref() == Some(wanted))
            })
            .collect();
        Ok(Referrers {
            api_supported,
            manifests,
        })
    }
}

/// The URL in a `Link: <url>; rel="next"` header.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params.contains("rel=\"next\"").then(|| {
            url.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
    })
}

/// Resolves a `Location` or `Link` value, which may be relative to the registry.
pub(crate) fn resolve_url(base: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        location.to_owned()
    } else if location.starts_with('/') {
        format!("{base}{location}")
    } else {
        format!("{base}/{location}")
    }
}

/// The upload URL from a response's `Location` header.
pub(crate) fn location(call: &Call, sent: &Sent, base: &str) -> Result<String, Error> {
    sent.response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(|loc| resolve_url(base, loc))
        .ok_or_else(|| Error::Protocol {
            url: call.url.clone(),
            reason: "the upload response has no Location header".into(),
        })
}

/// `Content-Length: 0`, for bodiless PUTs.
pub(crate) const EMPTY_LENGTH: (reqwest::header::HeaderName, &str) = (CONTENT_LENGTH, "0");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_link_headers() {
        assert_eq!(
            next_link(r#"</v2/a/tags/list?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/a/tags/list?last=b&n=2")
        );
        assert_eq!(next_link(r#"<x>; rel="prev""#), None);
        assert_eq!(resolve_url("http://h:1", "/v2/x"), "http://h:1/v2/x");
        assert_eq!(
            resolve_url("http://h:1", "https://o/v2/x"),
            "https://o/v2/x"
        );
    }

    #[test]
    fn loopback_is_plain_http_and_others_https() {
        let client = Client::new(ClientOptions {
            insecure_registries: vec!["reg.lan:5000".into()],
            ..ClientOptions::default()
        })
        .unwrap();
        let cases = [
            ("127.0.0.1:5000/a", "http://127.0.0.1:5000"),
            ("localhost/a", "http://localhost"),
            ("reg.lan:5000/a", "http://reg.lan:5000"),
            ("quay.io/a", "https://quay.io"),
            ("busybox", "https://registry-1.docker.io"),
        ];
        for (input, expected) in cases {
            let reference = reference::parse(input).unwrap();
            assert_eq!(client.base_url(&reference), expected, "{input}");
        }
    }
}
