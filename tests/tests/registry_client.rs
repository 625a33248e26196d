//! End-to-end tests of berth-registry-client against Debian's `docker-registry`
//! (anonymous, htpasswd and token auth, with `berth_e2e::token_server`),
//! through `berth_e2e::fault_proxy`, and interoperating with Debian's `skopeo`.
// Helpers outside the #[test] functions (image builders) fail the test on setup
// errors, as the tests themselves do.
#![allow(clippy::unwrap_used, clippy::panic)]

use berth_e2e::registry::{Auth, Options, TestRegistry, htpasswd_file};
use berth_e2e::{fault_proxy, require, token_server};
use berth_registry_client::auth::{Credential, Credentials};
use berth_registry_client::manifest::{Descriptor, OCI_MANIFEST};
use berth_registry_client::progress::{Event, NoProgress, ProgressSink};
use berth_registry_client::{Client, ClientOptions, Error, PullOptions, PushOptions};
use berth_store::{Digest, reference};
use berth_store::{content::ContentStore, layout::OciLayout};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";

/// Deterministic pseudo-random bytes (splitmix64), so layers differ per seed
/// and do not compress.
fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Writes an image of the given layers into the layout under `tag`; returns the
/// manifest's descriptor.
async fn make_image(layout: &OciLayout, tag: &str, layers: &[Vec<u8>]) -> Descriptor {
    let mut layer_descriptors = Vec::new();
    for layer in layers {
        let digest = layout.put_blob(layer).await.unwrap();
        layer_descriptors.push(Descriptor::new(
            LAYER_MEDIA_TYPE,
            digest,
            layer.len() as u64,
        ));
    }
    let diff_ids: Vec<String> = layer_descriptors
        .iter()
        .map(|d| d.digest.to_string())
        .collect();
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/bin/true"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config_bytes = serde_json::to_vec(&config).unwrap();
    let config_digest = layout.put_blob(&config_bytes).await.unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": Descriptor::new("application/vnd.oci.image.config.v1+json", config_digest, config_bytes.len() as u64),
        "layers": layer_descriptors,
    });
    let manifest_bytes = serde_json::to_vec(&manifest).unwrap();
    let digest = layout.put_blob(&manifest_bytes).await.unwrap();
    let descriptor = Descriptor::new(OCI_MANIFEST, digest, manifest_bytes.len() as u64);
    layout.tag(tag, &descriptor).await.unwrap();
    descriptor
}

fn client() -> Client {
    client_with(ClientOptions {
        credentials: Credentials::Fixed(Credential::Anonymous),
        ..ClientOptions::default()
    })
}

fn client_with(options: ClientOptions) -> Client {
    Client::new(ClientOptions {
        initial_backoff: Duration::from_millis(20),
        ..options
    })
    .unwrap()
}

fn basic(username: &str, password: &str) -> Credentials {
    Credentials::Fixed(Credential::Basic {
        username: username.into(),
        password: password.into(),
    })
}

fn quiet() -> ProgressSink {
    Arc::new(NoProgress)
}

/// A sink that keeps every event, for assertions.
fn recorder() -> (ProgressSink, Arc<Mutex<Vec<Event>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink_events = Arc::clone(&events);
    let sink: ProgressSink = Arc::new(move |event: Event| sink_events.lock().unwrap().push(event));
    (sink, events)
}

fn parse(text: &str) -> reference::Reference {
    reference::parse(text).unwrap()
}

/// Every blob file of a layout with its bytes, sorted by digest.
fn blob_files(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(root.join("blobs/sha256"))
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            (
                entry.file_name().to_string_lossy().into_owned(),
                std::fs::read(entry.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

fn ingest_leftovers(root: &Path) -> usize {
    std::fs::read_dir(root.join(".ingest")).map_or(0, |dir| dir.count())
}

/// Upload completions (one per uploaded blob) and blob downloads in the
/// registry's access log.
fn blob_uploads(registry: &TestRegistry, repository: &str) -> usize {
    std::thread::sleep(Duration::from_millis(100));
    registry.count_requests("PUT", &format!("/v2/{repository}/blobs/uploads/"))
}

fn blob_downloads(registry: &TestRegistry, repository: &str) -> usize {
    std::thread::sleep(Duration::from_millis(100));
    registry.count_requests("GET", &format!("/v2/{repository}/blobs/sha256:"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_moves_only_missing_blobs() {
    let registry = TestRegistry::start();
    let dir = tempfile::tempdir().unwrap();
    let source = OciLayout::create(dir.path().join("source")).await.unwrap();
    let shared = random_bytes(1, 300_000);
    let image = make_image(
        &source,
        "v1",
        &[
            shared.clone(),
            random_bytes(2, 200_000),
            random_bytes(3, 1000),
        ],
    )
    .await;
    let client = client();
    let target = parse(&format!("{}/berth/app:v1", registry.host()));

    let (sink, events) = recorder();
    let first = client
        .push(&source, "v1", &target, &PushOptions::default(), sink)
        .await
        .unwrap();
    assert_eq!(
        (first.uploaded, first.present, first.up_to_date),
        (4, 0, false),
        "{first:?}"
    );
    assert_eq!(first.digest, image.digest);
    assert_eq!(blob_uploads(&registry, "berth/app"), 4);
    let done = events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(e, Event::BlobDone { .. }))
        .count();
    assert_eq!(done, 4, "one BlobDone event per blob");

    // A second push of the same image sends nothing.
    let again = client
        .push(&source, "v1", &target, &PushOptions::default(), quiet())
        .await
        .unwrap();
    assert!(again.up_to_date, "{again:?}");
    assert_eq!(
        blob_uploads(&registry, "berth/app"),
        4,
        "the second push uploaded blobs"
    );

    // An image sharing a layer uploads only its new blobs (new layer + config).
    make_image(&source, "v2", &[shared, random_bytes(4, 100_000)]).await;
    let v2 = parse(&format!("{}/berth/app:v2", registry.host()));
    let second = client
        .push(&source, "v2", &v2, &PushOptions::default(), quiet())
        .await
        .unwrap();
    assert_eq!((second.uploaded, second.present), (2, 1), "{second:?}");
    assert_eq!(blob_uploads(&registry, "berth/app"), 6);

    // Pull into an empty layout: identical bytes and digests.
    let pulled = OciLayout::create(dir.path().join("pulled")).await.unwrap();
    let report = client
        .pull(&target, &pulled, "v1", &PullOptions::default(), quiet())
        .await
        .unwrap();
    assert_eq!(report.digest, image.digest);
    assert_eq!(report.downloaded, 4);
    assert_eq!(
        pulled.resolve("v1").await.unwrap().map(|d| d.digest),
        Some(image.digest.clone())
    );
    let source_files: Vec<_> = blob_files(source.root())
        .into_iter()
        .filter(|(name, _)| blob_files(pulled.root()).iter().any(|(n, _)| n == name))
        .collect();
    assert_eq!(
        blob_files(pulled.root()).len(),
        5,
        "config, 3 layers and the manifest"
    );
    assert_eq!(
        blob_files(pulled.root()),
        source_files,
        "pulled bytes differ"
    );

    // Pulling into a store that holds every blob downloads none.
    let before = blob_downloads(&registry, "berth/app");
    let full = client
        .pull(&target, &pulled, "v1", &PullOptions::default(), quiet())
        .await
        .unwrap();
    assert_eq!((full.downloaded, full.present), (0, 4), "{full:?}");
    assert_eq!(
        blob_downloads(&registry, "berth/app"),
        before,
        "a full store still downloaded blobs"
    );

    // A push to a second repository mounts instead of uploading.
    let other = parse(&format!("{}/berth/copy:v1", registry.host()));
    let options = PushOptions {
        mount_from: vec!["berth/app".into()],
    };
    let mounted = client
        .push(&source, "v1", &other, &options, quiet())
        .await
        .unwrap();
    assert_eq!((mounted.mounted, mounted.uploaded), (4, 0), "{mounted:?}");
    assert_eq!(blob_uploads(&registry, "berth/copy"), 0);

    // A client with a blob location cache file remembers where a pull found
    // the blobs; a later client (another process) mounts from there unasked.
    let cache = dir.path().join("cache/blob-locations.json");
    let with_cache = || {
        client_with(ClientOptions {
            credentials: Credentials::Fixed(Credential::Anonymous),
            blob_location_cache: Some(cache.clone()),
            ..ClientOptions::default()
        })
    };
    let cached = OciLayout::create(dir.path().join("cached")).await.unwrap();
    with_cache()
        .pull(&target, &cached, "v1", &PullOptions::default(), quiet())
        .await
        .unwrap();
    let remembered = parse(&format!("{}/berth/remembered:v1", registry.host()));
    let report = with_cache()
        .push(&cached, "v1", &remembered, &PushOptions::default(), quiet())
        .await
        .unwrap();
    assert_eq!((report.mounted, report.uploaded), (4, 0), "{report:?}");
    assert_eq!(blob_uploads(&registry, "berth/remembered"), 0);

    // Mounting from a repository that lacks the blobs: the registry answers
    // 202 with an upload session, and the client uploads through it.
    let fallback = parse(&format!("{}/berth/fallback:v2", registry.host()));
    let options = PushOptions {
        mount_from: vec!["berth/empty".into()],
    };
    let uploaded = client
        .push(&source, "v2", &fallback, &options, quiet())
        .await
        .unwrap();
    assert_eq!(
        (uploaded.mounted, uploaded.uploaded),
        (0, 3),
        "{uploaded:?}"
    );
    assert_eq!(blob_uploads(&registry, "berth/fallback"), 3);

    // Blob deletion.
    let layer = Digest::of(&random_bytes(3, 1000));
    assert!(client.head_blob(&other, &layer).await.unwrap().is_some());
    client.delete_blob(&other, &layer).await.unwrap();
    assert!(client.head_blob(&other, &layer).await.unwrap().is_none());

    // Tags, referrers fallback and deletion.
    let mut tags = client.list_tags(&target).await.unwrap();
    tags.sort();
    assert_eq!(tags, ["v1", "v2"]);
    let referrers = client
        .referrers(&target, &image.digest, None)
        .await
        .unwrap();
    assert!(referrers.manifests.is_empty());
    let deleted = client.delete_manifest(&v2).await.unwrap();
    assert!(
        client
            .head_manifest(&v2.clone_with_digest(deleted.to_string()))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_upload_and_many_tags_paginate() {
    let registry = TestRegistry::start();
    let dir = tempfile::tempdir().unwrap();
    let source = OciLayout::create(dir.path()).await.unwrap();
    make_image(&source, "big", &[random_bytes(9, 3_000_000)]).await;
    let client = client_with(ClientOptions {
        credentials: Credentials::Fixed(Credential::Anonymous),
        monolithic_limit: 1024,
        chunk_size: Some(1024 * 1024),
        ..ClientOptions::default()
    });
    let target = parse(&format!("{}/chunked/app:big", registry.host()));
    client
        .push(&source, "big", &target, &PushOptions::default(), quiet())
        .await
        .unwrap();
    // 3 MB in 1 MiB chunks: three PATCHes for the layer.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        registry.count_requests("PATCH", "/v2/chunked/app/blobs/uploads/"),
        3
    );
    let pulled = OciLayout::create(dir.path().join("back")).await.unwrap();
    client
        .pull(&target, &pulled, "big", &PullOptions::default(), quiet())
        .await
        .unwrap();

    // The client asks for pages of 2 and would follow `Link`; Debian's
    // registry (distribution 2.8) ignores `n` for tags and answers in one page,
    // so this checks the request is accepted and every tag comes back. `Link`
    // parsing is unit-tested in the client.
    let streamed = client_with(ClientOptions {
        credentials: Credentials::Fixed(Credential::Anonymous),
        monolithic_limit: 1024,
        tag_page_size: 2,
        ..ClientOptions::default()
    });
    // Above the monolithic limit without a chunk size: one streamed PATCH.
    let streamed_target = parse(&format!("{}/streamed/app:big", registry.host()));
    let report = streamed
        .push(
            &source,
            "big",
            &streamed_target,
            &PushOptions::default(),
            quiet(),
        )
        .await
        .unwrap();
    assert_eq!(report.uploaded, 2, "{report:?}");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        registry.count_requests("PATCH", "/v2/streamed/app/blobs/uploads/"),
        1
    );
    let streamed_back = OciLayout::create(dir.path().join("streamed"))
        .await
        .unwrap();
    streamed
        .pull(
            &streamed_target,
            &streamed_back,
            "big",
            &PullOptions::default(),
            quiet(),
        )
        .await
        .unwrap();
    assert_eq!(blob_files(streamed_back.root()), blob_files(source.root()));

    let mut wanted = vec!["big".to_owned()];
    for i in 0..3 {
        let tag = format!("t{i}");
        let reference = parse(&format!("{}/chunked/app:{tag}", registry.host()));
        streamed
            .push(&source, "big", &reference, &PushOptions::default(), quiet())
            .await
            .unwrap();
        wanted.push(tag);
    }
    let mut tags = streamed.list_tags(&target).await.unwrap();
    tags.sort();
    assert_eq!(tags, wanted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn htpasswd_basic_auth() {
    let dir = tempfile::tempdir().unwrap();
    let registry = TestRegistry::start_with(Options {
        auth: Auth::Htpasswd {
            path: htpasswd_file(dir.path(), "berth", "s3cret"),
        },
    });
    let source = OciLayout::create(dir.path().join("layout")).await.unwrap();
    let image = make_image(&source, "v1", &[random_bytes(5, 50_000)]).await;
    let target = parse(&format!("{}/private/app:v1", registry.host()));

    let anonymous = client()
        .push(&source, "v1", &target, &PushOptions::default(), quiet())
        .await;
    assert!(
        matches!(anonymous, Err(Error::Unauthorized { .. })),
        "{anonymous:?}"
    );
    let wrong = client_with(ClientOptions {
        credentials: basic("berth", "wrong"),
        ..ClientOptions::default()
    });
    let err = wrong
        .push(&source, "v1", &target, &PushOptions::default(), quiet())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err:?}");
    assert!(err.to_string().contains(&registry.host()), "{err}");

    // Credentials from a Docker config.json, as `docker login` writes them.
    let config = dir.path().join("config.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"auths":{{"{}":{{"auth":"YmVydGg6czNjcmV0"}}}}}}"#,
            registry.host()
        ),
    )
    .unwrap();
    let right = client_with(ClientOptions {
        credentials: Credentials::FromFile(config),
        ..ClientOptions::default()
    });
    let pushed = right
        .push(&source, "v1", &target, &PushOptions::default(), quiet())
        .await
        .unwrap();
    assert_eq!(pushed.digest, image.digest);
    let pulled = OciLayout::create(dir.path().join("pulled")).await.unwrap();
    right
        .pull(&target, &pulled, "v1", &PullOptions::default(), quiet())
        .await
        .unwrap();
    assert_eq!(blob_files(pulled.root()).len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_auth_with_scoped_reused_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = token_server::start(dir.path(), "berth", "s3cret").await;
    let registry = TestRegistry::start_with(Options {
        auth: Auth::Token {
            realm: tokens.realm.clone(),
            service: token_server::SERVICE.into(),
            issuer: token_server::ISSUER.into(),
            root_cert_bundle: tokens.cert_bundle.clone(),
        },
    });
    let source = OciLayout::create(dir.path().join("layout")).await.unwrap();
    let layers: Vec<Vec<u8>> = (0..4).map(|i| random_bytes(20 + i, 40_000)).collect();
    let image = make_image(&source, "v1", &layers).await;
    let target = parse(&format!("{}/tokens/app:v1", registry.host()));

    let wrong = client_with(ClientOptions {
        credentials: basic("berth", "nope"),
        ..ClientOptions::default()
    });
    let err = wrong
        .push(&source, "v1", &target, &PushOptions::default(), quiet())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err:?}");
    assert!(err.to_string().contains("token server"), "{err}");

    let right = client_with(ClientOptions {
        credentials: basic("berth", "s3cret"),
        ..ClientOptions::default()
    });
    let pushed = right
        .push(&source, "v1", &target, &PushOptions::default(), quiet())
        .await
        .unwrap();
    assert_eq!(
        (pushed.uploaded, pushed.digest.clone()),
        (5, image.digest.clone())
    );
    // Tokens are reused across the push's many requests: one for pull (the
    // HEAD of the manifest) and one for pull,push.
    let issued = tokens.issued.load(std::sync::atomic::Ordering::SeqCst);
    assert!(issued <= 3, "{issued} tokens were fetched for one push");

    // A mount asks for pull on the source repository too.
    let other = parse(&format!("{}/tokens/copy:v1", registry.host()));
    let options = PushOptions {
        mount_from: vec!["tokens/app".into()],
    };
    let mounted = right
        .push(&source, "v1", &other, &options, quiet())
        .await
        .unwrap();
    assert_eq!(mounted.mounted, 5, "{mounted:?}");

    let pulled = OciLayout::create(dir.path().join("pulled")).await.unwrap();
    let report = right
        .pull(&other, &pulled, "v1", &PullOptions::default(), quiet())
        .await
        .unwrap();
    assert_eq!(report.digest, image.digest);
    assert_eq!(blob_files(pulled.root()).len(), 6);

    // An identity token is exchanged with a refresh-token grant.
    let identity = |token: &str| {
        client_with(ClientOptions {
            credentials: Credentials::Fixed(Credential::IdentityToken(token.into())),
            ..ClientOptions::default()
        })
    };
    let fetched = identity(token_server::REFRESH_TOKEN)
        .get_manifest(&other)
        .await
        .unwrap();
    assert_eq!(fetched.digest, image.digest);
    let err = identity("stale").get_manifest(&other).await.unwrap_err();
    assert!(matches!(err, Error::Unauthorized { .. }), "{err:?}");
}

/// Writes a Docker manifest list of two schema2 images (linux/amd64 and
/// linux/arm64/v8) under `tag`; returns (list, amd64, arm64) descriptors.
async fn make_docker_list(layout: &OciLayout, tag: &str) -> (Descriptor, Descriptor, Descriptor) {
    const SCHEMA2: &str = "application/vnd.docker.distribution.manifest.v2+json";
    const LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    let mut entries = Vec::new();
    for (seed, arch, variant) in [(50u64, "amd64", None), (51, "arm64", Some("v8"))] {
        let layer = random_bytes(seed, 20_000);
        let layer_digest = layout.put_blob(&layer).await.unwrap();
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": arch, "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [layer_digest.to_string()]},
        }))
        .unwrap();
        let config_digest = layout.put_blob(&config).await.unwrap();
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": SCHEMA2,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": config.len(), "digest": config_digest},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": layer.len(), "digest": layer_digest}],
        }))
        .unwrap();
        let digest = layout.put_blob(&manifest).await.unwrap();
        let mut descriptor = Descriptor::new(SCHEMA2, digest, manifest.len() as u64);
        descriptor.platform = Some(berth_registry_client::manifest::Platform {
            unknown: Default::default(),
            os: "linux".into(),
            architecture: arch.into(),
            variant: variant.map(str::to_owned),
            os_version: None,
        });
        entries.push(descriptor);
    }
    let list = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": LIST, "manifests": entries,
    }))
    .unwrap();
    let digest = layout.put_blob(&list).await.unwrap();
    let descriptor = Descriptor::new(LIST, digest, list.len() as u64);
    layout.tag(tag, &descriptor).await.unwrap();
    (descriptor, entries[0].clone(), entries[1].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifest_lists_push_whole_and_pull_one_platform() {
    use berth_registry_client::manifest::Platform;
    let registry = TestRegistry::start();
    let dir = tempfile::tempdir().unwrap();
    let source = OciLayout::create(dir.path().join("source")).await.unwrap();
    let (list, amd64, arm64) = make_docker_list(&source, "multi").await;
    let target = parse(&format!("{}/multi/app:latest", registry.host()));
    let pushed = client()
        .push(&source, "multi", &target, &PushOptions::default(), quiet())
        .await
        .unwrap();
    assert_eq!(
        (pushed.digest.clone(), pushed.uploaded),
        (list.digest.clone(), 4)
    );
    let remote = client().get_manifest(&target).await.unwrap();
    assert_eq!(
        remote.digest, list.digest,
        "the list's bytes changed on the way"
    );
    assert_eq!(remote.media_type, list.media_type);

    // Pulling picks one platform and names its manifest.
    let arm = OciLayout::create(dir.path().join("arm")).await.unwrap();
    let options = PullOptions {
        platform: Platform::parse("linux/arm64"),
        all_platforms: false,
    };
    let report = client()
        .pull(&target, &arm, "app", &options, quiet())
        .await
        .unwrap();
    assert_eq!(
        (report.digest.clone(), report.downloaded),
        (arm64.digest.clone(), 2)
    );
    assert!(!arm.has_blob(&amd64.digest).await.unwrap());

    let all = OciLayout::create(dir.path().join("all")).await.unwrap();
    let options = PullOptions {
        platform: None,
        all_platforms: true,
    };
    let report = client()
        .pull(&target, &all, "app", &options, quiet())
        .await
        .unwrap();
    assert_eq!((report.digest, report.downloaded), (list.digest, 4));
    assert_eq!(blob_files(all.root()), blob_files(source.root()));

    let options = PullOptions {
        platform: Platform::parse("linux/s390x"),
        all_platforms: false,
    };
    let err = client()
        .pull(&target, &all, "x", &options, quiet())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoMatchingPlatform { .. }), "{err:?}");
    assert!(err.to_string().contains("linux/arm64/v8"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_resume_and_corruption_through_a_fault_proxy() {
    use fault_proxy::{Fault, Rule};
    let registry = TestRegistry::start();
    let dir = tempfile::tempdir().unwrap();
    let source = OciLayout::create(dir.path().join("source")).await.unwrap();
    let big = random_bytes(30, 4_000_000);
    let big_digest = Digest::of(&big);
    let small = random_bytes(31, 10_000);
    let small_digest = Digest::of(&small);
    let image = make_image(&source, "v1", &[big.clone(), small]).await;
    let direct = parse(&format!("{}/faults/app:v1", registry.host()));
    client()
        .push(&source, "v1", &direct, &PushOptions::default(), quiet())
        .await
        .unwrap();

    // 429 with Retry-After on the manifest, 500s on a blob, a connection cut
    // halfway through the big blob: the pull succeeds.
    let rules = vec![
        Rule {
            method: "GET",
            path_part: "/manifests/v1".into(),
            times: 1,
            fault: Fault::Status(429, Some(1)),
        },
        Rule {
            method: "GET",
            path_part: format!("/blobs/{small_digest}"),
            times: 2,
            fault: Fault::Status(500, None),
        },
        Rule {
            method: "GET",
            path_part: format!("/blobs/{big_digest}"),
            times: 1,
            fault: Fault::CutAfter(1_500_000),
        },
    ];
    let proxy = fault_proxy::start(registry.url(), rules).await;
    let via_proxy = parse(&format!("{}/faults/app:v1", proxy.addr));
    let pulled = OciLayout::create(dir.path().join("pulled")).await.unwrap();
    let (sink, events) = recorder();
    let started = Instant::now();
    let report = client()
        .pull(&via_proxy, &pulled, "v1", &PullOptions::default(), sink)
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After was not honoured"
    );
    assert_eq!(report.digest, image.digest);
    assert_eq!(std::fs::read(pulled.blob_path(&big_digest)).unwrap(), big);
    let seen = proxy.seen.lock().unwrap().clone();
    let big_requests: Vec<_> = seen
        .iter()
        .filter(|s| s.method == "GET" && s.path.contains(&big_digest.to_string()))
        .collect();
    assert_eq!(big_requests.len(), 2, "{big_requests:?}");
    assert_eq!(
        big_requests[1].range.as_deref(),
        Some("bytes=1500000-"),
        "{big_requests:?}"
    );
    assert_eq!(big_requests[1].status, 206);
    assert_eq!(
        big_requests[1].sent,
        4_000_000 - 1_500_000,
        "the resumed download fetched more than the rest"
    );
    let events = events.lock().unwrap().clone();
    assert!(events.iter().any(|e| matches!(
        e,
        Event::BlobResumed {
            offset: 1_500_000,
            ..
        }
    )));
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Event::Retrying { .. }))
            .count(),
        3
    );

    // A body that does not match its digest: a clear error, nothing kept.
    let rules = vec![Rule {
        method: "GET",
        path_part: format!("/blobs/{big_digest}"),
        times: 100,
        fault: Fault::Corrupt,
    }];
    let proxy = fault_proxy::start(registry.url(), rules).await;
    let via_proxy = parse(&format!("{}/faults/app:v1", proxy.addr));
    let fresh = OciLayout::create(dir.path().join("fresh")).await.unwrap();
    let err = client()
        .pull(&via_proxy, &fresh, "v1", &PullOptions::default(), quiet())
        .await
        .unwrap_err();
    assert!(err.to_string().contains(&big_digest.to_string()), "{err}");
    assert!(err.to_string().contains("does not match"), "{err}");
    assert!(
        !fresh.has_blob(&big_digest).await.unwrap(),
        "a corrupt blob was kept"
    );
    assert_eq!(
        ingest_leftovers(fresh.root()),
        0,
        "partial files were left behind"
    );
    assert!(
        fresh.resolve("v1").await.unwrap().is_none(),
        "an incomplete image was named"
    );

    // Persistent 503s end in an error naming the status, after bounded retries.
    let rules = vec![Rule {
        method: "HEAD",
        path_part: "/manifests/".into(),
        times: 100,
        fault: Fault::Status(503, None),
    }];
    let proxy = fault_proxy::start(registry.url(), rules).await;
    let via_proxy = parse(&format!("{}/faults/app:v1", proxy.addr));
    let err = client()
        .push(&source, "v1", &via_proxy, &PushOptions::default(), quiet())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Status {
                status: 503,
                attempts: 5,
                ..
            }
        ),
        "{err:?}"
    );

    // A manifest larger than the limit is refused.
    let rules = vec![Rule {
        method: "GET",
        path_part: "/manifests/".into(),
        times: 1,
        fault: Fault::Huge(5 * 1024 * 1024),
    }];
    let proxy = fault_proxy::start(registry.url(), rules).await;
    let via_proxy = parse(&format!("{}/faults/app:v1", proxy.addr));
    let err = client().get_manifest(&via_proxy).await.unwrap_err();
    assert!(matches!(err, Error::ManifestTooLarge { .. }), "{err:?}");
    assert!(err.to_string().contains("faults/app:v1"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_clear_errors() {
    let err = reference::parse("Bad/Name:tag").unwrap_err();
    assert!(err.to_string().contains("'Bad/Name:tag'"), "{err}");
    assert!(reference::parse("app@sha256:1234").is_err());

    let registry = TestRegistry::start();
    let dir = tempfile::tempdir().unwrap();
    let store = OciLayout::create(dir.path()).await.unwrap();
    let missing_tag = parse(&format!("{}/nobody/here:none", registry.host()));
    let err = client()
        .pull(&missing_tag, &store, "x", &PullOptions::default(), quiet())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("nobody/here:none"), "{err}");
    let err = client().list_tags(&missing_tag).await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");

    let err = client()
        .push(
            &store,
            "absent",
            &missing_tag,
            &PushOptions::default(),
            quiet(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::LocalImageNotFound { .. }), "{err:?}");

    // Nothing listens on this port any more.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let nowhere = parse(&format!("{closed}/app:v1"));
    let quick = client_with(ClientOptions {
        max_attempts: 2,
        ..ClientOptions::default()
    });
    let err = quick
        .pull(&nowhere, &store, "x", &PullOptions::default(), quiet())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Unreachable { attempts: 2, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains(&closed.to_string()), "{err}");
}

fn skopeo() -> std::path::PathBuf {
    require::program("skopeo", "skopeo")
}

fn run(command: &mut Command) -> String {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interoperates_with_skopeo_both_ways() {
    let skopeo = skopeo();
    let registry = TestRegistry::start();
    let dir = tempfile::tempdir().unwrap();
    let source = OciLayout::create(dir.path().join("source")).await.unwrap();
    let image = make_image(
        &source,
        "v1",
        &[random_bytes(40, 200_000), random_bytes(41, 5_000)],
    )
    .await;

    // skopeo pushes the layout; berth pulls it identically.
    let by_skopeo = format!("{}/skopeo/pushed:v1", registry.host());
    run(Command::new(&skopeo)
        .args(["copy", "--dest-tls-verify=false", "--preserve-digests"])
        .arg(format!("oci:{}:v1", source.root().display()))
        .arg(format!("docker://{by_skopeo}")));
    let pulled = OciLayout::create(dir.path().join("pulled")).await.unwrap();
    let report = client()
        .pull(
            &parse(&by_skopeo),
            &pulled,
            "v1",
            &PullOptions::default(),
            quiet(),
        )
        .await
        .unwrap();
    assert_eq!(report.digest, image.digest);
    assert_eq!(blob_files(pulled.root()), blob_files(source.root()));

    // berth pushes; skopeo inspects and copies it.
    let by_berth = format!("{}/berth/pushed:v1", registry.host());
    let pushed = client()
        .push(
            &source,
            "v1",
            &parse(&by_berth),
            &PushOptions::default(),
            quiet(),
        )
        .await
        .unwrap();
    let inspected: serde_json::Value = serde_json::from_str(&run(Command::new(&skopeo)
        .args(["inspect", "--tls-verify=false"])
        .arg(format!("docker://{by_berth}"))))
    .unwrap();
    assert_eq!(
        inspected["Digest"].as_str(),
        Some(pushed.digest.to_string().as_str())
    );
    assert_eq!(inspected["Layers"].as_array().map(Vec::len), Some(2));
    let copied = dir.path().join("copied");
    run(Command::new(&skopeo)
        .args(["copy", "--src-tls-verify=false", "--preserve-digests"])
        .arg(format!("docker://{by_berth}"))
        .arg(format!("oci:{}:v1", copied.display())));
    let copied = OciLayout::open(&copied).await.unwrap();
    assert_eq!(
        copied.resolve("v1").await.unwrap().map(|d| d.digest),
        Some(image.digest)
    );
    assert_eq!(blob_files(copied.root()), blob_files(source.root()));
}
