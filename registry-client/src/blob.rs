//! Blob transfers: verified, resumable downloads into a store, and uploads
//! (monolithic, streamed or chunked) with cross-repository mounts.

use crate::client::{Client, EMPTY_LENGTH, location, resolve_url, scope};
use crate::error::{Error, chain};
use crate::manifest::Descriptor;
use crate::progress::{BlobOutcome, Event, ProgressSink};
use crate::transport::{BodyFactory, Call, status_error};
use berth_store::content::{BlobWriter, ContentStore};
use berth_store::digest::Digest;
use berth_store::reference::Reference;
use futures_util::StreamExt as _;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, RANGE};
use reqwest::{Method, StatusCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::AsyncReadExt as _;

/// Progress events for bytes are sent at most once per this many bytes.
const PROGRESS_STEP: u64 = 1024 * 1024;
/// Read size when streaming a blob from the store to the network.
const READ_CHUNK: usize = 256 * 1024;

/// Counts bytes for one blob and sends progress events in steps.
struct Meter {
    digest: Digest,
    total: u64,
    done: AtomicU64,
    progress: ProgressSink,
}

impl Meter {
    fn new(digest: &Digest, total: u64, progress: &ProgressSink) -> Arc<Meter> {
        Arc::new(Meter {
            digest: digest.clone(),
            total,
            done: AtomicU64::new(0),
            progress: Arc::clone(progress),
        })
    }

    fn set(&self, done: u64) {
        let before = self.done.swap(done, Ordering::Relaxed);
        if done / PROGRESS_STEP != before / PROGRESS_STEP || done == self.total || done < before {
            self.progress.event(Event::BlobProgress {
                digest: self.digest.clone(),
                done,
                total: self.total,
            });
        }
    }

    fn add(&self, bytes: u64) {
        let done = self.done.load(Ordering::Relaxed) + bytes;
        self.set(done);
    }
}

impl Client {
    /// Downloads a blob into the store, checking size and digest as the bytes
    /// arrive. A connection cut off midway is resumed with a `Range` request
    /// for the rest; nothing becomes visible in the store unless it verifies.
    pub async fn fetch_blob<S: ContentStore>(
        &self,
        reference: &Reference,
        descriptor: &Descriptor,
        store: &S,
        progress: &ProgressSink,
    ) -> Result<(), Error> {
        let digest = &descriptor.digest;
        let mut writer = store.write_blob(descriptor).await?;
        progress.event(Event::BlobStarted {
            digest: digest.clone(),
            size: descriptor.size,
        });
        let meter = Meter::new(digest, descriptor.size, progress);
        if writer.written() > 0 {
            // An earlier, interrupted pull left this much in the store's
            // staging file: continue after it.
            tracing::debug!(%digest, offset = writer.written(), "resuming an interrupted download");
            progress.event(Event::BlobResumed {
                digest: digest.clone(),
                offset: writer.written(),
            });
            meter.set(writer.written());
        }
        let max_resumes = self.inner.options.max_attempts;
        let mut resumes = 0;
        while writer.written() < descriptor.size || descriptor.size == 0 {
            let offset = writer.written();
            let mut call = self.call(Method::GET, reference, &format!("blobs/{digest}"), "pull");
            if offset > 0 {
                call = call.header(RANGE, &format!("bytes={offset}-"));
            }
            let sent = self.send(&mut call, &**progress).await?;
            match sent.response.status() {
                StatusCode::OK if offset > 0 => {
                    // The server ignored the Range header: start over.
                    writer.restart().await?;
                    meter.set(0);
                }
                StatusCode::OK => {}
                StatusCode::PARTIAL_CONTENT
                    if content_range_start(&sent.response) == Some(offset) => {}
                StatusCode::PARTIAL_CONTENT => {
                    return Err(Error::Protocol {
                        url: call.url.clone(),
                        reason: format!("asked for bytes from {offset} but got a different range"),
                    });
                }
                _ => return Err(status_error(&call, sent, &format!("blob {digest}")).await),
            }
            let mut stream = sent.response.bytes_stream();
            let mut cut_off = None;
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(bytes) => {
                        writer.write(&bytes).await?;
                        meter.set(writer.written());
                    }
                    Err(err) => {
                        cut_off = Some(chain(&err));
                        break;
                    }
                }
            }
            let cut_off = match cut_off {
                Some(detail) => detail,
                None if writer.written() < descriptor.size => "the body ended early".to_owned(),
                None => break,
            };
            if writer.written() >= descriptor.size {
                // Everything arrived before the connection failed.
                break;
            }
            resumes += 1;
            if resumes >= max_resumes {
                return Err(Error::Unreachable {
                    registry: call.host.clone(),
                    method: "GET".into(),
                    url: call.url.clone(),
                    attempts: resumes + 1,
                    detail: format!(
                        "download of {digest} cut off at byte {}: {cut_off}",
                        writer.written()
                    ),
                });
            }
            tracing::debug!(%digest, offset = writer.written(), reason = %cut_off, "resuming download");
            progress.event(Event::BlobResumed {
                digest: digest.clone(),
                offset: writer.written(),
            });
        }
        writer.commit().await?;
        self.remember_location(reference, digest);
        progress.event(Event::BlobDone {
            digest: digest.clone(),
            outcome: BlobOutcome::Downloaded,
        });
        Ok(())
    }

    /// Makes sure the repository has the blob: nothing moves if it already
    /// does; else it is mounted from another repository on the same registry
    /// (`mount_from`, then repositories this client saw it in), and uploaded
    /// from the store when no mount works.
    pub async fn push_blob<S: ContentStore + Clone>(
        &self,
        reference: &Reference,
        descriptor: &Descriptor,
        store: &S,
        mount_from: &[String],
        progress: &ProgressSink,
    ) -> Result<BlobOutcome, Error> {
        let digest = &descriptor.digest;
        let outcome = self
            .ensure_blob(reference, descriptor, store, mount_from, progress)
            .await?;
        self.remember_location(reference, digest);
        progress.event(Event::BlobDone {
            digest: digest.clone(),
            outcome: outcome.clone(),
        });
        Ok(outcome)
    }

    async fn ensure_blob<S: ContentStore + Clone>(
        &self,
        reference: &Reference,
        descriptor: &Descriptor,
        store: &S,
        mount_from: &[String],
        progress: &ProgressSink,
    ) -> Result<BlobOutcome, Error> {
        let digest = &descriptor.digest;
        if self.head_blob(reference, digest).await?.is_some() {
            return Ok(BlobOutcome::AlreadyPresent);
        }
        // One mount is tried: a registry that cannot mount answers with an
        // upload session, which is then used for the upload.
        let source = mount_from
            .iter()
            .find(|repo| *repo != reference.repository())
            .cloned()
            .or_else(|| self.known_location(reference, digest));
        let base = self.base_url(reference);
        let mut session = None;
        if let Some(from) = source {
            let mut call = self
                .call(
                    Method::POST,
                    reference,
                    &format!("blobs/uploads/?mount={digest}&from={from}"),
                    "pull,push",
                )
                .scope(scope(&from, "pull"))
                .header(EMPTY_LENGTH.0, EMPTY_LENGTH.1);
            let url = call.url.clone();
            let sent = self
                .within(
                    || format!("mounting blob {digest} from {from}"),
                    move || url,
                    self.send(&mut call, &**progress),
                )
                .await?;
            match sent.response.status() {
                StatusCode::CREATED => return Ok(BlobOutcome::Mounted { from }),
                StatusCode::ACCEPTED => {
                    session = Some((
                        location(&call, &sent, &base)?,
                        chunk_min_length(&sent.response),
                    ));
                }
                _ => {
                    return Err(status_error(
                        &call,
                        sent,
                        &format!("repository {}", reference.repository()),
                    )
                    .await);
                }
            }
        }
        // A failed upload session cannot be trusted to hold a known prefix, so
        // the blob is sent again in a new session.
        let mut last_error = None;
        for _session in 0..2 {
            let (upload_url, min_chunk) = match session.take() {
                Some(open) => open,
                None => self.start_upload(reference, progress).await?,
            };
            match self
                .upload(
                    reference, descriptor, store, upload_url, min_chunk, progress,
                )
                .await
            {
                Ok(()) => return Ok(BlobOutcome::Uploaded),
                Err(err @ (Error::Unauthorized { .. } | Error::Store(_))) => return Err(err),
                Err(err) => {
                    tracing::debug!(%digest, error = %err, "upload failed; starting a new session");
                    last_error = Some(err);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| Error::Protocol {
            url: base,
            reason: format!("upload of {digest} failed"),
        }))
    }

    async fn start_upload(
        &self,
        reference: &Reference,
        progress: &ProgressSink,
    ) -> Result<(String, u64), Error> {
        let mut call = self
            .call(Method::POST, reference, "blobs/uploads/", "pull,push")
            .header(EMPTY_LENGTH.0, EMPTY_LENGTH.1);
        let url = call.url.clone();
        let sent = self
            .within(
                || format!("starting an upload to {}", reference.repository()),
                move || url,
                self.send(&mut call, &**progress),
            )
            .await?;
        if sent.response.status() != StatusCode::ACCEPTED {
            return Err(status_error(
                &call,
                sent,
                &format!("repository {}", reference.repository()),
            )
            .await);
        }
        let min_chunk = chunk_min_length(&sent.response);
        Ok((
            location(&call, &sent, &self.base_url(reference))?,
            min_chunk,
        ))
    }

    async fn upload<S: ContentStore + Clone>(
        &self,
        reference: &Reference,
        descriptor: &Descriptor,
        store: &S,
        mut upload_url: String,
        min_chunk: u64,
        progress: &ProgressSink,
    ) -> Result<(), Error> {
        let digest = &descriptor.digest;
        let size = descriptor.size;
        let options = &self.inner.options;
        let base = self.base_url(reference);
        progress.event(Event::BlobStarted {
            digest: digest.clone(),
            size,
        });
        let meter = Meter::new(digest, size, progress);
        let what = format!("upload of blob {digest}");
        let finish_url = |url: &str| {
            let separator = if url.contains('?') { '&' } else { '?' };
            format!("{url}{separator}digest={digest}")
        };
        if size <= options.monolithic_limit {
            let mut call = self
                .upload_call(Method::PUT, reference, finish_url(&upload_url))
                .header(CONTENT_LENGTH, &size.to_string())
                .header(CONTENT_TYPE, "application/octet-stream")
                .body(stream_body(store, digest, &meter));
            let sent = self.send(&mut call, &**progress).await?;
            if sent.response.status() != StatusCode::CREATED {
                return Err(status_error(&call, sent, &what).await);
            }
            return Ok(());
        }
        match options.chunk_size {
            None => {
                let mut call = self
                    .upload_call(Method::PATCH, reference, upload_url)
                    .header(CONTENT_LENGTH, &size.to_string())
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .body(stream_body(store, digest, &meter));
                let sent = self.send(&mut call, &**progress).await?;
                if sent.response.status() != StatusCode::ACCEPTED {
                    return Err(status_error(&call, sent, &what).await);
                }
                upload_url = location(&call, &sent, &base)?;
            }
            Some(chunk_size) => {
                let chunk_size = chunk_size.max(min_chunk).max(1);
                let mut blob = store.open_blob(digest).await?;
                let mut start = 0u64;
                while start < size {
                    let len = chunk_size.min(size - start);
                    let mut chunk = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
                    (&mut blob.reader)
                        .take(len)
                        .read_to_end(&mut chunk)
                        .await
                        .map_err(|source| berth_store::StoreError::Io {
                            action: "reading blob",
                            path: digest.to_string().into(),
                            source,
                        })?;
                    let chunk = bytes::Bytes::from(chunk);
                    let end = start + chunk.len() as u64;
                    let body = chunk.clone();
                    let mut call = self
                        .upload_call(Method::PATCH, reference, upload_url.clone())
                        .header(CONTENT_LENGTH, &chunk.len().to_string())
                        .header(CONTENT_RANGE, &format!("{start}-{}", end.saturating_sub(1)))
                        .header(CONTENT_TYPE, "application/octet-stream")
                        .body(Box::new(move || {
                            let body = body.clone();
                            Box::pin(async move { Ok(reqwest::Body::from(body)) })
                        }));
                    let sent = self.send(&mut call, &**progress).await?;
                    if sent.response.status() != StatusCode::ACCEPTED {
                        return Err(status_error(&call, sent, &what).await);
                    }
                    upload_url = location(&call, &sent, &base)?;
                    meter.set(end);
                    if chunk.is_empty() {
                        break;
                    }
                    start = end;
                }
            }
        }
        let mut call = self
            .upload_call(Method::PUT, reference, finish_url(&upload_url))
            .header(EMPTY_LENGTH.0, EMPTY_LENGTH.1);
        let url = call.url.clone();
        let sent = self
            .within(
                || format!("finishing the upload of {digest}"),
                move || url,
                self.send(&mut call, &**progress),
            )
            .await?;
        if sent.response.status() != StatusCode::CREATED {
            return Err(status_error(&call, sent, &what).await);
        }
        Ok(())
    }

    fn upload_call(&self, method: Method, reference: &Reference, url: String) -> Call {
        let mut call = self.call(method, reference, "blobs/uploads/", "pull,push");
        call.url = resolve_url(&self.base_url(reference), &url);
        call
    }
}

/// A body that streams the blob from the store, reopened for every attempt.
fn stream_body<S: ContentStore + Clone>(
    store: &S,
    digest: &Digest,
    meter: &Arc<Meter>,
) -> BodyFactory {
    let store = store.clone();
    let digest = digest.clone();
    let meter = Arc::clone(meter);
    Box::new(move || {
        let store = store.clone();
        let digest = digest.clone();
        let meter = Arc::clone(&meter);
        Box::pin(async move {
            let blob = store.open_blob(&digest).await?;
            meter.set(0);
            let stream = futures_util::stream::unfold(blob.reader, move |mut reader| {
                let meter = Arc::clone(&meter);
                async move {
                    let mut buffer = vec![0u8; READ_CHUNK];
                    match reader.read(&mut buffer).await {
                        Ok(0) => None,
                        Ok(n) => {
                            buffer.truncate(n);
                            meter.add(n as u64);
                            Some((Ok::<_, std::io::Error>(bytes::Bytes::from(buffer)), reader))
                        }
                        Err(err) => Some((Err(err), reader)),
                    }
                }
            });
            Ok(reqwest::Body::wrap_stream(stream))
        })
    })
}

/// The start offset of a `Content-Range: bytes START-END/TOTAL` header.
fn content_range_start(response: &reqwest::Response) -> Option<u64> {
    let value = response.headers().get(CONTENT_RANGE)?.to_str().ok()?;
    let range = value.trim().strip_prefix("bytes")?.trim();
    range.split('-').next()?.trim().parse().ok()
}

/// The registry's minimum chunk size for chunked uploads, if it set one.
fn chunk_min_length(response: &reqwest::Response) -> u64 {
    response
        .headers()
        .get("oci-chunk-min-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}
