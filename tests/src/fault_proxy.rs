//! An HTTP proxy in front of a registry that injects faults (error statuses,
//! connections cut midway, corrupted and oversized bodies) and records what
//! passed through it.

use crate::http::{self, Body, full};
use bytes::Bytes;
use http_body_util::{BodyExt as _, StreamBody};
use hyper::body::Frame;
use hyper::{Request, Response};
use std::sync::{Arc, Mutex, OnceLock};

/// The media type a [`Fault::Huge`] answer claims.
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// A fault for requests whose path contains `path_part` (and whose method
/// matches), applied to the first `times` of them.
#[derive(Clone, Debug)]
pub struct Rule {
    /// The request method, e.g. `GET`.
    pub method: &'static str,
    /// A part of the path (with its query) the request must contain.
    pub path_part: String,
    /// How many matching requests get the fault.
    pub times: usize,
    /// What happens to them.
    pub fault: Fault,
}

/// What the proxy does to a request a [`Rule`] matches.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer with this status (and `Retry-After` if given), without
    /// forwarding.
    Status(u16, Option<u64>),
    /// Forward, but drop the connection after this many body bytes.
    CutAfter(usize),
    /// Forward with one body byte flipped.
    Corrupt,
    /// Answer 200 with a manifest body of this many bytes.
    Huge(usize),
}

/// One request as seen by the proxy.
#[derive(Clone, Debug)]
pub struct Seen {
    /// The request method.
    pub method: String,
    /// The path with its query.
    pub path: String,
    /// The `Range` header, if any.
    pub range: Option<String>,
    /// The status the client got.
    pub status: u16,
    /// Body bytes sent to the client.
    pub sent: usize,
}

/// A running proxy; dropping it stops it.
pub struct Proxy {
    /// `127.0.0.1:PORT`, the host to put in references instead of the
    /// registry's.
    pub addr: String,
    /// Every request so far, in order.
    pub seen: Arc<Mutex<Vec<Seen>>>,
    _server: http::Server,
}

/// Everything a request's handling needs, shared by all connections.
struct Shared {
    rules: Mutex<Vec<Rule>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    http: reqwest::Client,
    upstream: String,
    /// The proxy's own `host:port`, which replaces the registry's in
    /// `Location` headers so that uploads keep going through the proxy.
    addr: OnceLock<String>,
}

/// Starts a proxy for the registry at `upstream` (`http://host:port`).
pub async fn start(upstream: String, rules: Vec<Rule>) -> Proxy {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let shared = Arc::new(Shared {
        rules: Mutex::new(rules),
        seen: Arc::clone(&seen),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        upstream,
        addr: OnceLock::new(),
    });
    let handler_shared = Arc::clone(&shared);
    let server = http::Server::start(move |request| {
        let shared = Arc::clone(&handler_shared);
        async move { handle(request, &shared).await }
    })
    .await;
    // No request can arrive before the address is set: nobody has it yet.
    shared.addr.set(server.host()).unwrap();
    Proxy {
        addr: server.host(),
        seen,
        _server: server,
    }
}

async fn handle(request: Request<hyper::body::Incoming>, shared: &Shared) -> Response<Body> {
    let method = request.method().to_string();
    let path = request
        .uri()
        .path_and_query()
        .map(ToString::to_string)
        .unwrap_or_default();
    let range = request
        .headers()
        .get("range")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let fault = {
        let mut rules = shared.rules.lock().unwrap();
        rules
            .iter_mut()
            .find(|rule| rule.times > 0 && rule.method == method && path.contains(&rule.path_part))
            .map(|rule| {
                rule.times -= 1;
                rule.fault.clone()
            })
    };
    let record = |status: u16, sent: usize| {
        shared.seen.lock().unwrap().push(Seen {
            method: method.clone(),
            path: path.clone(),
            range: range.clone(),
            status,
            sent,
        });
    };
    match fault {
        Some(Fault::Status(status, retry_after)) => {
            record(status, 0);
            let mut response = Response::builder().status(status);
            if let Some(seconds) = retry_after {
                response = response.header("retry-after", seconds.to_string());
            }
            return response.body(full(Bytes::new())).unwrap();
        }
        Some(Fault::Huge(size)) => {
            record(200, size);
            return Response::builder()
                .header("content-type", OCI_MANIFEST)
                .body(full(vec![b' '; size]))
                .unwrap();
        }
        _ => {}
    }
    let upstream = &shared.upstream;
    let mut forward = shared
        .http
        .request(request.method().clone(), format!("{upstream}{path}"));
    for (name, value) in request.headers() {
        if name != "host" {
            forward = forward.header(name, value);
        }
    }
    let body = request.into_body().collect().await.unwrap().to_bytes();
    let answer = forward.body(body).send().await.unwrap();
    let status = answer.status().as_u16();
    let mut response = Response::builder().status(status);
    let proxy_addr = shared.addr.get().map_or("", String::as_str);
    for (name, value) in answer.headers() {
        if name == "location" {
            let rewritten = value
                .to_str()
                .unwrap()
                .replace(upstream.trim_start_matches("http://"), proxy_addr);
            response = response.header(name, rewritten);
        } else {
            response = response.header(name, value);
        }
    }
    let bytes = answer.bytes().await.unwrap();
    match fault {
        Some(Fault::CutAfter(limit)) => {
            record(status, limit.min(bytes.len()));
            let head = bytes.slice(..limit.min(bytes.len()));
            let chunks = futures_util::stream::iter(vec![
                Ok(Frame::data(head)),
                Err(std::io::Error::other(
                    "connection dropped by the fault proxy",
                )),
            ]);
            response.body(StreamBody::new(chunks).boxed()).unwrap()
        }
        Some(Fault::Corrupt) => {
            record(status, bytes.len());
            let mut corrupt = bytes.to_vec();
            let middle = corrupt.len() / 2;
            if let Some(byte) = corrupt.get_mut(middle) {
                *byte ^= 0xff;
            }
            response.body(full(corrupt)).unwrap()
        }
        _ => {
            record(status, bytes.len());
            response.body(full(bytes)).unwrap()
        }
    }
}
