//! The `cache` part of `cargo xtask bench lifecycle`: a CI-style rebuild
//! from a registry cache in an empty store, `berth build --cache-from`
//! against `buildah bud --layers --cache-from` (Debian's buildah, chroot
//! isolation, its own storage) on the same inputs.
//!
//! The inputs are the build benchmark's: a copy of Debian's `rust-src` tree
//! (about 37,000 files, 255 MB) as the context, and a Dockerfile with a
//! `COPY . /src` and four `RUN` steps on a busybox base. Each tool first
//! builds once and exports its cache to a local `docker-registry` (berth
//! with `--cache-to type=registry,…,mode=max`, buildah with `--cache-to`);
//! that is not timed. Then, per round and tool (the order alternates), a
//! fresh store holding only the base image:
//!
//! - unchanged: the same build with `--cache-from` (no RUN step may run);
//! - one-file: the same after one context file changed (the COPY and every
//!   RUN after it run again).
//!
//! It prints the medians and the berth/buildah ratios (target: unchanged at
//! most 0.3x), and how many steps each tool served from the cache.
//!
//! Options: `--rounds N` (default 3), `--context DIR` (default: the rust-src tree).

use crate::bench::inputs::{self, Options, median, timed};
use crate::bench::local_registry::LocalRegistry;
use crate::util::output;
use anyhow::{Context, bail};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const CASES: [&str; 2] = ["unchanged", "one-file"];
const DOCKERFILE: &str = "FROM localhost/busybox
COPY . /src
RUN find /src -type f | wc -l > /files
RUN du -s /src > /size
RUN md5sum /src/bench-changed.txt > /sum
RUN cat /files /size /sum > /summary
CMD [\"cat\", \"/summary\"]
";
/// The file the one-file case changes, which the bench adds to the context
/// (any context will do).
const CHANGED: &str = "bench-changed.txt";

/// The binaries, the inputs and the registry of one benchmark run.
struct Bench {
    berth: PathBuf,
    runtime: PathBuf,
    busybox_rootfs: PathBuf,
    /// The busybox base as an OCI archive, which buildah pulls from.
    busybox_archive: PathBuf,
    context: PathBuf,
    work: PathBuf,
    /// The registry both caches live in.
    registry: LocalRegistry,
}

/// Runs the benchmark.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let Options { rounds, source } = Options::parse(args, 3, true)?;
    let bench = prepare(&source)?;
    eprintln!("bench lifecycle cache: seeding both caches (not timed)");
    seed_berth(&bench)?;
    seed_buildah(&bench)?;

    let mut times: [[Vec<f64>; 2]; 2] = Default::default();
    let mut cached: [[usize; 2]; 2] = Default::default();
    for round in 0..rounds {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for tool in order {
            let results = if tool == 0 {
                berth_round(&bench, round)?
            } else {
                buildah_round(&bench, round)?
            };
            eprintln!(
                "round {}: {:7} unchanged {:.2}s ({} steps from the cache)  one-file {:.2}s ({} from the cache)",
                round + 1,
                ["berth", "buildah"][tool],
                results[0].0,
                results[0].1,
                results[1].0,
                results[1].1
            );
            for (case, (secs, hits)) in results.into_iter().enumerate() {
                times[tool][case].push(secs);
                cached[tool][case] = hits;
            }
        }
    }
    println!(
        "\nrebuild from a registry cache in an empty store: berth build --cache-from vs \
         buildah bud --layers --cache-from ({rounds} rounds, medians)"
    );
    println!(
        "{:10} {:>9} {:>9} {:>8}  {:>13}  target",
        "case", "berth", "buildah", "ratio", "cached b/h"
    );
    for (case, name) in CASES.iter().enumerate() {
        let berth = median(&mut times[0][case]);
        let buildah = median(&mut times[1][case]);
        println!(
            "{name:10} {berth:>8.3}s {buildah:>8.3}s {:>7.3}x  {:>6}/{:<6}  {}",
            berth / buildah,
            cached[0][case],
            cached[1][case],
            if case == 0 { "<= 0.3x" } else { "-" }
        );
    }
    Ok(())
}

fn prepare(source: &Path) -> anyhow::Result<Bench> {
    let inputs = inputs::prepare(
        "bench-lifecycle-cache",
        source,
        &["buildah", "busybox-static", "docker-registry"],
        DOCKERFILE,
    )?;
    let registry = LocalRegistry::start(&inputs.work.join("registry"))?;
    let bench = Bench {
        berth: inputs.bin.join("berth"),
        runtime: inputs.bin.join("berth-runtime"),
        busybox_rootfs: inputs.fixtures.join("busybox/rootfs"),
        busybox_archive: inputs.work.join("busybox-oci.tar"),
        context: inputs.context,
        work: inputs.work,
        registry,
    };
    // The base for buildah: the same busybox image, written out by berth.
    let store = bench.work.join("base-store");
    let base_context = bench.work.join("base-context");
    fs::create_dir_all(&base_context)?;
    fs::write(base_context.join("Dockerfile"), "FROM localhost/busybox\n")?;
    output(
        berth_in(&bench, &store)?
            .args(["-t", "localhost/busybox", "--output"])
            .arg(format!("type=oci,dest={}", bench.busybox_archive.display()))
            .arg(&base_context),
    )?;
    Ok(bench)
}

fn berth_cache(bench: &Bench) -> String {
    format!("{}/bench/berth-cache:main", bench.registry.host)
}

fn buildah_cache(bench: &Bench) -> String {
    format!("{}/bench/buildah-cache", bench.registry.host)
}

/// `berth build` in a fresh store at `store` holding only the base.
fn berth_in(bench: &Bench, store: &Path) -> anyhow::Result<Command> {
    if store.exists() {
        fs::remove_dir_all(store)?;
    }
    output(
        Command::new(&bench.berth)
            .arg("import")
            .arg("--root")
            .arg(store)
            .arg(&bench.busybox_rootfs)
            .args(["localhost/busybox", "--cmd", "sh"]),
    )?;
    let mut build = Command::new(&bench.berth);
    build
        .args(["build", "--progress", "plain", "--root"])
        .arg(store)
        .arg("--runtime")
        .arg(&bench.runtime);
    Ok(build)
}

/// berth's own count of cached steps, from its closing line.
fn berth_cached(text: &str) -> anyhow::Result<usize> {
    text.lines()
        .find_map(|l| l.strip_prefix("built "))
        .and_then(|l| l.split(", ").nth(1))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .with_context(|| format!("no step counts in berth's output:\n{text}"))
}

/// Changes the context file of the one-file case, or puts it back.
fn change_one_file(bench: &Bench, changed: bool) -> anyhow::Result<()> {
    let path = bench.context.join(CHANGED);
    let content = if changed {
        "a changed context file\n"
    } else {
        "a context file\n"
    };
    fs::write(&path, content).with_context(|| format!("writing {}", path.display()))
}

fn seed_berth(bench: &Bench) -> anyhow::Result<()> {
    change_one_file(bench, false)?;
    let store = bench.work.join("berth-seed");
    let (secs, text) = timed(
        berth_in(bench, &store)?
            .arg("--cache-to")
            .arg(format!("type=registry,ref={},mode=max", berth_cache(bench)))
            .arg(&bench.context),
    )?;
    eprintln!("berth seed build and export: {secs:.2}s");
    if !text.contains("exported the build cache") {
        bail!("berth did not export its cache:\n{text}");
    }
    fs::remove_dir_all(&store).ok();
    Ok(())
}

/// Runs both cases with a fresh store or storage at `work-dir/<tool>-<round>-<case>`;
/// `build` times one rebuild there and says how many steps it took from the cache.
fn round(
    bench: &Bench,
    tool: &str,
    round: usize,
    build: impl Fn(&Path, usize) -> anyhow::Result<(f64, usize)>,
) -> anyhow::Result<[(f64, usize); 2]> {
    let mut results = [(0.0, 0); 2];
    for (case, result) in results.iter_mut().enumerate() {
        change_one_file(bench, case == 1)?;
        // Each timed build starts without the previous one's dirty pages
        // (buildah's storage, removed stores) still being written back.
        output(&mut Command::new("sync"))?;
        *result = build(&bench.work.join(format!("{tool}-{round}-{case}")), case)?;
    }
    change_one_file(bench, false)?;
    Ok(results)
}

fn berth_round(bench: &Bench, number: usize) -> anyhow::Result<[(f64, usize); 2]> {
    round(bench, "berth", number, |store, case| {
        let (secs, text) = timed(
            berth_in(bench, store)?
                .args(["-t", "bench", "--cache-from"])
                .arg(format!("type=registry,ref={}", berth_cache(bench)))
                .arg(&bench.context),
        )?;
        if case == 0 && !text.contains("(0 steps run") {
            bail!("berth ran steps in a rebuild from an unchanged cache:\n{text}");
        }
        fs::remove_dir_all(store).ok();
        Ok((secs, berth_cached(&text)?))
    })
}

/// buildah with storage of its own under `root`.
fn buildah(root: &Path) -> Command {
    let mut c = Command::new("buildah");
    c.arg("--root")
        .arg(root.join("storage"))
        .arg("--runroot")
        .arg(root.join("run"))
        .args(["--storage-driver", "overlay"]);
    c
}

/// `buildah bud` in fresh storage at `root` holding only the base.
fn buildah_in(bench: &Bench, root: &Path) -> anyhow::Result<Command> {
    remove_buildah(root);
    output(buildah(root).args(["pull", "--quiet"]).arg(format!(
        "oci-archive:{}:localhost/busybox:latest",
        bench.busybox_archive.display()
    )))?;
    let mut bud = buildah(root);
    bud.args([
        "bud",
        "--layers",
        "--isolation",
        "chroot",
        "--pull=never",
        // The local registry speaks plain HTTP.
        "--tls-verify=false",
        "-f",
    ])
    .arg(bench.context.join("Dockerfile"));
    Ok(bud)
}

fn remove_buildah(root: &Path) {
    let _ = buildah(root)
        .args(["rm", "--all"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let _ = Command::new("umount")
        .arg("-R")
        .arg(root.join("storage/overlay"))
        .stderr(Stdio::null())
        .status();
    let _ = fs::remove_dir_all(root);
}

fn seed_buildah(bench: &Bench) -> anyhow::Result<()> {
    change_one_file(bench, false)?;
    let root = bench.work.join("buildah-seed");
    let (secs, _) = timed(
        buildah_in(bench, &root)?
            .arg("--cache-to")
            .arg(buildah_cache(bench))
            .arg(&bench.context),
    )?;
    eprintln!("buildah seed build and export: {secs:.2}s");
    remove_buildah(&root);
    Ok(())
}

/// Steps buildah took from a cache: "Using cache" lines of its output.
fn buildah_cached(text: &str) -> usize {
    text.lines().filter(|l| l.contains("Using cache")).count()
}

fn buildah_round(bench: &Bench, number: usize) -> anyhow::Result<[(f64, usize); 2]> {
    round(bench, "buildah", number, |root, _| {
        let (secs, text) = timed(
            buildah_in(bench, root)?
                .args(["-t", "bench", "--cache-from"])
                .arg(buildah_cache(bench))
                .arg(&bench.context),
        )?;
        remove_buildah(root);
        Ok((secs, buildah_cached(&text)))
    })
}
