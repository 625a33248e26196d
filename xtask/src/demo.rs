//! `cargo xtask demo`: berth's main job on a fresh machine, with embedded
//! defaults. It prepares a busybox base image from Debian's `busybox-static`,
//! builds the multi-stage example under `examples/demo` (with `.dockerignore`,
//! RUN and `COPY --from`), runs the result with berth-runtime, and builds it
//! again to show every step come from the cache.

use crate::util::{is_root, run, target_dir, workspace_root};
use crate::{deps, fixtures};
use anyhow::{Context, bail};
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// The Debian packages the demo uses: the busybox base and umoci, which
/// unpacks the built image into a bundle for berth-runtime.
const PACKAGES: &[&str] = &["busybox-static", "umoci"];

/// Runs the demo.
pub fn run_demo() -> anyhow::Result<()> {
    if !is_root() {
        bail!(
            "the demo needs root: RUN steps mount overlayfs and start containers\n\
             hint: run 'sudo cargo xtask demo'"
        );
    }
    deps::ensure(PACKAGES)?;
    let fixtures = fixtures::build()?;
    let root = workspace_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(&cargo).current_dir(&root).args([
        "build",
        "--quiet",
        "--workspace",
        "--bins",
    ]))?;
    let bin_dir = target_dir().join("debug");
    let berth = bin_dir.join("berth");
    let runtime = bin_dir.join("berth-runtime");

    // A fresh store each time, so the first build is a cold one.
    let demo = target_dir().join("demo");
    if demo.exists() {
        fs::remove_dir_all(&demo).with_context(|| format!("removing {}", demo.display()))?;
    }
    let store = demo.join("store");
    fs::create_dir_all(&store)?;
    let example = root.join("examples/demo");

    step("1/4", "a busybox base image from Debian's busybox-static");
    run(Command::new(&berth)
        .arg("import")
        .arg("--root")
        .arg(&store)
        .arg(fixtures.join("busybox/rootfs"))
        .args(["busybox", "--cmd", "sh"]))?;

    step("2/4", "berth build -t berth-demo examples/demo (cold)");
    let oci = demo.join("oci");
    let cold = build(
        &berth,
        &store,
        &example,
        &[
            "--output".into(),
            format!("type=oci,dest={}", oci.display()),
        ],
    )?;

    step("3/4", "run the image with berth-runtime");
    let bundle = demo.join("bundle");
    run(Command::new("umoci")
        .args(["--log", "error", "unpack", "--image"])
        .arg(format!("{}:berth-demo:latest", oci.display()))
        .arg(&bundle))?;
    run(Command::new(&runtime)
        .arg("--root")
        .arg(demo.join("runtime-state"))
        .args(["run", "--bundle"])
        .arg(&bundle)
        .arg(format!("berth-demo-{}", std::process::id())))?;

    step("4/4", "build again: every step comes from the cache");
    let warm = build(&berth, &store, &example, &[])?;
    println!(
        "\ncold build {:.2}s, cached rebuild {:.2}s (store: {})",
        cold,
        warm,
        store.display()
    );
    Ok(())
}

fn step(n: &str, what: &str) {
    println!("\n==> [{n}] {what}");
}

/// Builds the example and returns the wall time in seconds.
fn build(berth: &Path, store: &Path, example: &Path, extra: &[String]) -> anyhow::Result<f64> {
    let started = Instant::now();
    run(Command::new(berth)
        .arg("build")
        .arg("--root")
        .arg(store)
        .args(["-t", "berth-demo"])
        .args(extra)
        .arg(example))?;
    Ok(started.elapsed().as_secs_f64())
}
