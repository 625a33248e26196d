//! The image lifecycle across berth's parts and its peers, end to end against
//! a local docker-registry: build, push, remove, pull and run give back the
//! same image and the same output; and berth runs what skopeo pushed.
#![allow(clippy::unwrap_used)]

mod build_common;

use berth_e2e::registry::TestRegistry;
use berth_e2e::{bins, require};
use build_common::BuildEnv;
use std::path::Path;
use std::process::{Command, Output};

/// Runs berth with `args` on the store at `root` and returns its output.
fn berth(root: &Path, args: &[&str]) -> Output {
    Command::new(bins::berth())
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .unwrap()
}

/// Runs berth and fails the test unless it succeeds; returns stdout.
fn berth_ok(root: &Path, args: &[&str]) -> String {
    let out = berth(root, args);
    assert!(
        out.status.success(),
        "berth {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn build_push_rmi_pull_run_gives_back_the_same_image_and_output() {
    let env = BuildEnv::new();
    let registry = TestRegistry::start();
    env.write(
        "Dockerfile",
        "FROM busybox\nRUN echo built-by-berth > /msg\nCMD [\"cat\", \"/msg\"]\n",
    );
    let name = format!("{}/e2e/app:1", registry.host());
    let (built, _) = env.build_ok(&["-t", &name]);
    let root = env.store.path();

    let pushed = berth_ok(root, &["push", "--quiet", &name]);
    assert_eq!(pushed.trim(), built, "push reports the built manifest");

    berth_ok(root, &["rmi", &name]);
    let gone = berth(root, &["inspect", &name]);
    assert!(!gone.status.success(), "the image is gone after rmi");

    let manifest_gets = registry.count_requests("GET", "/v2/e2e/app/manifests/");
    let pulled = berth_ok(root, &["pull", "--quiet", &name]);
    assert_eq!(pulled.trim(), built, "pull gives back the same manifest");
    assert!(
        registry.count_requests("GET", "/v2/e2e/app/manifests/") > manifest_gets,
        "the pull fetched the manifest from the registry"
    );

    let output = berth_ok(root, &["run", "--rm", &name]);
    assert_eq!(output, "built-by-berth\n");
}

#[test]
fn berth_pulls_and_runs_what_skopeo_pushed() {
    let skopeo = require::program("skopeo", "skopeo");
    let env = BuildEnv::new();
    let registry = TestRegistry::start();
    env.write(
        "Dockerfile",
        "FROM busybox\nRUN echo via-skopeo > /msg\nCMD [\"cat\", \"/msg\"]\n",
    );
    let layout = tempfile::tempdir().unwrap();
    let dest = layout.path().join("image");
    let (built, _) = env.build_ok(&[
        "-t",
        "app:1",
        "--output",
        &format!("type=oci,dest={}", dest.display()),
    ]);
    let name = format!("{}/e2e/from-skopeo:1", registry.host());
    let copy = Command::new(skopeo)
        .args(["copy", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:app:1", dest.display()))
        .arg(format!("docker://{name}"))
        .output()
        .unwrap();
    assert!(
        copy.status.success(),
        "skopeo copy failed:\n{}",
        String::from_utf8_lossy(&copy.stderr)
    );

    // A second machine: a store that has never seen the image or its base.
    let other = tempfile::tempdir().unwrap();
    let pulled = berth_ok(other.path(), &["pull", "--quiet", &name]);
    assert_eq!(pulled.trim(), built, "skopeo copies the manifest unchanged");
    let output = berth_ok(other.path(), &["run", "--rm", &name]);
    assert_eq!(output, "via-skopeo\n");
}
