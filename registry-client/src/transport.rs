//! HTTP with the registry: authentication (Basic and bearer tokens), bounded
//! retries with backoff, and conversion of error answers into [`Error`]s.
//!
//! This is reqwest directly rather than oci-client's `Client`: the transfers
//! need per-request control that oci-client does not expose (Range requests
//! resumed mid-blob, bodies re-created for every retry, `Retry-After`, and
//! streaming bodies counted as they go).

use crate::auth::{
    Challenge, Credential, Credentials, HostAuth, TokenResponse, basic_header, parse_challenge,
};
use crate::error::{Error, chain};
use crate::progress::{Event, Progress};
use reqwest::header::{
    AUTHORIZATION, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE,
};
use reqwest::{Method, Response, StatusCode};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Makes a fresh request body for each attempt (a streamed body is consumed by
/// the attempt that sends it).
pub(crate) type BodyFactory = Box<
    dyn FnMut() -> Pin<Box<dyn Future<Output = Result<reqwest::Body, Error>> + Send>> + Send + Sync,
>;

/// One logical request, possibly sent several times.
pub(crate) struct Call {
    pub method: Method,
    pub url: String,
    /// The registry host, the key for authentication state.
    pub host: String,
    /// The key of the registry's entry in `config.json`.
    pub credential_key: String,
    /// Token scopes, e.g. `repository:app:pull,push`.
    pub scopes: Vec<String>,
    pub headers: HeaderMap,
    pub body: Option<BodyFactory>,
    /// The origin (scheme, host, port) of the URL the call was made for: the
    /// registry's. Credentials and tokens go only there, wherever a `Link` or
    /// `Location` header later points `url`.
    origin: Option<reqwest::Url>,
}

impl Call {
    pub fn new(method: Method, url: String, host: &str, credential_key: &str) -> Call {
        Call {
            method,
            origin: origin_of(&url),
            url,
            host: host.to_owned(),
            credential_key: credential_key.to_owned(),
            scopes: Vec::new(),
            headers: HeaderMap::new(),
            body: None,
        }
    }

    pub fn scope(mut self, scope: String) -> Call {
        self.scopes.push(scope);
        self
    }

    pub fn header(mut self, name: HeaderName, value: &str) -> Call {
        if let Ok(value) = HeaderValue::from_str(value) {
            self.headers.insert(name, value);
        }
        self
    }

    pub fn body(mut self, body: BodyFactory) -> Call {
        self.body = Some(body);
        self
    }

    fn describe(&self) -> String {
        format!("{} {}", self.method, self.url)
    }

    /// Whether `url` is still on the origin the call was made for.
    fn at_origin(&self) -> bool {
        self.origin.is_some() && origin_of(&self.url) == self.origin
    }
}

/// The origin of a URL (scheme, host and port, the port made explicit), as a
/// URL with an empty path, or `None` if it is not a URL.
pub(crate) fn origin_of(url: &str) -> Option<reqwest::Url> {
    let url = reqwest::Url::parse(url).ok()?;
    let origin = format!(
        "{}://{}:{}/",
        url.scheme(),
        url.host_str()?,
        url.port_or_known_default()?
    );
    reqwest::Url::parse(&origin).ok()
}

/// Whether a host is the loopback interface, where plain HTTP cannot be
/// overheard.
pub(crate) fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The largest error or token response body read.
pub(crate) const SMALL_BODY_LIMIT: u64 = 1024 * 1024;

/// The longest time spent reading an error body (its status is already known).
const ERROR_BODY_TIME: Duration = Duration::from_secs(30);

/// Reads a response body that is not a blob, failing once it passes `limit`
/// bytes instead of buffering whatever the server sends.
pub(crate) async fn read_body(
    response: Response,
    limit: u64,
    what: &str,
    url: &str,
) -> Result<Vec<u8>, Error> {
    use futures_util::StreamExt as _;
    let too_large = || Error::BodyTooLarge {
        what: what.to_owned(),
        url: url.to_owned(),
        limit,
    };
    if response.content_length().is_some_and(|len| len > limit) {
        return Err(too_large());
    }
    let mut bytes = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|err| Error::Protocol {
            url: url.to_owned(),
            reason: format!("reading the {what}: {}", chain(&err)),
        })?;
        if (bytes.len() + chunk.len()) as u64 > limit {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// Retry and timeout settings.
#[derive(Debug, Clone)]
pub(crate) struct RetryPolicy {
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    pub max_retry_after: Duration,
    /// The longest a token request may take, body included.
    pub deadline: Duration,
}

/// A response and how many attempts it took.
pub(crate) struct Sent {
    pub response: Response,
    pub attempts: u32,
}

/// The HTTP layer shared by every operation of a client.
pub(crate) struct Transport {
    http: reqwest::Client,
    retry: RetryPolicy,
    credentials: Credentials,
    hosts: Mutex<HashMap<String, HostAuth>>,
    /// Parallel transfers that all meet a 401 fetch one token, not one each.
    token_fetch: tokio::sync::Mutex<()>,
}

impl Transport {
    pub fn new(http: reqwest::Client, retry: RetryPolicy, credentials: Credentials) -> Transport {
        Transport {
            http,
            retry,
            credentials,
            hosts: Mutex::new(HashMap::new()),
            token_fetch: tokio::sync::Mutex::new(()),
        }
    }

    fn with_host<T>(&self, host: &str, f: impl FnOnce(&mut HostAuth) -> T) -> T {
        let mut hosts = self
            .hosts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(hosts.entry(host.to_owned()).or_default())
    }

    async fn credential(&self, host: &str, key: &str) -> Result<Credential, Error> {
        if let Some(known) = self.with_host(host, |auth| auth.credential.clone()) {
            return Ok(known);
        }
        let source = self.credentials.clone();
        let key_owned = key.to_owned();
        // Credential helpers are programs; run them off the async threads.
        let credential = tokio::task::spawn_blocking(move || source.lookup(&key_owned))
            .await
            .map_err(|err| Error::Credentials {
                registry: key.to_owned(),
                message: err.to_string(),
            })??;
        self.with_host(host, |auth| auth.credential = Some(credential.clone()));
        Ok(credential)
    }

    /// Sends a call: authenticates (answering one 401 challenge per call),
    /// retries transient failures, and returns the final response whatever
    /// its status.
    pub async fn send(&self, call: &mut Call, progress: &dyn Progress) -> Result<Sent, Error> {
        if !call.at_origin() {
            // A `Link` or `Location` pointing elsewhere: the credentials and
            // tokens of this registry are not that server's business.
            tracing::debug!(url = %call.url, "another origin: sending no credentials");
            return self.execute(call, None, progress).await;
        }
        let scope_key = call.scopes.join(" ");
        let mut challenged = false;
        loop {
            let mut authorization = self.with_host(&call.host, |auth| auth.header_for(&scope_key));
            if authorization.is_none() {
                let challenge = self.with_host(&call.host, |auth| auth.challenge.clone());
                if let Some(Challenge::Bearer { realm, service }) = challenge {
                    // The registry wants tokens: get one for these scopes up front
                    // instead of paying a 401 round trip for every request.
                    authorization = Some(
                        self.token(call, &scope_key, &realm, service.as_deref(), progress)
                            .await?,
                    );
                }
            }
            let sent = self
                .execute(call, authorization.as_deref(), progress)
                .await?;
            if sent.response.status() != StatusCode::UNAUTHORIZED || challenged {
                return Ok(sent);
            }
            challenged = true;
            let Some(challenge) = sent
                .response
                .headers()
                .get(WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_challenge)
            else {
                return Ok(sent);
            };
            tracing::debug!(host = %call.host, ?challenge, "registry asked for authentication");
            self.with_host(&call.host, |auth| {
                auth.challenge = Some(challenge.clone());
                auth.tokens.remove(&scope_key);
            });
            match challenge {
                Challenge::Basic => {
                    if !matches!(
                        self.credential(&call.host, &call.credential_key).await?,
                        Credential::Basic { .. }
                    ) {
                        return Ok(sent);
                    }
                }
                Challenge::Bearer { realm, service } => {
                    self.token(call, &scope_key, &realm, service.as_deref(), progress)
                        .await?;
                }
            }
        }
    }

    /// Returns a bearer token header for the call's scopes, fetching one if no
    /// unexpired token is cached, within the deadline.
    async fn token(
        &self,
        call: &Call,
        scope_key: &str,
        realm: &str,
        service: Option<&str>,
        progress: &dyn Progress,
    ) -> Result<String, Error> {
        let limit = self.retry.deadline;
        tokio::time::timeout(
            limit,
            self.fetch_token(call, scope_key, realm, service, progress),
        )
        .await
        .unwrap_or_else(|_elapsed| {
            Err(Error::DeadlineExceeded {
                what: format!("getting a token for {}", call.host),
                url: realm.to_owned(),
                limit,
            })
        })
    }

    async fn fetch_token(
        &self,
        call: &Call,
        scope_key: &str,
        realm: &str,
        service: Option<&str>,
        progress: &dyn Progress,
    ) -> Result<String, Error> {
        let _serialised = self.token_fetch.lock().await;
        if let Some(header) = self.with_host(&call.host, |auth| auth.header_for(scope_key)) {
            return Ok(header);
        }
        let credential = self.credential(&call.host, &call.credential_key).await?;
        let mut url = reqwest::Url::parse(realm).map_err(|err| Error::Protocol {
            url: call.url.clone(),
            reason: format!("the token realm '{realm}' is not a URL: {err}"),
        })?;
        let method;
        let mut token_call;
        match &credential {
            Credential::IdentityToken(refresh) => {
                // OAuth2 refresh-token grant, as docker does with identity tokens.
                let mut form = reqwest::Url::parse("http://form.invalid/")
                    .map_err(|err| Error::HttpSetup(err.to_string()))?;
                {
                    let mut pairs = form.query_pairs_mut();
                    pairs.append_pair("grant_type", "refresh_token");
                    pairs.append_pair("refresh_token", refresh);
                    pairs.append_pair("client_id", "berth");
                    if let Some(service) = service {
                        pairs.append_pair("service", service);
                    }
                    pairs.append_pair("scope", scope_key);
                }
                let body = form.query().unwrap_or_default().to_owned();
                method = Method::POST;
                token_call = Call::new(
                    method.clone(),
                    url.to_string(),
                    &call.host,
                    &call.credential_key,
                )
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                );
                token_call.body = Some(Box::new(move || {
                    let body = body.clone();
                    Box::pin(async move { Ok(reqwest::Body::from(body)) })
                }));
            }
            Credential::Basic { .. } | Credential::Anonymous => {
                {
                    let mut pairs = url.query_pairs_mut();
                    if let Some(service) = service {
                        pairs.append_pair("service", service);
                    }
                    for scope in &call.scopes {
                        pairs.append_pair("scope", scope);
                    }
                }
                method = Method::GET;
                token_call = Call::new(
                    method.clone(),
                    url.to_string(),
                    &call.host,
                    &call.credential_key,
                );
            }
        }
        // The realm is where the token specification says to send them, on
        // whatever host; but not in clear text over a network: plain HTTP
        // only on loopback or to the registry's own (insecure) origin.
        let realm_safe = url.scheme() == "https"
            || url.host_str().is_some_and(is_loopback)
            || (call.origin.is_some() && origin_of(url.as_str()) == call.origin);
        let authorization = match &credential {
            Credential::Basic { username, password } if realm_safe => {
                Some(basic_header(username, password))
            }
            Credential::Basic { .. } | Credential::IdentityToken(_) if !realm_safe => {
                return Err(Error::Unauthorized {
                    registry: call.host.clone(),
                    scope: scope_key.to_owned(),
                    message: format!(
                        "the registry sends credentials to the token server {realm} over plain HTTP; \
                         refusing to send them there"
                    ),
                });
            }
            _ => None,
        };
        let sent = self
            .execute(&mut token_call, authorization.as_deref(), progress)
            .await?;
        let status = sent.response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let body = error_message(sent.response).await;
            return Err(Error::Unauthorized {
                registry: call.host.clone(),
                scope: scope_key.to_owned(),
                message: format!(
                    "the token server at {realm} refused with HTTP {}: {}",
                    status.as_u16(),
                    body.trim()
                ),
            });
        }
        if !status.is_success() {
            return Err(status_error(&token_call, sent, "token").await);
        }
        let body = read_body(sent.response, SMALL_BODY_LIMIT, "token response", realm).await?;
        let response: TokenResponse =
            serde_json::from_slice(&body).map_err(|err| Error::Protocol {
                url: realm.to_owned(),
                reason: format!("unreadable token response: {err}"),
            })?;
        let (token, lifetime) = response.into_token().ok_or_else(|| Error::Protocol {
            url: realm.to_owned(),
            reason: "the token response has neither 'token' nor 'access_token'".to_owned(),
        })?;
        let header = format!("Bearer {token}");
        self.with_host(&call.host, |auth| {
            auth.tokens
                .insert(scope_key.to_owned(), (token, Instant::now() + lifetime));
        });
        Ok(header)
    }

    /// Sends the call with retries on connection errors, 408, 429 and 5xx.
    async fn execute(
        &self,
        call: &mut Call,
        authorization: Option<&str>,
        progress: &dyn Progress,
    ) -> Result<Sent, Error> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = self
                .http
                .request(call.method.clone(), &call.url)
                .headers(call.headers.clone());
            if let Some(authorization) = authorization {
                request = request.header(AUTHORIZATION, authorization);
            }
            if let Some(factory) = call.body.as_mut() {
                request = request.body(factory().await?);
            }
            let outcome = request.send().await;
            let (reason, retry_after) = match outcome {
                Ok(response) => {
                    let status = response.status();
                    let transient = status == StatusCode::REQUEST_TIMEOUT
                        || status == StatusCode::TOO_MANY_REQUESTS
                        || (status.is_server_error() && status != StatusCode::NOT_IMPLEMENTED);
                    if !transient || attempt >= self.retry.max_attempts {
                        return Ok(Sent {
                            response,
                            attempts: attempt,
                        });
                    }
                    let retry_after = response
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()));
                    (format!("HTTP {}", status.as_u16()), retry_after)
                }
                Err(err) => {
                    let detail = chain(&err);
                    if err.is_builder() || err.is_redirect() || attempt >= self.retry.max_attempts {
                        return Err(Error::Unreachable {
                            registry: call.host.clone(),
                            method: call.method.to_string(),
                            url: call.url.clone(),
                            attempts: attempt,
                            detail,
                        });
                    }
                    (detail, None)
                }
            };
            let wait = match retry_after {
                Some(asked) => asked.min(self.retry.max_retry_after),
                None => self.backoff(attempt),
            };
            tracing::debug!(request = %call.describe(), %reason, attempt, ?wait, "retrying");
            progress.event(Event::Retrying {
                request: call.describe(),
                reason,
                attempt,
                wait,
            });
            tokio::time::sleep(wait).await;
        }
    }

    /// Exponential backoff with a little jitter, so parallel transfers that
    /// failed together do not retry in lockstep.
    fn backoff(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(16);
        let base = self
            .retry
            .initial_backoff
            .saturating_mul(1 << exponent)
            .min(self.retry.max_backoff);
        let jitter_ms = u64::from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.subsec_nanos())
                .unwrap_or(0)
                % 50,
        );
        base + Duration::from_millis(jitter_ms)
    }
}

/// The registry's error body, `{"errors":[{"code":…,"message":…}]}`, as text.
#[derive(serde::Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

#[derive(serde::Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// Reads an error answer into a message; a body larger than
/// [`SMALL_BODY_LIMIT`] or slower than [`ERROR_BODY_TIME`] is not read whole.
pub(crate) async fn error_message(response: Response) -> String {
    let url = response.url().to_string();
    let read = read_body(response, SMALL_BODY_LIMIT, "error body", &url);
    let text = match tokio::time::timeout(ERROR_BODY_TIME, read).await {
        Ok(Ok(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
        Ok(Err(err)) => return err.to_string(),
        Err(_elapsed) => {
            return format!(
                "the error body was not read whole within {}s",
                ERROR_BODY_TIME.as_secs()
            );
        }
    };
    match serde_json::from_str::<ErrorBody>(&text) {
        Ok(body) if !body.errors.is_empty() => body
            .errors
            .iter()
            .map(|e| format!("{} ({})", e.message, e.code))
            .collect::<Vec<_>>()
            .join("; "),
        _ if text.trim().is_empty() => "no details given".to_owned(),
        _ => text.trim().chars().take(300).collect(),
    }
}

/// Turns an unexpected answer into an error: 401/403 become
/// [`Error::Unauthorized`], 404 [`Error::NotFound`] naming `what`.
pub(crate) async fn status_error(call: &Call, sent: Sent, what: &str) -> Error {
    let status = sent.response.status();
    let message = error_message(sent.response).await;
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Error::Unauthorized {
            registry: call.host.clone(),
            scope: if call.scopes.is_empty() {
                "registry access".to_owned()
            } else {
                call.scopes.join(" ")
            },
            message: format!("HTTP {}: {message}", status.as_u16()),
        },
        StatusCode::NOT_FOUND => Error::NotFound {
            what: what.to_owned(),
            registry: call.host.clone(),
            message,
        },
        _ => Error::Status {
            method: call.method.to_string(),
            url: call.url.clone(),
            status: status.as_u16(),
            attempts: sent.attempts,
            message,
        },
    }
}

/// Reads a `Retry-After` value: delay seconds, or an HTTP date
/// (`Sun, 06 Nov 1994 08:49:37 GMT`) turned into the time left until then.
fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    // A date already past means "retry now".
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{SystemTime, UNIX_EPOCH};

    #[test]
    fn retry_after_as_seconds_or_http_date() {
        // 1994-11-06T08:49:37Z is 784111777 seconds after the epoch.
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777 - 90);
        // 2000-03-01 is 11017 days after the epoch.
        let march_2000 = UNIX_EPOCH + Duration::from_secs(11_017 * 86_400 - 5);
        let cases = [
            ("120", now, Some(120)),
            (" 3 ", now, Some(3)),
            ("Sun, 06 Nov 1994 08:49:37 GMT", now, Some(90)),
            ("Sat, 05 Nov 1994 08:49:37 GMT", now, Some(0)),
            ("Sun, 06 Nov 1994 08:49:37 PST", now, None),
            ("soon", now, None),
            ("-5", now, None),
            ("Thu, 01 Jan 1970 00:00:00 GMT", UNIX_EPOCH, Some(0)),
            ("Wed, 01 Mar 2000 00:00:00 GMT", march_2000, Some(5)),
            // The obsolete forms HTTP still allows.
            ("Sunday, 06-Nov-94 08:49:37 GMT", now, Some(90)),
            ("Sun Nov  6 08:49:37 1994", now, Some(90)),
            // A weekday that does not match the date.
            ("Mon, 06 Nov 1994 08:49:37 GMT", now, None),
        ];
        for (value, now, expected) in cases {
            assert_eq!(
                parse_retry_after(value, now),
                expected.map(Duration::from_secs),
                "{value}"
            );
        }
        let far = parse_retry_after("Fri, 01 Jan 2100 00:00:00 GMT", SystemTime::now());
        assert!(far.is_some_and(|d| d > Duration::from_secs(86_400)));
    }
}
