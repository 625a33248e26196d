//! What the benchmarks share: their `--rounds`/`--context` options, the
//! release binaries, a private copy of the context tree with a benchmark's
//! Dockerfile, timing and medians.

use crate::util::{describe, run as run_command, target_dir, workspace_root};
use crate::{deps, fixtures};
use anyhow::{Context, bail};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// The default context: the tree Debian's `rust-src` installs (about 37,000
/// files, 255 MB), as in the build benchmark.
pub const RUST_SRC: &str = "/usr/src/rustc-1.63.0";

/// The options of a benchmark that builds a context: `--rounds N` and
/// `--context DIR`.
pub struct Options {
    /// How many rounds to time.
    pub rounds: usize,
    /// The context tree to copy ([`RUST_SRC`] by default).
    pub source: PathBuf,
}

impl Options {
    /// Parses `--rounds N` and `--context DIR` (with `--context` refused
    /// where `context` is false), with `rounds` as the default count.
    pub fn parse(args: &[String], rounds: usize, context: bool) -> anyhow::Result<Options> {
        let mut options = Options {
            rounds,
            source: PathBuf::from(RUST_SRC),
        };
        let known = if context {
            "--rounds N, --context DIR"
        } else {
            "--rounds N"
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--rounds" => {
                    options.rounds = it
                        .next()
                        .and_then(|n| n.parse().ok())
                        .context("--rounds needs a number")?;
                }
                "--context" if context => {
                    options.source =
                        PathBuf::from(it.next().context("--context needs a directory")?);
                }
                other => bail!("unknown option '{other}' (options: {known})"),
            }
        }
        Ok(options)
    }
}

/// The inputs of one benchmark.
pub struct Inputs {
    /// The directory holding the release `berth` and `berth-runtime`.
    pub bin: PathBuf,
    /// The test fixtures (`busybox/rootfs`).
    pub fixtures: PathBuf,
    /// The part's fresh work directory under the target directory.
    pub work: PathBuf,
    /// A private copy of the context tree, with the Dockerfile.
    pub context: PathBuf,
}

/// Installs `packages` (and `rust-src` for the default context), builds the
/// release binaries and the fixtures, and copies `source` into a fresh
/// `target/<work_name>/context` with `dockerfile` as its Dockerfile.
pub fn prepare(
    work_name: &str,
    source: &Path,
    packages: &[&str],
    dockerfile: &str,
) -> anyhow::Result<Inputs> {
    let mut packages = packages.to_vec();
    if source == Path::new(RUST_SRC) {
        packages.push("rust-src");
    }
    deps::ensure(&packages)?;
    let fixtures = fixtures::build()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run_command(Command::new(&cargo).current_dir(workspace_root()).args([
        "build",
        "--release",
        "--quiet",
        "--workspace",
        "--bins",
    ]))?;
    let work = target_dir().join(work_name);
    if work.exists() {
        fs::remove_dir_all(&work).with_context(|| format!("removing {}", work.display()))?;
    }
    fs::create_dir_all(&work)?;
    let context = work.join("context");
    run_command(Command::new("cp").arg("-a").arg(source).arg(&context))?;
    fs::write(context.join("Dockerfile"), dockerfile)?;
    fs::write(context.join(".dockerignore"), ".git\n")?;
    Ok(Inputs {
        bin: target_dir().join("release"),
        fixtures,
        work,
        context,
    })
}

/// The median (NaN for no values).
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Runs `cmd` with no stdin; returns the seconds it took and its stdout and
/// stderr, or an error carrying them.
pub fn timed(cmd: &mut Command) -> anyhow::Result<(f64, String)> {
    let started = Instant::now();
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("starting {:?}", cmd.get_program()))?;
    let secs = started.elapsed().as_secs_f64();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        bail!("{} failed:\n{text}", describe(cmd));
    }
    Ok((secs, text))
}
