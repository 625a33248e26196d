//! A hostile registry: an in-test HTTP server that plays the attacker against
//! berth-registry-client (and `berth pull`). It points `Link` and `Location`
//! headers and redirects at another origin that records what it is sent,
//! answers with endless or trickling bodies, and paginates forever.
// Helpers outside the #[test] functions fail the test on setup errors, as the
// tests themselves do.
#![allow(clippy::unwrap_used, clippy::panic)]

use berth_e2e::bins;
use berth_e2e::http::{self, Body, full};
use berth_registry_client::auth::{Credential, Credentials};
use berth_registry_client::manifest::Descriptor;
use berth_registry_client::progress::{NoProgress, ProgressSink};
use berth_registry_client::{Client, ClientOptions, Error};
use berth_store::{Digest, reference};
use berth_store::{content::ContentStore, layout::OciLayout};
use bytes::Bytes;
use http_body_util::{BodyExt as _, StreamBody};
use hyper::Response;
use hyper::body::Frame;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A request as the server saw it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    authorization: Option<String>,
}

/// What a handler gets: the request line and its Authorization header.
type Handler = Arc<
    dyn Fn(Seen) -> Pin<Box<dyn Future<Output = Response<Body>> + Send>> + Send + Sync + 'static,
>;

/// A loopback HTTP server answering with a handler and recording requests.
struct Server {
    addr: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    http: http::Server,
}

impl Server {
    async fn start(handler: Handler) -> Server {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen_by_handler = Arc::clone(&seen);
        let http = http::Server::start(move |request| {
            let (handler, seen) = (Arc::clone(&handler), Arc::clone(&seen_by_handler));
            async move {
                let entry = Seen {
                    method: request.method().to_string(),
                    path: request
                        .uri()
                        .path_and_query()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                    authorization: request
                        .headers()
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned),
                };
                seen.lock().unwrap().push(entry.clone());
                // Uploads carry a body: drain it before answering.
                let _ = request.into_body().collect().await;
                handler(entry).await
            }
        })
        .await;
        Server {
            addr: http.host(),
            seen,
            http,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn url(&self) -> String {
        self.http.url()
    }
}

fn handler<F, Fut>(f: F) -> Handler
where
    F: Fn(Seen) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Body>> + Send + 'static,
{
    Arc::new(move |seen| Box::pin(f(seen)))
}

/// A body that never ends: 256 KiB every 10 ms (so that old code, which read
/// it whole, grows by 25 MiB/s rather than by gigabytes).
fn endless() -> Body {
    let chunk = Bytes::from(vec![b'x'; 256 * 1024]);
    let stream = futures_util::stream::unfold(chunk, |chunk| async move {
        tokio::time::sleep(Duration::from_millis(10)).await;
        Some((Ok(Frame::data(chunk.clone())), chunk))
    });
    StreamBody::new(stream).boxed()
}

/// A body that sends one byte every `every`, for ever.
fn trickle(every: Duration) -> Body {
    let stream = futures_util::stream::unfold((), move |()| async move {
        tokio::time::sleep(every).await;
        Some((Ok(Frame::data(Bytes::from_static(b" "))), ()))
    });
    StreamBody::new(stream).boxed()
}

fn status(code: u16) -> hyper::http::response::Builder {
    Response::builder().status(code)
}

const USER: &str = "alice";
const PASSWORD: &str = "s3cret";

fn basic_value() -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    )
}

/// A 401 asking for Basic credentials unless the request has them.
fn challenge_unless_authorised(seen: &Seen) -> Option<Response<Body>> {
    (seen.authorization.as_deref() != Some(basic_value().as_str())).then(|| {
        status(401)
            .header("www-authenticate", r#"Basic realm="hostile""#)
            .body(full(""))
            .unwrap()
    })
}

fn client_with(options: ClientOptions) -> Client {
    Client::new(ClientOptions {
        credentials: Credentials::Fixed(Credential::Basic {
            username: USER.into(),
            password: PASSWORD.into(),
        }),
        initial_backoff: Duration::from_millis(10),
        max_attempts: 2,
        ..options
    })
    .unwrap()
}

fn client() -> Client {
    client_with(ClientOptions::default())
}

fn quiet() -> ProgressSink {
    Arc::new(NoProgress)
}

/// Asserts that nothing the other origin received carried credentials.
fn assert_no_credentials(other: &Server) {
    let seen = other.seen();
    assert!(!seen.is_empty(), "the other origin was never asked");
    for request in seen {
        assert_eq!(
            request.authorization, None,
            "{} {} on another origin received credentials",
            request.method, request.path
        );
    }
}

/// Runs an operation that must fail by itself well within `bound`.
async fn fails_within<T: std::fmt::Debug>(
    bound: Duration,
    operation: impl Future<Output = Result<T, Error>>,
) -> (Error, Duration) {
    let started = Instant::now();
    let outcome = tokio::time::timeout(bound, operation)
        .await
        .unwrap_or_else(|_| panic!("still running after {bound:?}"));
    (outcome.unwrap_err(), started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tag_list_link_to_another_origin_gets_no_credentials() {
    let other = Server::start(handler(|_| async {
        status(200)
            .body(full(r#"{"name":"app","tags":["from-other"]}"#))
            .unwrap()
    }))
    .await;
    let next = format!("{}/v2/app/tags/list?last=a", other.url());
    let registry = Server::start(handler(move |seen| {
        let next = next.clone();
        async move {
            if let Some(challenge) = challenge_unless_authorised(&seen) {
                return challenge;
            }
            status(200)
                .header("link", format!(r#"<{next}>; rel="next""#))
                .body(full(r#"{"name":"app","tags":["a"]}"#))
                .unwrap()
        }
    }))
    .await;
    let reference = reference::parse(&format!("{}/app", registry.addr)).unwrap();
    let tags = client().list_tags(&reference).await.unwrap();
    assert_eq!(tags, ["a", "from-other"]);
    assert!(
        registry
            .seen()
            .iter()
            .any(|r| r.authorization.as_deref() == Some(basic_value().as_str())),
        "the registry itself never got the credentials: {:?}",
        registry.seen()
    );
    assert_no_credentials(&other);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_location_on_another_origin_gets_no_credentials() {
    let other = Server::start(handler(|seen| async move {
        match seen.method.as_str() {
            "PUT" => status(201).body(full("")).unwrap(),
            _ => status(405).body(full("")).unwrap(),
        }
    }))
    .await;
    let upload = format!("{}/upload/1", other.url());
    let registry = Server::start(handler(move |seen| {
        let upload = upload.clone();
        async move {
            if let Some(challenge) = challenge_unless_authorised(&seen) {
                return challenge;
            }
            match seen.method.as_str() {
                "HEAD" => status(404).body(full("")).unwrap(),
                "POST" => status(202)
                    .header("location", upload)
                    .body(full(""))
                    .unwrap(),
                _ => status(405).body(full("")).unwrap(),
            }
        }
    }))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let store = OciLayout::create(dir.path()).await.unwrap();
    let blob = b"a blob for the hostile upload".to_vec();
    let digest = store.put_blob(&blob).await.unwrap();
    let descriptor = Descriptor::new("application/octet-stream", digest, blob.len() as u64);
    let reference = reference::parse(&format!("{}/app:v1", registry.addr)).unwrap();
    client()
        .push_blob(&reference, &descriptor, &store, &[], &quiet())
        .await
        .unwrap();
    assert!(other.seen().iter().any(|r| r.method == "PUT"));
    assert_no_credentials(&other);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_to_another_origin_gets_no_credentials() {
    let blob = b"a blob behind a redirect".to_vec();
    let digest = Digest::of(&blob);
    let served = blob.clone();
    let other = Server::start(handler(move |_| {
        let served = served.clone();
        async move { status(200).body(full(served)).unwrap() }
    }))
    .await;
    let storage = format!("{}/storage/blob", other.url());
    let registry = Server::start(handler(move |seen| {
        let storage = storage.clone();
        async move {
            if let Some(challenge) = challenge_unless_authorised(&seen) {
                return challenge;
            }
            status(307)
                .header("location", storage)
                .body(full(""))
                .unwrap()
        }
    }))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let store = OciLayout::create(dir.path()).await.unwrap();
    let descriptor = Descriptor::new(
        "application/octet-stream",
        digest.clone(),
        blob.len() as u64,
    );
    let reference = reference::parse(&format!("{}/app:v1", registry.addr)).unwrap();
    client()
        .fetch_blob(&reference, &descriptor, &store, &quiet())
        .await
        .unwrap();
    assert!(store.has_blob(&digest).await.unwrap());
    assert_no_credentials(&other);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_token_realm_on_another_host_gets_no_credentials() {
    // The realm's host does not resolve: a client that sends the credentials
    // fails trying to reach it; one that refuses says so without trying.
    let registry = Server::start(handler(|_| async {
        status(401)
            .header(
                "www-authenticate",
                r#"Bearer realm="http://token.hostile.invalid/token",service="hostile""#,
            )
            .body(full(""))
            .unwrap()
    }))
    .await;
    let reference = reference::parse(&format!("{}/app:v1", registry.addr)).unwrap();
    let (err, _) = fails_within(Duration::from_secs(30), client().get_manifest(&reference)).await;
    assert!(matches!(err, Error::Unauthorized { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("plain HTTP"), "{message}");
    assert!(message.contains("token.hostile.invalid"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_error_body_fails_promptly() {
    let registry = Server::start(handler(|_| async { status(400).body(endless()).unwrap() })).await;
    let reference = reference::parse(&format!("{}/app:v1", registry.addr)).unwrap();
    let (err, took) =
        fails_within(Duration::from_secs(10), client().get_manifest(&reference)).await;
    assert!(matches!(err, Error::Status { status: 400, .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("1048576 bytes"), "{message}");
    assert!(message.contains("/v2/app/manifests/v1"), "{message}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_token_body_fails_promptly() {
    let realm = Arc::new(Mutex::new(String::new()));
    let realm_for_registry = Arc::clone(&realm);
    let registry = Server::start(handler(move |seen| {
        let realm = realm_for_registry.lock().unwrap().clone();
        async move {
            if seen.path.starts_with("/token") {
                return status(200).body(endless()).unwrap();
            }
            status(401)
                .header(
                    "www-authenticate",
                    format!(r#"Bearer realm="{realm}",service="hostile""#),
                )
                .body(full(""))
                .unwrap()
        }
    }))
    .await;
    *realm.lock().unwrap() = format!("{}/token", registry.url());
    let reference = reference::parse(&format!("{}/app:v1", registry.addr)).unwrap();
    let (err, took) =
        fails_within(Duration::from_secs(10), client().get_manifest(&reference)).await;
    let message = err.to_string();
    assert!(message.contains("token response"), "{message}");
    assert!(message.contains("1048576 bytes"), "{message}");
    assert!(message.contains("/token"), "{message}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_manifest_fails_promptly() {
    let registry = Server::start(handler(|_| async {
        status(200)
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .body(endless())
            .unwrap()
    }))
    .await;
    let reference = reference::parse(&format!("{}/app:v1", registry.addr)).unwrap();
    let (err, took) =
        fails_within(Duration::from_secs(10), client().get_manifest(&reference)).await;
    assert!(matches!(err, Error::ManifestTooLarge { .. }), "{err:?}");
    assert!(err.to_string().contains("app:v1"), "{err}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_referencing_tag_pagination_stops() {
    let registry = Server::start(handler(|seen| async move {
        // Every page links to itself.
        status(200)
            .header("link", format!(r#"<{}>; rel="next""#, seen.path))
            .body(full(r#"{"name":"app","tags":["a"]}"#))
            .unwrap()
    }))
    .await;
    let reference = reference::parse(&format!("{}/app", registry.addr)).unwrap();
    let (err, _) = fails_within(Duration::from_secs(10), client().list_tags(&reference)).await;
    assert!(matches!(err, Error::Pagination { .. }), "{err:?}");
    assert!(err.to_string().contains("already read"), "{err}");
    assert_eq!(registry.seen().len(), 1, "{:?}", registry.seen());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_tag_pagination_stops_after_the_page_bound() {
    let pages = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let registry = Server::start(handler(move |_| {
        // Every page links to a new one.
        let page = pages.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        async move {
            status(200)
                .header(
                    "link",
                    format!(r#"</v2/app/tags/list?last=t{page}>; rel="next""#),
                )
                .body(full(format!(r#"{{"name":"app","tags":["t{page}"]}}"#)))
                .unwrap()
        }
    }))
    .await;
    let reference = reference::parse(&format!("{}/app", registry.addr)).unwrap();
    let bounded = client_with(ClientOptions {
        max_tag_pages: 20,
        ..ClientOptions::default()
    });
    let (err, _) = fails_within(Duration::from_secs(10), bounded.list_tags(&reference)).await;
    assert!(matches!(err, Error::Pagination { .. }), "{err:?}");
    assert!(err.to_string().contains("more than 20 pages"), "{err}");
    assert_eq!(registry.seen().len(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickling_body_fails_by_the_deadline() {
    let registry = Server::start(handler(|_| async {
        status(200)
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .body(trickle(Duration::from_millis(200)))
            .unwrap()
    }))
    .await;
    let reference = reference::parse(&format!("{}/app:v1", registry.addr)).unwrap();
    let impatient = client_with(ClientOptions {
        operation_timeout: Duration::from_secs(2),
        ..ClientOptions::default()
    });
    let (err, took) =
        fails_within(Duration::from_secs(20), impatient.get_manifest(&reference)).await;
    assert!(matches!(err, Error::DeadlineExceeded { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("app:v1"), "{message}");
    assert!(message.contains("within 2s"), "{message}");
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(6),
        "took {took:?}"
    );
    // The default stays sensible: minutes, not seconds, and not unbounded.
    let default = ClientOptions::default().operation_timeout;
    assert!(default >= Duration::from_secs(60) && default <= Duration::from_secs(900));
}

/// Runs `berth --root <tmp> pull <reference>` off the async threads.
async fn berth_pull(reference: String) -> std::process::Output {
    let berth = bins::berth();
    tokio::task::spawn_blocking(move || {
        let root = tempfile::tempdir().unwrap();
        let config = tempfile::tempdir().unwrap();
        std::process::Command::new(berth)
            .arg("--root")
            .arg(root.path())
            .args(["pull", &reference])
            .env("DOCKER_CONFIG", config.path())
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn berth_pull_of_an_endless_error_body_fails_promptly() {
    let registry = Server::start(handler(|_| async { status(400).body(endless()).unwrap() })).await;
    let started = Instant::now();
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        berth_pull(format!("{}/app:v1", registry.addr)),
    )
    .await
    .unwrap_or_else(|_| panic!("berth pull still running after 30s"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("HTTP 400"), "{stderr}");
    assert!(stderr.contains("1048576 bytes"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn berth_pull_of_an_out_of_range_port_says_so() {
    let out = berth_pull("localhost:99999/app".into()).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("localhost:99999/app"), "{stderr}");
    assert!(stderr.contains("port 99999 is out of range"), "{stderr}");
    assert!(!stderr.contains("builder error"), "{stderr}");
}
