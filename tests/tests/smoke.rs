//! Smoke tests: the binaries start, and the test registry speaks the
//! distribution protocol over plain HTTP.

use berth_e2e::{bins, registry::TestRegistry};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::process::Command;

#[test]
fn berth_version_names_the_package_version() {
    let out = Command::new(bins::berth())
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success(), "berth --version failed: {out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout.trim(),
        format!("berth {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn berth_runtime_version_has_runc_layout() {
    let out = Command::new(bins::berth_runtime())
        .arg("--version")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "berth-runtime --version failed: {out:?}"
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "unexpected --version output:\n{stdout}");
    assert_eq!(
        lines[0],
        format!("berth-runtime version {}", env!("CARGO_PKG_VERSION"))
    );
    assert!(lines[1].starts_with("commit: "), "{stdout}");
    let spec = lines[2].strip_prefix("spec: ").expect("a spec line");
    assert!(
        spec.starts_with("1."),
        "spec version should be 1.x.y: {spec}"
    );
}

#[test]
fn test_registry_stores_and_serves_a_blob_over_plain_http() {
    let registry = TestRegistry::start();
    let blob = b"berth smoke test blob\n";
    let digest = format!("sha256:{:x}", Sha256::digest(blob));

    // Start an upload session, then finish it monolithically with the digest.
    let started = ureq::post(&format!("{}/v2/smoke/test/blobs/uploads/", registry.url()))
        .call()
        .unwrap();
    assert_eq!(started.status(), 202);
    let location = started
        .header("Location")
        .expect("upload Location")
        .to_string();
    let location = if location.starts_with('/') {
        format!("{}{location}", registry.url())
    } else {
        location
    };
    let separator = if location.contains('?') { '&' } else { '?' };
    let put = ureq::put(&format!("{location}{separator}digest={digest}"))
        .set("Content-Type", "application/octet-stream")
        .send_bytes(blob)
        .unwrap();
    assert_eq!(put.status(), 201);

    let head = ureq::head(&format!("{}/v2/smoke/test/blobs/{digest}", registry.url()))
        .call()
        .unwrap();
    assert_eq!(
        head.header("Content-Length"),
        Some(blob.len().to_string().as_str())
    );

    let got = ureq::get(&format!("{}/v2/smoke/test/blobs/{digest}", registry.url()))
        .call()
        .unwrap();
    let mut body = Vec::new();
    got.into_reader().read_to_end(&mut body).unwrap();
    assert_eq!(body, blob);
    assert_eq!(
        registry.count_requests("PUT", "/v2/smoke/test/blobs/uploads/"),
        1
    );
}
