//! Builds and registries: `--push` sends the image to a registry, and a FROM
//! of an image the local store lacks pulls it through the registry client,
//! downloading only the blobs the store is missing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod build_common;

use berth_e2e::registry::TestRegistry;
use build_common::BuildEnv;

#[test]
fn push_then_build_from_the_registry_pulls_only_missing_blobs() {
    let registry = TestRegistry::start();
    let image = format!("{}/e2e/app:1", registry.host());

    // Store A builds and pushes an image on top of busybox.
    let a = BuildEnv::new();
    a.write(
        "Dockerfile",
        "FROM busybox\nRUN echo from-the-registry > /p\n",
    );
    let (_, progress) = a.build_ok(&["-t", &image, "--push"]);
    assert!(progress.contains("pushed"), "{progress}");
    assert_eq!(registry.count_requests("PUT", "/v2/e2e/app/manifests/1"), 1);

    // Store B has busybox (the same layer: imports are reproducible) but not
    // the app: building FROM the app pulls the manifest, the config and the
    // one layer B lacks.
    let b = BuildEnv::new();
    b.write(
        "Dockerfile",
        &format!("FROM {image}\nRUN cat /p > /q\nCMD [\"cat\", \"/q\"]\n"),
    );
    let before = registry.count_requests("GET", "/v2/e2e/app/blobs/");
    b.build_ok(&["-t", "pulled"]);
    let fetched = registry.count_requests("GET", "/v2/e2e/app/blobs/") - before;
    assert_eq!(
        fetched,
        2,
        "config and the app layer only:\n{}",
        registry.log()
    );
    assert_eq!(b.run_image("pulled:latest"), "from-the-registry\n");

    // A second build uses the pulled base from the store: nothing is fetched.
    b.write("Dockerfile", &format!("FROM {image}\nRUN echo again\n"));
    b.build_ok(&[]);
    assert_eq!(
        registry.count_requests("GET", "/v2/e2e/app/blobs/") - before,
        2
    );
}
