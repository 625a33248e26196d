//! `ADD <url>` end to end, against a small HTTP server on 127.0.0.1 that the
//! test starts and stops: the file name, mode, owner and mtime of the
//! download, no extraction of archives, `--checksum` match and mismatch, a
//! 404, and the cache (with `--checksum` a rebuild downloads nothing).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod build_common;

use build_common::{BuildEnv, layers, staging_entries};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

const LAST_MODIFIED: &str = "Wed, 21 Oct 2015 07:28:00 GMT";

/// Serves fixed files over HTTP/1.1 and counts the requests per path.
struct FileServer {
    port: u16,
    hits: Arc<Mutex<BTreeMap<String, usize>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FileServer {
    fn start(files: BTreeMap<String, Vec<u8>>) -> FileServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(Mutex::new(BTreeMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (hits, stop) = (hits.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    if let Some(path) = serve(stream, &files) {
                        *hits.lock().unwrap().entry(path).or_insert(0) += 1;
                    }
                }
            })
        };
        FileServer {
            port,
            hits,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Answers one request; returns its path (without the query).
fn serve(mut stream: TcpStream, files: &BTreeMap<String, Vec<u8>>) -> Option<String> {
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        request.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&request);
    let target = text.split_whitespace().nth(1)?;
    let path = target.split('?').next().unwrap_or(target).to_string();
    let response = match files.get(&path) {
        Some(body) => {
            let mut r = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nLast-Modified: {LAST_MODIFIED}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .into_bytes();
            r.extend_from_slice(body);
            r
        }
        None => {
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found"
                .to_vec()
        }
    };
    let _ = stream.write_all(&response);
    Some(path)
}

fn sha256(data: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(data))
}

/// A plain tar archive holding `hello.txt`.
fn tar_archive() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.txt"), "hello\n").unwrap();
    let out = Command::new("tar")
        .arg("-C")
        .arg(dir.path())
        .args(["-cf", "-", "hello.txt"])
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

/// `tar -tv` lines of the image's last layer: mode, owner, size, time, path.
fn last_layer_listing(env: &BuildEnv, tag: &str) -> String {
    let last = layers(&env.manifest_of(tag)).pop().unwrap();
    let out = Command::new("tar")
        .args(["--numeric-owner", "--full-time", "-tvf"])
        .arg(env.blob(&last))
        .env("TZ", "UTC")
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn listing_line<'a>(listing: &'a str, path: &str) -> &'a str {
    listing
        .lines()
        .find(|l| l.ends_with(&format!(" {path}")))
        .unwrap_or_else(|| panic!("{path} is not in the layer:\n{listing}"))
}

#[test]
fn add_url_names_the_file_after_the_url_and_never_extracts() {
    let archive = tar_archive();
    let server = FileServer::start(BTreeMap::from([(
        "/dl/tool.tar".to_string(),
        archive.clone(),
    )]));
    let env = BuildEnv::new();
    let url = server.url("/dl/tool.tar?version=1");
    env.write(
        "Dockerfile",
        &format!(
            "FROM busybox\nADD {url} /opt/\nADD --chown=7:8 --chmod=755 {url} /bin2/renamed\n"
        ),
    );
    env.build_ok(&["-t", "url"]);
    assert_eq!(server.hits("/dl/tool.tar"), 2);

    let manifest = env.manifest_of("url");
    let all = layers(&manifest);
    let first = all[all.len() - 2].clone();
    let out = Command::new("tar")
        .args(["--numeric-owner", "--full-time", "-tvf"])
        .arg(env.blob(&first))
        .env("TZ", "UTC")
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = listing_line(&listing, "opt/tool.tar");
    // Mode 0600, root, the served size, Last-Modified as mtime; not unpacked.
    assert!(
        line.starts_with("-rw------- 0/0")
            && line.contains(&format!(" {} 2015-10-21 07:28:00 ", archive.len())),
        "{line}"
    );
    assert!(!listing.contains("hello.txt"), "{listing}");

    let listing = last_layer_listing(&env, "url");
    let line = listing_line(&listing, "bin2/renamed");
    assert!(line.starts_with("-rwxr-xr-x 7/8"), "{line}");
}

#[test]
fn add_url_checksum_match_mismatch_and_cache() {
    let content = b"#!/bin/sh\necho fetched\n".to_vec();
    let server = FileServer::start(BTreeMap::from([("/tool.sh".to_string(), content.clone())]));
    let env = BuildEnv::new();
    let url = server.url("/tool.sh");
    let good = sha256(&content);

    env.write(
        "Dockerfile",
        &format!("FROM busybox\nADD --checksum={good} {url} /usr/bin/tool\n"),
    );
    let (first, _) = env.build_ok(&["-t", "sum"]);
    assert_eq!(server.hits("/tool.sh"), 1);
    let listing = last_layer_listing(&env, "sum");
    listing_line(&listing, "usr/bin/tool");

    // With --checksum, the rebuild is a cache hit without a download.
    let (second, progress) = env.build_ok(&["-t", "sum"]);
    // The image's `created` is the build time: compare the layers.
    assert_eq!(layers(&env.json(&second)), layers(&env.json(&first)));
    assert_eq!(progress.matches("CACHED").count(), 1, "{progress}");
    assert_eq!(server.hits("/tool.sh"), 1, "the rebuild downloaded again");

    // A wrong checksum fails, naming the URL and both digests, and keeps nothing.
    let wrong = sha256(b"something else");
    env.write(
        "Dockerfile",
        &format!("FROM busybox\nADD --checksum={wrong} {url} /usr/bin/tool\n"),
    );
    let out = env.build(&["-t", "bad"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    for needle in [url.as_str(), good.as_str(), wrong.as_str()] {
        assert!(stderr.contains(needle), "{needle} missing in:\n{stderr}");
    }
    assert_eq!(server.hits("/tool.sh"), 2);
    assert_eq!(staging_entries(env.store.path()), Vec::<String>::new());
}

#[test]
fn add_url_without_checksum_is_keyed_by_content() {
    let server = FileServer::start(BTreeMap::from([("/a.txt".to_string(), b"a\n".to_vec())]));
    let env = BuildEnv::new();
    let url = server.url("/a.txt");
    env.write("Dockerfile", &format!("FROM busybox\nADD {url} /data/\n"));
    let (first, _) = env.build_ok(&["-t", "plain"]);
    // Without --checksum the content must be fetched to know the key, but the
    // same content is still a cache hit.
    let (second, progress) = env.build_ok(&["-t", "plain"]);
    assert_eq!(server.hits("/a.txt"), 2);
    // The image's `created` is the build time: compare the layers.
    assert_eq!(layers(&env.json(&second)), layers(&env.json(&first)));
    assert_eq!(progress.matches("CACHED").count(), 1, "{progress}");
}

#[test]
fn add_url_not_found_names_the_url() {
    let server = FileServer::start(BTreeMap::new());
    let env = BuildEnv::new();
    let url = server.url("/missing.bin");
    env.write(
        "Dockerfile",
        &format!("FROM busybox\nADD {url} /missing.bin\n"),
    );
    let out = env.build(&["-t", "nf"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&url) && stderr.contains("404"),
        "the error does not name the URL and the status:\n{stderr}"
    );
    assert_eq!(server.hits("/missing.bin"), 1);

    // A refused connection names the URL too.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let closed = format!("http://127.0.0.1:{port}/x");
    env.write("Dockerfile", &format!("FROM busybox\nADD {closed} /x\n"));
    let out = env.build(&["-t", "nf"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains(&closed), "{stderr}");
}
