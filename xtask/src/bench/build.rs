//! `cargo xtask bench build`: `berth build` against Debian's
//! `buildah bud --layers --isolation chroot` on the same Dockerfile and a real
//! source tree, side by side.
//!
//! The context is a copy of the Rust standard library and compiler sources
//! that Debian's `rust-src` package installs (about 37,000 files, 255 MB).
//! The Dockerfile has a busybox base, `COPY . /src`, a RUN over the files, and
//! a second stage that copies the RUN's result. Three cases, each repeated
//! (default 3 rounds, tools alternating):
//!
//! - cold: a fresh store (berth) or fresh storage (buildah) holding only the base;
//! - no-op: the same build again;
//! - one-file: the same build after one source file changed.
//!
//! It prints the medians, the berth/buildah ratios, and the time of a bare
//! stat walk of the context, the floor of a no-op rebuild.
//!
//! Options: `--rounds N` (default 3), `--context DIR` (default: the rust-src tree).

use crate::bench::inputs::{self, Options, median};
use crate::util::run as run_command;
use anyhow::bail;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const CASES: [&str; 3] = ["cold", "no-op", "one-file"];
const DOCKERFILE: &str = "FROM localhost/busybox AS build
COPY . /src
RUN find /src -type f | wc -l > /summary && du -s /src >> /summary && md5sum /src/README.md >> /summary
FROM localhost/busybox
COPY --from=build /summary /summary
CMD [\"cat\", \"/summary\"]
";

struct Setup {
    berth: PathBuf,
    runtime: PathBuf,
    busybox_rootfs: PathBuf,
    busybox_oci: PathBuf,
    context: PathBuf,
    work: PathBuf,
}

/// Runs the benchmark.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let Options { rounds, source } = Options::parse(args, 3, true)?;
    let setup = prepare(&source)?;
    let (files, bytes) = tree_size(&setup.context)?;
    eprintln!(
        "bench build: context {} files, {:.0} MB ({})",
        files,
        bytes as f64 / 1e6,
        source.display()
    );

    let mut berth_times: Vec<Vec<f64>> = vec![Vec::new(); CASES.len()];
    let mut buildah_times: Vec<Vec<f64>> = vec![Vec::new(); CASES.len()];
    for round in 0..rounds {
        // Alternate which tool goes first, so neither always gets a warm page cache.
        let order: [&str; 2] = if round % 2 == 0 {
            ["berth", "buildah"]
        } else {
            ["buildah", "berth"]
        };
        for tool in order {
            let times = if tool == "berth" {
                berth_round(&setup, round)?
            } else {
                buildah_round(&setup, round)?
            };
            eprintln!(
                "round {}: {tool:7} cold {:.2}s  no-op {:.2}s  one-file {:.2}s",
                round + 1,
                times[0],
                times[1],
                times[2]
            );
            let target = if tool == "berth" {
                &mut berth_times
            } else {
                &mut buildah_times
            };
            for (i, t) in times.into_iter().enumerate() {
                target[i].push(t);
            }
        }
    }
    let mut walks: Vec<f64> = (0..5)
        .map(|_| stat_walk(&setup.context).map(|(_, secs)| secs))
        .collect::<anyhow::Result<_>>()?;
    let walk = median(&mut walks);

    println!(
        "\nberth build vs buildah bud --layers --isolation chroot ({files} files, {:.0} MB, {rounds} rounds, medians)",
        bytes as f64 / 1e6
    );
    println!(
        "{:10} {:>9} {:>9} {:>8}  target",
        "case", "berth", "buildah", "ratio"
    );
    for (i, case) in CASES.iter().enumerate() {
        let b = median(&mut berth_times[i]);
        let h = median(&mut buildah_times[i]);
        let target = if i == 1 { "<= 0.1x" } else { "<= 0.5x" };
        println!("{case:10} {b:>8.3}s {h:>8.3}s {:>7.3}x  {target}", b / h);
    }
    let noop = median(&mut berth_times[1]);
    println!(
        "stat walk  {walk:>8.3}s  (berth no-op is {:.1}x the stat walk; target <= 3x)",
        noop / walk
    );
    Ok(())
}

fn prepare(source: &Path) -> anyhow::Result<Setup> {
    let inputs = inputs::prepare(
        "bench-build",
        source,
        &["buildah", "busybox-static", "skopeo"],
        DOCKERFILE,
    )?;
    let (bin, fixtures, work, context) = (inputs.bin, inputs.fixtures, inputs.work, inputs.context);

    // The busybox base as an OCI layout, which buildah pulls from.
    let setup = Setup {
        berth: bin.join("berth"),
        runtime: bin.join("berth-runtime"),
        busybox_rootfs: fixtures.join("busybox/rootfs"),
        busybox_oci: work.join("busybox-oci"),
        context,
        work,
    };
    let store = setup.work.join("base-store");
    import_base(&setup, &store)?;
    let tar = setup.busybox_oci.with_extension("tar");
    let out = Command::new(&setup.berth)
        .args(["build", "--progress", "plain", "--root"])
        .arg(&store)
        .args(["--output", &format!("type=oci,dest={}", tar.display())])
        .args(["-t", "localhost/busybox"])
        .arg({
            let dir = setup.work.join("base-ctx");
            fs::create_dir_all(&dir)?;
            fs::write(dir.join("Dockerfile"), "FROM localhost/busybox\n")?;
            dir
        })
        .output()?;
    if !out.status.success() {
        bail!(
            "exporting the busybox base failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(setup)
}

fn import_base(setup: &Setup, store: &Path) -> anyhow::Result<()> {
    let out = Command::new(&setup.berth)
        .arg("import")
        .arg("--root")
        .arg(store)
        .arg(&setup.busybox_rootfs)
        .args(["localhost/busybox", "--cmd", "sh"])
        .output()?;
    if !out.status.success() {
        bail!(
            "berth import failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Changes one file of the context (a different content each round).
fn touch_one_file(setup: &Setup, round: usize, tool: &str) -> anyhow::Result<()> {
    let path = setup.context.join("README.md");
    let mut text = fs::read_to_string(&path)?;
    text.push_str(&format!("\n<!-- bench round {round} {tool} -->\n"));
    fs::write(&path, text)?;
    Ok(())
}

fn timed(cmd: &mut Command) -> anyhow::Result<f64> {
    inputs::timed(cmd).map(|(secs, _)| secs)
}

fn berth_round(setup: &Setup, round: usize) -> anyhow::Result<[f64; 3]> {
    let store = setup.work.join(format!("berth-store-{round}"));
    import_base(setup, &store)?;
    let build = || {
        let mut c = Command::new(&setup.berth);
        c.args(["build", "--progress", "plain", "--root"])
            .arg(&store)
            .arg("--runtime")
            .arg(&setup.runtime)
            .args(["-t", "bench"])
            .arg(&setup.context);
        c
    };
    let cold = timed(&mut build())?;
    let noop = timed(&mut build())?;
    touch_one_file(setup, round, "berth")?;
    let one = timed(&mut build())?;
    fs::remove_dir_all(&store).ok();
    Ok([cold, noop, one])
}

fn buildah_round(setup: &Setup, round: usize) -> anyhow::Result<[f64; 3]> {
    let root = setup.work.join(format!("buildah-{round}"));
    let storage = |c: &mut Command| {
        c.arg("--root")
            .arg(root.join("storage"))
            .arg("--runroot")
            .arg(root.join("run"))
            .args(["--storage-driver", "overlay"]);
    };
    let mut pull = Command::new("buildah");
    storage(&mut pull);
    pull.stdout(Stdio::null())
        .args(["pull", "--quiet"])
        .arg(format!(
            "oci-archive:{}:localhost/busybox:latest",
            setup.busybox_oci.with_extension("tar").display()
        ));
    run_command(&mut pull)?;
    let build = || {
        let mut c = Command::new("buildah");
        storage(&mut c);
        c.args([
            "bud",
            "--layers",
            "--isolation",
            "chroot",
            "--pull=never",
            "-t",
            "bench",
            "-f",
        ])
        .arg(setup.context.join("Dockerfile"))
        .arg(&setup.context);
        c
    };
    let cold = timed(&mut build())?;
    let noop = timed(&mut build())?;
    touch_one_file(setup, round, "buildah")?;
    let one = timed(&mut build())?;
    let mut rm = Command::new("buildah");
    storage(&mut rm);
    let _ = rm
        .args(["rm", "--all"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let mut umount = Command::new("umount");
    let _ = umount
        .arg("-R")
        .arg(root.join("storage/overlay"))
        .stderr(Stdio::null())
        .status();
    fs::remove_dir_all(&root).ok();
    Ok([cold, noop, one])
}

/// Files and bytes under `dir`.
fn tree_size(dir: &Path) -> anyhow::Result<(usize, u64)> {
    let (entries, _) = stat_walk(dir)?;
    Ok(entries)
}

/// An lstat of every entry under `dir`, as a no-op rebuild's floor: returns
/// (files, bytes) and the seconds it took.
fn stat_walk(dir: &Path) -> anyhow::Result<((usize, u64), f64)> {
    let started = Instant::now();
    let mut files = 0;
    let mut bytes = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d)? {
            let entry = entry?;
            let meta = fs::symlink_metadata(entry.path())?;
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                files += 1;
                bytes += meta.len();
            }
        }
    }
    Ok(((files, bytes), started.elapsed().as_secs_f64()))
}
