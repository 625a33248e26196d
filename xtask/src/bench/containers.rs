//! `cargo xtask bench containers`: container lifecycle and stats, berth
//! against podman on the same busybox image, with the same runtime
//! (berth-runtime) and no network, side by side in one run.
//!
//! - `lifecycle`: create, start, stop and rm of 20 containers (20 `create`s,
//!   then one `start`, one `stop` and one `rm` of all 20). Where berth has no
//!   `create` yet, 20 `run -d`s stand for create and start.
//! - `stats`: `stats --no-stream` over 10 running containers.
//!
//! Options: `--rounds N` (default 3), `--debug` (the debug binaries, built
//! if needed, instead of a release build). Every container is removed, also
//! after a failure.

use super::inputs::median;
use crate::fixtures;
use crate::util::{describe, run as run_command, target_dir, workspace_root};
use anyhow::{Context, bail};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// Containers per lifecycle round.
const LIFECYCLE: usize = 20;
/// Running containers `stats` reads.
const STATS: usize = 10;
/// A main process that ends on SIGTERM at once (a shell as pid 1 ignores it
/// otherwise, and stop would wait its whole timeout).
const COMMAND: &[&str] = &["sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"];
/// The open-files hard limit here (20000) is below podman's default for
/// containers.
const PODMAN_LIMITS: &[&str] = &[
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=4096:4096",
];

/// One of the two tools, as a command line prefix.
struct Tool {
    name: &'static str,
    program: PathBuf,
    global: Vec<String>,
    run_flags: Vec<String>,
    has_create: bool,
}

impl Tool {
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.program);
        command.args(&self.global).args(args).stdin(Stdio::null());
        command
    }

    /// Runs `args`, failing with the output if it fails.
    fn ok(&self, args: &[&str]) -> anyhow::Result<()> {
        let mut command = self.command(args);
        let out = command
            .output()
            .with_context(|| format!("starting {}", describe(&command)))?;
        if !out.status.success() {
            bail!(
                "{} failed:\n{}{}",
                describe(&command),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// `create` (or `run -d`) of one container.
    fn create(&self, name: &str, detached: bool) -> anyhow::Result<()> {
        let mut args: Vec<&str> = if detached || !self.has_create {
            vec!["run", "-d"]
        } else {
            vec!["create"]
        };
        args.extend(["--name", name, "--network", "none"]);
        args.extend(self.run_flags.iter().map(String::as_str));
        args.push("busybox");
        args.extend_from_slice(COMMAND);
        self.ok(&args)
    }

    /// Removes every container (the guard's and each round's cleanup).
    fn remove_all(&self, names: &[String]) {
        if self.name == "podman" {
            // Its storage is the benchmark's own: everything in it goes.
            let _ = self
                .command(&["rm", "--all", "--force", "--time", "0"])
                .output();
            return;
        }
        for chunk in names.chunks(20) {
            let mut args = vec!["rm", "-f"];
            args.extend(chunk.iter().map(String::as_str));
            let _ = self.command(&args).output();
        }
    }
}

/// Removes the containers of both tools when dropped.
struct Cleanup<'a> {
    tools: &'a [Tool],
    names: Vec<String>,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for tool in self.tools {
            tool.remove_all(&self.names);
        }
        // conmon starts `podman container cleanup` as each container exits,
        // which writes there again after rm: remove until it stays gone.
        for _ in 0..20 {
            let _ = fs::remove_dir_all(podman_dir());
            std::thread::sleep(std::time::Duration::from_millis(500));
            if !podman_dir().exists() {
                break;
            }
        }
        if podman_dir().exists() {
            eprintln!(
                "bench containers: could not remove {}",
                podman_dir().display()
            );
        }
    }
}

/// Podman's private storage for this run.
fn podman_dir() -> PathBuf {
    PathBuf::from(format!("/tmp/berth-bench-{}", std::process::id()))
}

/// Runs the benchmark.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let mut rounds = 3;
    let mut debug = false;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--rounds" => {
                rounds = it
                    .next()
                    .and_then(|n| n.parse().ok())
                    .context("--rounds needs a number")?;
            }
            "--debug" => debug = true,
            other => bail!("unknown option '{other}' (options: --rounds N, --debug)"),
        }
    }
    crate::deps::ensure(&["podman", "busybox-static"])?;
    let fixtures = fixtures::build()?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut build = Command::new(&cargo);
    build
        .current_dir(workspace_root())
        .args(["build", "--quiet", "--workspace", "--bins"]);
    if !debug {
        build.arg("--release");
    }
    run_command(&mut build)?;
    let bin = target_dir().join(if debug { "debug" } else { "release" });

    let work = target_dir().join("bench-containers");
    if work.exists() {
        fs::remove_dir_all(&work).with_context(|| format!("removing {}", work.display()))?;
    }
    fs::create_dir_all(&work)?;
    let tools = prepare(&bin, &fixtures, &work)?;
    let lifecycle_names: Vec<String> = (0..LIFECYCLE)
        .map(|i| format!("bench-life-{}-{i}", std::process::id()))
        .collect();
    let stats_names: Vec<String> = (0..STATS)
        .map(|i| format!("bench-stats-{}-{i}", std::process::id()))
        .collect();
    let _cleanup = Cleanup {
        tools: &tools,
        names: lifecycle_names
            .iter()
            .chain(&stats_names)
            .cloned()
            .collect(),
    };

    let mut lifecycle: [Vec<f64>; 2] = Default::default();
    for round in 0..rounds {
        // Alternate which tool goes first, so neither always meets a warm cache.
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for t in order {
            let secs = lifecycle_round(&tools[t], &lifecycle_names)?;
            eprintln!(
                "round {}: {:6} lifecycle {secs:.2}s",
                round + 1,
                tools[t].name
            );
            lifecycle[t].push(secs);
        }
    }

    let mut stats: [Vec<f64>; 2] = Default::default();
    for (t, tool) in tools.iter().enumerate() {
        for name in &stats_names {
            tool.create(name, true)?;
        }
        for round in 0..rounds {
            let started = Instant::now();
            tool.ok(&["stats", "--no-stream"])?;
            let secs = started.elapsed().as_secs_f64();
            eprintln!("round {}: {:6} stats {secs:.2}s", round + 1, tool.name);
            stats[t].push(secs);
        }
        tool.remove_all(&stats_names);
    }

    let create = if tools[0].has_create {
        "create, start, stop, rm"
    } else {
        "run -d, stop, rm"
    };
    println!(
        "\nberth vs podman ({} runtime, --network none, {rounds} rounds, medians)",
        bin.join("berth-runtime").display()
    );
    println!(
        "{:34} {:>9} {:>9} {:>8}  target",
        "case", "berth", "podman", "ratio"
    );
    let cases = [
        (format!("{create} of {LIFECYCLE}"), &mut lifecycle),
        (format!("stats --no-stream of {STATS}"), &mut stats),
    ];
    for (name, times) in cases {
        let [berth, podman] = times;
        let (berth, podman) = (median(berth), median(podman));
        println!(
            "{name:34} {berth:>8.3}s {podman:>8.3}s {:>7.3}x  <= 0.5x",
            berth / podman
        );
    }
    Ok(())
}

/// One round: every container created, started, stopped and removed.
fn lifecycle_round(tool: &Tool, names: &[String]) -> anyhow::Result<f64> {
    let all = |verb: &[&str]| {
        let mut args = verb.to_vec();
        args.extend(names.iter().map(String::as_str));
        tool.ok(&args)
    };
    let started = Instant::now();
    for name in names {
        tool.create(name, false)?;
    }
    if tool.has_create {
        all(&["start"])?;
    }
    all(&["stop"])?;
    all(&["rm"])?;
    Ok(started.elapsed().as_secs_f64())
}

/// berth with a store holding `busybox`, and podman with storage of its own
/// holding the same image (saved by berth, loaded by podman).
fn prepare(bin: &Path, fixtures: &Path, work: &Path) -> anyhow::Result<[Tool; 2]> {
    let runtime = bin.join("berth-runtime");
    let store = work.join("berth-store");
    let berth = Tool {
        name: "berth",
        program: bin.join("berth"),
        global: vec!["--root".into(), store.display().to_string()],
        run_flags: Vec::new(),
        has_create: false,
    };
    berth.ok(&[
        "import",
        &fixtures.join("busybox/rootfs").display().to_string(),
        "busybox",
        "--cmd",
        "sh",
    ])?;
    let has_create = berth
        .command(&["create", "--help"])
        .output()?
        .status
        .success();
    let berth = Tool {
        has_create,
        ..berth
    };
    let archive = work.join("busybox.tar");
    berth.ok(&["save", "-o", &archive.display().to_string(), "busybox"])?;

    // Podman refuses a run root over 50 characters: its storage goes under
    // /tmp, removed by the cleanup.
    let pod = podman_dir();
    fs::create_dir_all(&pod)?;
    let podman = Tool {
        name: "podman",
        program: PathBuf::from("podman"),
        global: [
            "--root",
            &pod.join("root").display().to_string(),
            "--runroot",
            &pod.join("runroot").display().to_string(),
            "--tmpdir",
            &pod.join("tmp").display().to_string(),
            "--storage-driver",
            "vfs",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "none",
            "--runtime",
            &runtime.display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        run_flags: PODMAN_LIMITS.iter().map(|s| s.to_string()).collect(),
        has_create: true,
    };
    // Loaded as localhost/busybox, which podman's short-name lookup finds.
    podman.ok(&["load", "-q", "-i", &archive.display().to_string()])?;
    Ok([berth, podman])
}
