//! The `transfer` part of `cargo xtask bench lifecycle`: `berth push` and
//! `berth pull` against `skopeo copy` (Debian's skopeo) through a local
//! docker-registry, side by side.
//!
//! The image is the build benchmark's: its Dockerfile on a copy of Debian's
//! `rust-src` tree (about 37,000 files, 255 MB), built with `--target build`
//! so that the image carries the `COPY . /src` layer (busybox, the source
//! layer and the RUN's layer) rather than only the small final stage. Each
//! round (default 5, the tool order alternating) times:
//!
//! - push: the image from berth's store to a fresh registry; berth with
//!   `berth push`, skopeo with `skopeo copy oci:STORE:NAME docker://…` from
//!   the same OCI layout (berth's store directory);
//! - pull: the image from a registry into an empty store; berth with
//!   `berth pull` into a fresh `--root`, skopeo with `skopeo copy docker://…
//!   oci:DIR:NAME` into a fresh layout.
//!
//! Every push goes to a registry started with empty storage for it, so no
//! blob is already there or mountable. It prints the medians and the
//! berth/skopeo ratios (target: at most 0.7x both ways).
//!
//! Options: `--rounds N` (default 5), `--context DIR` (default: the rust-src tree).

use crate::bench::inputs::{self, Options, median};
use crate::bench::local_registry::LocalRegistry;
use crate::util::output;
use anyhow::Context;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The build benchmark's Dockerfile (xtask/src/bench/build.rs).
const DOCKERFILE: &str = "FROM localhost/busybox AS build
COPY . /src
RUN find /src -type f | wc -l > /summary && du -s /src >> /summary && md5sum /src/README.md >> /summary
FROM localhost/busybox
COPY --from=build /summary /summary
CMD [\"cat\", \"/summary\"]
";
/// The image's name in berth's store.
const IMAGE: &str = "localhost/bench-transfer:latest";

/// The binaries and inputs of one benchmark run.
struct Bench {
    berth: PathBuf,
    skopeo: PathBuf,
    /// berth's store holding the image; its `oci/` is what skopeo reads.
    store: PathBuf,
    work: PathBuf,
    /// The image's size in bytes (manifest, config and layers).
    bytes: u64,
}

/// Runs the benchmark.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let Options { rounds, source } = Options::parse(args, 5, true)?;
    let mut bench = prepare(&source)?;
    // The registry pulls read from: it holds the image, pushed once by berth.
    let source_registry = LocalRegistry::start(&bench.work.join("registry-source"))?;
    let pull_ref = format!("{}/bench/transfer:1", source_registry.host);
    output(
        Command::new(&bench.berth)
            .arg("--root")
            .arg(&bench.store)
            .args(["push", "--quiet", IMAGE, &pull_ref]),
    )?;
    // The image's size: what a pull into an empty store writes.
    let sizing = bench.work.join("sizing");
    output(
        Command::new(&bench.berth)
            .arg("--root")
            .arg(&sizing)
            .args(["pull", "--quiet", &pull_ref]),
    )?;
    bench.bytes = blob_bytes(&sizing)?;
    fs::remove_dir_all(&sizing)?;
    eprintln!(
        "bench lifecycle transfer: image of {:.0} MB ({})",
        bench.bytes as f64 / 1e6,
        source.display()
    );

    let mut times: [[Vec<f64>; 2]; 2] = Default::default();
    for round in 0..rounds {
        // Alternate which tool goes first, so neither always meets a warm cache.
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for tool in order {
            let push = push_once(&bench, tool, round)?;
            let pull = pull_once(&bench, tool, round, &pull_ref)?;
            eprintln!(
                "round {}: {:6} push {push:.2}s  pull {pull:.2}s",
                round + 1,
                TOOLS[tool]
            );
            times[0][tool].push(push);
            times[1][tool].push(pull);
        }
    }
    println!(
        "\nberth push/pull vs skopeo copy ({:.0} MB image, local docker-registry, {rounds} rounds, medians)",
        bench.bytes as f64 / 1e6
    );
    println!(
        "{:6} {:>9} {:>9} {:>8}  target",
        "case", "berth", "skopeo", "ratio"
    );
    for (case, name) in ["push", "pull"].iter().enumerate() {
        let berth = median(&mut times[case][0]);
        let skopeo = median(&mut times[case][1]);
        println!(
            "{name:6} {berth:>8.3}s {skopeo:>8.3}s {:>7.3}x  <= 0.7x",
            berth / skopeo
        );
    }
    Ok(())
}

const TOOLS: [&str; 2] = ["berth", "skopeo"];

fn prepare(source: &Path) -> anyhow::Result<Bench> {
    let inputs::Inputs {
        bin,
        fixtures,
        work,
        context,
    } = inputs::prepare(
        "bench-lifecycle-transfer",
        source,
        &["busybox-static", "docker-registry", "skopeo"],
        DOCKERFILE,
    )?;
    let berth = bin.join("berth");
    let store = work.join("store");
    output(
        Command::new(&berth)
            .arg("import")
            .arg("--root")
            .arg(&store)
            .arg(fixtures.join("busybox/rootfs"))
            .args(["localhost/busybox", "--cmd", "sh"]),
    )?;
    output(
        Command::new(&berth)
            .args(["build", "--progress", "plain", "--root"])
            .arg(&store)
            .arg("--runtime")
            .arg(bin.join("berth-runtime"))
            .args(["--target", "build", "-t", IMAGE])
            .arg(&context),
    )?;
    Ok(Bench {
        berth,
        skopeo: PathBuf::from("skopeo"),
        store,
        work,
        bytes: 0,
    })
}

/// The total size of the blobs in a store that holds only the image.
fn blob_bytes(store: &Path) -> anyhow::Result<u64> {
    let blobs = store.join("oci/blobs/sha256");
    let mut total = 0;
    for entry in fs::read_dir(&blobs).with_context(|| format!("reading {}", blobs.display()))? {
        total += entry?.metadata()?.len();
    }
    Ok(total)
}

/// Times one command; its output is kept only for the error.
fn timed(cmd: &mut Command) -> anyhow::Result<f64> {
    inputs::timed(cmd).map(|(secs, _)| secs)
}

/// Pushes the image to a registry of its own with empty storage.
fn push_once(bench: &Bench, tool: usize, round: usize) -> anyhow::Result<f64> {
    let dir = bench.work.join(format!("registry-push-{round}-{tool}"));
    let registry = LocalRegistry::start(&dir)?;
    let target = format!("{}/bench/pushed:1", registry.host);
    let secs = if tool == 0 {
        // Nothing remembered from earlier rounds may turn an upload into a mount.
        let _ = fs::remove_dir_all(bench.store.join("registry"));
        timed(
            Command::new(&bench.berth)
                .arg("--root")
                .arg(&bench.store)
                .args(["push", "--quiet", IMAGE, &target]),
        )
    } else {
        timed(
            Command::new(&bench.skopeo)
                .args(["copy", "--quiet", "--dest-tls-verify=false"])
                .arg(format!("oci:{}:{IMAGE}", bench.store.join("oci").display()))
                .arg(format!("docker://{target}")),
        )
    };
    // Each push fills a registry of its own; its storage is not needed after.
    drop(registry);
    fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    secs
}

/// Pulls the image into an empty store or layout.
fn pull_once(bench: &Bench, tool: usize, round: usize, from: &str) -> anyhow::Result<f64> {
    let dest = bench.work.join(format!("pulled-{round}-{}", TOOLS[tool]));
    let secs = if tool == 0 {
        timed(
            Command::new(&bench.berth)
                .arg("--root")
                .arg(&dest)
                .args(["pull", "--quiet", from]),
        )?
    } else {
        timed(
            Command::new(&bench.skopeo)
                .args(["copy", "--quiet", "--src-tls-verify=false"])
                .arg(format!("docker://{from}"))
                .arg(format!("oci:{}:bench", dest.display())),
        )?
    };
    fs::remove_dir_all(&dest).with_context(|| format!("removing {}", dest.display()))?;
    Ok(secs)
}
