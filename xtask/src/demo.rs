//! `cargo xtask demo`: berth's main job on a fresh machine, with embedded
//! defaults. It prepares a busybox base image from Debian's `busybox-static`,
//! builds the multi-stage example under `examples/demo` (with `.dockerignore`,
//! RUN and `COPY --from`), runs the result with `berth run` (in the
//! foreground, then detached with `ps`, `logs`, `stats` and `rm`), and builds
//! it again to show every step come from the cache. It needs no terminal:
//! `cargo xtask ci` runs it on the binaries it has just built.

use crate::util::{is_root, run, target_dir, workspace_root};
use crate::{deps, fixtures};
use anyhow::{Context, bail};
use std::fs;
use std::io::IsTerminal;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// The Debian package the demo uses: the busybox base.
const PACKAGES: &[&str] = &["busybox-static"];

/// Runs the demo: builds the binaries, then [`run_with`].
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
    run_with(&target_dir().join("debug"), &fixtures)
}

/// Removes the demo's detached container when dropped, also after a failed
/// step.
struct Detached<'a> {
    berth: &'a Path,
    store: &'a Path,
    name: String,
}

impl Drop for Detached<'_> {
    fn drop(&mut self) {
        let _ = Command::new(self.berth)
            .arg("--root")
            .arg(self.store)
            .args(["rm", "-f", &self.name])
            .output();
    }
}

/// Runs the demo with the `berth` and `berth-runtime` in `bin_dir` and the
/// busybox fixture under `fixtures`.
pub fn run_with(bin_dir: &Path, fixtures: &Path) -> anyhow::Result<()> {
    let berth = bin_dir.join("berth");
    let root = workspace_root();

    // A fresh store each time, so the first build is a cold one.
    let demo = target_dir().join("demo");
    if demo.exists() {
        fs::remove_dir_all(&demo).with_context(|| format!("removing {}", demo.display()))?;
    }
    let store = demo.join("store");
    fs::create_dir_all(&store)?;
    let example = root.join("examples/demo");
    let berth_at = |args: &[&str]| -> Command {
        let mut command = Command::new(&berth);
        command.arg("--root").arg(&store).args(args);
        command
    };

    step("1/5", "a busybox base image from Debian's busybox-static");
    run(berth_at(&["import"])
        .arg(fixtures.join("busybox/rootfs"))
        .args(["busybox", "--cmd", "sh"]))?;

    step("2/5", "berth build -t berth-demo examples/demo (cold)");
    let cold = build(&berth, &store, &example)?;

    // -t only when there is a terminal to give the container (CI has none).
    let mut run_args = vec!["run", "--rm"];
    if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
        run_args.push("-t");
    }
    run_args.push("berth-demo");
    step("3/5", &format!("berth {}", run_args.join(" ")));
    run(&mut berth_at(&run_args))?;

    let name = format!("berth-demo-{}", std::process::id());
    step(
        "4/5",
        &format!("berth run -d --name {name}; ps; logs; stats; rm"),
    );
    let detached = Detached {
        berth: &berth,
        store: &store,
        name: name.clone(),
    };
    run(&mut berth_at(&[
        "run",
        "-d",
        "--name",
        &name,
        "berth-demo",
        "sh",
        "-c",
        "/app/show; exec sleep 60",
    ]))?;
    run(&mut berth_at(&["ps"]))?;
    wait_for_log(&berth_at(&["logs", &name]), "== berth demo report ==")?;
    run(&mut berth_at(&["logs", &name]))?;
    run(&mut berth_at(&["stats", "--no-stream", &name]))?;
    run(&mut berth_at(&["rm", "-f", &name]))?;
    drop(detached);
    run(&mut berth_at(&["ps", "-a"]))?;

    step("5/5", "build again: every step comes from the cache");
    let warm = build(&berth, &store, &example)?;
    println!(
        "\ncold build {:.2}s, cached rebuild {:.2}s (store: {})",
        cold,
        warm,
        store.display()
    );
    Ok(())
}

/// Waits (up to 10 s) until the output of `logs` holds `text`: a detached
/// container's first line may not be logged yet when `run -d` returns.
fn wait_for_log(logs: &Command, text: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let mut command = Command::new(logs.get_program());
        command.args(logs.get_args());
        let out = command.output().context("running berth logs")?;
        if String::from_utf8_lossy(&out.stdout).contains(text) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the demo container did not print '{text}' within 10 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn step(n: &str, what: &str) {
    println!("\n==> [{n}] {what}");
}

/// Builds the example and returns the wall time in seconds.
fn build(berth: &Path, store: &Path, example: &Path) -> anyhow::Result<f64> {
    let started = Instant::now();
    run(Command::new(berth)
        .arg("build")
        .arg("--root")
        .arg(store)
        .args(["-t", "berth-demo"])
        .arg(example))?;
    Ok(started.elapsed().as_secs_f64())
}
