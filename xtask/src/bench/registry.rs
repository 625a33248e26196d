//! `cargo xtask bench registry`: berth's registry client against `skopeo copy`
//! on the same OCI layout and a local `docker-registry`, alternating.
//!
//! Per round, for each tool (the order alternates between rounds), against a
//! fresh registry so that neither tool can mount from an earlier round:
//! push an image of 4 layers (~125 MB, half compressible, half random) into an
//! empty repository; push it again; push it to a second repository (each tool
//! finds the first one to mount from in its own cache of blob locations:
//! skopeo's blob-info cache, berth's blob location file); pull it into an
//! empty layout. It prints the medians, the berth/skopeo ratios and
//! how many blobs each re-push and mount uploaded (from the access log).
//!
//! Options: `--rounds N` (default 5), `--bytes N` (default 125000000).

use super::local_registry::LocalRegistry;
use crate::util::{output, run as run_command, target_dir, workspace_root};
use anyhow::Context;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const OPERATIONS: [&str; 4] = ["push", "re-push", "mount", "pull"];
const TOOLS: [&str; 2] = ["berth", "skopeo"];

/// Blob upload completions (one per uploaded blob) into a repository, from
/// the registry's access log.
fn count_uploads(registry: &LocalRegistry, repository: &str) -> usize {
    std::thread::sleep(Duration::from_millis(100));
    let needle = format!("\"PUT /v2/{repository}/blobs/uploads/");
    std::fs::read_to_string(registry.log())
        .unwrap_or_default()
        .lines()
        .filter(|line| line.contains(&needle))
        .count()
}

fn timed(command: &mut Command) -> anyhow::Result<Duration> {
    let started = Instant::now();
    output(command)?;
    Ok(started.elapsed())
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort();
    match values.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2,
    }
}

fn option(args: &[String], name: &str, default: u64) -> anyhow::Result<u64> {
    match args.iter().position(|a| a == name) {
        Some(i) => args
            .get(i + 1)
            .with_context(|| format!("{name} needs a value"))?
            .parse()
            .with_context(|| format!("{name} needs a number")),
        None => Ok(default),
    }
}

/// Runs the benchmark.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let rounds = option(args, "--rounds", 5)?.max(1);
    let bytes = option(args, "--bytes", 125_000_000)?;
    output(Command::new("skopeo").arg("--version"))
        .context("the benchmark needs skopeo (install the Debian package 'skopeo')")?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run_command(Command::new(&cargo).current_dir(workspace_root()).args([
        "build",
        "--release",
        "--quiet",
        "-p",
        "berth-registry-client",
        "--example",
        "regcopy",
    ]))?;
    let regcopy = target_dir().join("release/examples/regcopy");
    let work = tempfile_dir()?;
    let layout = work.join("image");
    output(Command::new(&regcopy).arg("generate").arg(&layout).args([
        "v1",
        &bytes.to_string(),
        "4",
    ]))?;
    eprintln!(
        "xtask: image of 4 layers, {} MB, at {}; {rounds} rounds",
        bytes / 1_000_000,
        layout.display()
    );
    let source = format!("oci:{}:v1", layout.display());
    // times[tool][operation]
    let mut times = vec![vec![Vec::new(); OPERATIONS.len()]; TOOLS.len()];
    let mut uploads = vec![vec![Vec::new(); 2]; TOOLS.len()];
    for round in 0..rounds {
        let mut order = [0, 1];
        if round % 2 == 1 {
            order.reverse();
        }
        for tool in order {
            let registry = LocalRegistry::start(&work.join(format!("registry-{round}-{tool}")))?;
            let host = &registry.host;
            let (first, second) = ("bench/first", "bench/second");
            let pulled = work.join(format!("pulled-{round}-{tool}"));
            let measured: [Duration; 4] = if TOOLS[tool] == "berth" {
                // Like skopeo's blob-info cache, berth's blob location cache
                // file tells the second push where to mount from. One file per
                // round: a later registry may get an earlier one's port.
                let locations = work.join(format!("berth-blob-locations-{round}.json"));
                let push = |repo: &str| {
                    timed(
                        Command::new(&regcopy)
                            .env("REGCOPY_LOCATIONS", &locations)
                            .arg("push")
                            .arg(&layout)
                            .arg("v1")
                            .arg(format!("{host}/{repo}:v1")),
                    )
                };
                [
                    push(first)?,
                    push(first)?,
                    push(second)?,
                    timed(
                        Command::new(&regcopy)
                            .arg("pull")
                            .arg(format!("{host}/{first}:v1"))
                            .arg(&pulled)
                            .arg("v1"),
                    )?,
                ]
            } else {
                let push = |repo: &str| {
                    timed(
                        Command::new("skopeo")
                            .args(["copy", "--quiet", "--dest-tls-verify=false", &source])
                            .arg(format!("docker://{host}/{repo}:v1")),
                    )
                };
                [
                    push(first)?,
                    push(first)?,
                    push(second)?,
                    timed(
                        Command::new("skopeo")
                            .args(["copy", "--quiet", "--src-tls-verify=false"])
                            .arg(format!("docker://{host}/{first}:v1"))
                            .arg(format!("oci:{}:v1", pulled.display())),
                    )?,
                ]
            };
            let first_uploads = count_uploads(&registry, first);
            uploads[tool][0].push(first_uploads.saturating_sub(5));
            uploads[tool][1].push(count_uploads(&registry, second));
            for (operation, duration) in measured.into_iter().enumerate() {
                times[tool][operation].push(duration);
            }
            drop(registry);
            let _ = std::fs::remove_dir_all(work.join(format!("registry-{round}-{tool}")));
            let _ = std::fs::remove_dir_all(&pulled);
        }
    }
    let mut table = String::new();
    let _ = writeln!(
        table,
        "{:<9} {:>12} {:>12} {:>8}",
        "operation", "berth (s)", "skopeo (s)", "ratio"
    );
    for (operation, name) in OPERATIONS.iter().enumerate() {
        let berth = median(&mut times[0][operation]).as_secs_f64();
        let skopeo = median(&mut times[1][operation]).as_secs_f64();
        let _ = writeln!(
            table,
            "{name:<9} {berth:>12.3} {skopeo:>12.3} {:>7.2}x",
            berth / skopeo
        );
    }
    for (tool, name) in TOOLS.iter().enumerate() {
        let _ = writeln!(
            table,
            "{name}: blobs uploaded by re-push {:?}, by the second-repository push {:?}",
            uploads[tool][0], uploads[tool][1]
        );
    }
    println!("{table}");
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

/// A scratch directory under the target directory (on disk, like real use).
fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = target_dir().join(format!("bench-registry-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}
