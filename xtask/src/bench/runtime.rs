//! `cargo xtask bench runtime`: berth-runtime against Debian's runc on the
//! lifecycle of a busybox `/bin/true` container, alternating.
//!
//! Each round runs, for each runtime (the order alternates between rounds):
//! `run` (create, start, wait and delete in one command), and separately
//! `create`, `start`, wait for the process, `delete` (the orchestrator's path).
//! Wall time covers the whole lifecycle; peak RSS is the largest maximum
//! resident set of the runtime's commands (from `wait4`'s rusage, which covers
//! each command and the processes it reaped). berth-runtime is the release
//! build. It prints the medians and the berth/runc ratios.
//!
//! Options: `--rounds N` (default 40).

use crate::util::{output, run as run_command, target_dir, workspace_root};
use anyhow::{Context, bail};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One measured lifecycle: wall time and the peak RSS in KiB.
#[derive(Debug, Clone, Copy)]
struct Sample {
    wall: Duration,
    peak_rss_kib: i64,
}

/// Runs a command to completion and returns its exit status code and the max
/// RSS (KiB) of it and the children it reaped.
fn measured(cmd: &mut Command) -> anyhow::Result<(i32, i64)> {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {cmd:?}"))?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our child; the pointers are valid for the call.
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    if rc != pid {
        bail!("wait4 on {cmd:?}: {}", std::io::Error::last_os_error());
    }
    let code = std::process::ExitStatus::from_raw(status)
        .code()
        .unwrap_or(-1);
    Ok((code, usage.ru_maxrss))
}

struct Runtime {
    name: &'static str,
    binary: PathBuf,
    root: PathBuf,
}

impl Runtime {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--root").arg(&self.root).args(args);
        cmd
    }

    fn checked(&self, args: &[&str]) -> anyhow::Result<i64> {
        let (code, rss) = measured(&mut self.cmd(args))?;
        if code != 0 {
            bail!("{} {args:?} exited with {code}", self.name);
        }
        Ok(rss)
    }

    fn run(&self, bundle: &Path, id: &str) -> anyhow::Result<Sample> {
        let started = Instant::now();
        let rss = self.checked(&["run", "--bundle", &bundle.to_string_lossy(), id])?;
        Ok(Sample {
            wall: started.elapsed(),
            peak_rss_kib: rss,
        })
    }

    fn lifecycle(&self, bundle: &Path, id: &str, pid_file: &Path) -> anyhow::Result<Sample> {
        let started = Instant::now();
        let mut peak = self.checked(&[
            "create",
            "--bundle",
            &bundle.to_string_lossy(),
            "--pid-file",
            &pid_file.to_string_lossy(),
            id,
        ])?;
        let pid: libc::pid_t = std::fs::read_to_string(pid_file)?.trim().parse()?;
        peak = peak.max(self.checked(&["start", id])?);
        // The init was orphaned by `create`; as a subreaper this process
        // inherited it and waits for it like a shim does.
        let mut status = 0;
        // SAFETY: waiting for a child of this process.
        if unsafe { libc::waitpid(pid, &mut status, 0) } != pid {
            bail!(
                "waiting for {} container process {pid}: {}",
                self.name,
                std::io::Error::last_os_error()
            );
        }
        peak = peak.max(self.checked(&["delete", id])?);
        Ok(Sample {
            wall: started.elapsed(),
            peak_rss_kib: peak,
        })
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Runs the benchmark.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let mut rounds = 40usize;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        match arg.as_str() {
            "--rounds" => {
                rounds = iter
                    .next()
                    .context("--rounds needs a number")?
                    .parse()
                    .context("--rounds needs a number")?;
            }
            other => bail!("unknown option '{other}'; known: --rounds N"),
        }
    }
    if !crate::util::is_root() {
        bail!("the runtime benchmark creates containers and needs root");
    }
    let fixtures = crate::fixtures::build()?;
    eprintln!("xtask: building berth-runtime (release)");
    run_command(
        Command::new(env!("CARGO"))
            .current_dir(workspace_root())
            .args(["build", "--release", "-p", "berth-runtime"]),
    )?;
    let berth = target_dir().join("release/berth-runtime");
    let runc = PathBuf::from(output(Command::new("sh").args(["-c", "command -v runc"]))?.trim());
    if !runc.is_file() {
        bail!("runc is not installed; run 'cargo xtask deps'");
    }

    let work = target_dir().join("bench-runtime");
    if work.exists() {
        std::fs::remove_dir_all(&work)?;
    }
    let bundle = work.join("bundle");
    std::fs::create_dir_all(&bundle)?;
    run_command(
        Command::new("cp")
            .arg("-a")
            .arg(fixtures.join("busybox/rootfs"))
            .arg(bundle.join("rootfs")),
    )?;
    // runc's own default spec with the process made non-interactive, so both
    // runtimes do exactly the same container setup.
    run_command(Command::new(&runc).args(["spec", "--bundle"]).arg(&bundle))?;
    let config_path = bundle.join("config.json");
    let config = std::fs::read_to_string(&config_path)?
        .replace("\"terminal\": true", "\"terminal\": false")
        .replace("\"sh\"", "\"/bin/true\"");
    std::fs::write(&config_path, config)?;

    // SAFETY: prctl with integer arguments; makes orphaned container
    // processes children of this process, as a containerd shim is.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        bail!(
            "prctl(PR_SET_CHILD_SUBREAPER): {}",
            std::io::Error::last_os_error()
        );
    }
    let runtimes = [
        Runtime {
            name: "berth-runtime",
            binary: berth,
            root: work.join("root-berth"),
        },
        Runtime {
            name: "runc",
            binary: runc,
            root: work.join("root-runc"),
        },
    ];
    let pid_file = work.join("init.pid");
    // Warm the page cache and the runtimes' first-use paths.
    for rt in &runtimes {
        rt.run(&bundle, "warmup")?;
    }
    let mut samples: Vec<[Vec<Sample>; 2]> =
        vec![[Vec::new(), Vec::new()], [Vec::new(), Vec::new()]];
    for round in 0..rounds {
        let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for &i in &order {
            let rt = &runtimes[i];
            samples[i][0].push(rt.run(&bundle, &format!("run-{round}"))?);
            samples[i][1].push(rt.lifecycle(&bundle, &format!("life-{round}"), &pid_file)?);
        }
    }

    println!("berth-runtime vs runc, busybox /bin/true, {rounds} alternating rounds (medians)");
    println!(
        "{:<28} {:>12} {:>12} {:>8}",
        "", "berth-runtime", "runc", "ratio"
    );
    for (kind, label) in [(0, "run"), (1, "create+start+wait+delete")] {
        let wall = |i: usize| {
            median(
                samples[i][kind]
                    .iter()
                    .map(|s| s.wall.as_secs_f64() * 1000.0)
                    .collect(),
            )
        };
        let rss = |i: usize| {
            median(
                samples[i][kind]
                    .iter()
                    .map(|s| s.peak_rss_kib as f64 / 1024.0)
                    .collect(),
            )
        };
        let (bw, rw) = (wall(0), wall(1));
        let (bm, rm) = (rss(0), rss(1));
        println!(
            "{:<28} {:>10.1}ms {:>10.1}ms {:>7.2}x",
            format!("{label} wall"),
            bw,
            rw,
            bw / rw
        );
        println!(
            "{:<28} {:>10.1}MB {:>10.1}MB {:>7.2}x",
            format!("{label} peak RSS"),
            bm,
            rm,
            bm / rm
        );
    }
    println!("target: at most 0.50x runc's median wall time and peak RSS");
    std::fs::remove_dir_all(&work).ok();
    Ok(())
}
