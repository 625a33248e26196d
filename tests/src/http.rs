//! Loopback HTTP/1.1 servers on hyper, for tests that play a registry, a token
//! service or a proxy: the accept loop, one body type for every answer, and a
//! handle that stops accepting when it drops.

use bytes::Bytes;
use http_body_util::{BodyExt as _, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::{Request, Response};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

/// A response body: whole, streamed, or failing midway.
pub type Body = BoxBody<Bytes, std::io::Error>;

/// A body of exactly `bytes`.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    http_body_util::Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// A server on a free port of 127.0.0.1 answering every request with a
/// handler; dropping it stops the accept loop.
pub struct Server {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    /// Starts serving on the current tokio runtime. Each connection is served
    /// on a task of its own, so a handler that never finishes its body (an
    /// endless or trickling answer) holds up only its own connection.
    pub async fn start<F, Fut>(handler: F) -> Server
    where
        F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<Body>> + Send + 'static,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding a loopback port for a test HTTP server");
        let addr = listener
            .local_addr()
            .expect("reading the test HTTP server's address");
        let handler = Arc::new(handler);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let handler = Arc::clone(&handler);
                let service = hyper::service::service_fn(move |request: Request<Incoming>| {
                    let answer = handler(request);
                    async move { Ok::<_, Infallible>(answer.await) }
                });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Server { addr, task }
    }

    /// `127.0.0.1:PORT`, as it appears in references.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}
