//! `cargo xtask bench runtime`: berth-runtime against Debian's runc on the
//! lifecycle of a busybox `/bin/true` container, alternating.
//!
//! Each round runs, for each runtime (the order alternates between rounds):
//! `run` (create, start, wait and delete in one command), and separately
//! `create`, `start`, wait for the process, `delete` (the orchestrator's path).
//! Wall time covers the whole lifecycle, with each command spawned directly.
//! Peak RSS is the largest maximum resident set of the runtime's commands and
//! the processes they reaped, measured in separate runs of the same
//! lifecycles under GNU time: the kernel's `ru_maxrss` of a child includes
//! the memory of whatever process forked it before its exec, so asking
//! `wait4` here would report this benchmark's own size as a floor for both
//! runtimes; GNU time is small and forks from itself. berth-runtime is built
//! as it is meant to be installed: the `runtime` profile, statically linked
//! (see [`build_static_runtime`]). It prints the medians and the berth/runc
//! ratios.
//!
//! The state roots (`--root`) are on a tmpfs, as both runtimes expect them
//! to be (see [`state_on_tmpfs`]).
//!
//! Options: `--rounds N` (default 40).

use crate::bench::inputs::{Options, median};
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

/// GNU time, which reports the peak RSS of the command it runs.
const GNU_TIME: &str = "/usr/bin/time";

/// Runs a command to completion and returns its exit status code.
fn status_of(cmd: &mut Command) -> anyhow::Result<i32> {
    let status = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .with_context(|| format!("starting {cmd:?}"))?;
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

struct Runtime {
    name: &'static str,
    binary: PathBuf,
    root: PathBuf,
    /// Where GNU time writes the peak RSS of a measured command.
    rss_file: PathBuf,
}

impl Runtime {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--root").arg(&self.root).args(args);
        cmd
    }

    /// Runs a runtime command that must succeed; with `rss`, under GNU time,
    /// returning its peak RSS in KiB (0 without).
    fn checked(&self, args: &[&str], rss: bool) -> anyhow::Result<i64> {
        let mut cmd = if rss {
            let mut cmd = Command::new(GNU_TIME);
            cmd.args(["-f", "%M", "-o"])
                .arg(&self.rss_file)
                .arg(&self.binary)
                .arg("--root")
                .arg(&self.root)
                .args(args);
            cmd
        } else {
            self.cmd(args)
        };
        let code = status_of(&mut cmd)?;
        if code != 0 {
            bail!("{} {args:?} exited with {code}", self.name);
        }
        if !rss {
            return Ok(0);
        }
        let text = std::fs::read_to_string(&self.rss_file)
            .with_context(|| format!("reading {}", self.rss_file.display()))?;
        text.trim()
            .lines()
            .last()
            .unwrap_or_default()
            .parse()
            .with_context(|| format!("GNU time wrote {text:?}, not a size in KiB"))
    }

    /// One `run`, timed, or with `rss` measured under GNU time instead.
    fn run(&self, bundle: &Path, id: &str, rss: bool) -> anyhow::Result<Sample> {
        let started = Instant::now();
        let rss = self.checked(&["run", "--bundle", &bundle.to_string_lossy(), id], rss)?;
        Ok(Sample {
            wall: started.elapsed(),
            peak_rss_kib: rss,
        })
    }

    /// One create+start+wait+delete, timed, or with `rss` measured under
    /// GNU time instead.
    fn lifecycle(
        &self,
        bundle: &Path,
        id: &str,
        pid_file: &Path,
        rss: bool,
    ) -> anyhow::Result<Sample> {
        let started = Instant::now();
        let mut peak = self.checked(
            &[
                "create",
                "--bundle",
                &bundle.to_string_lossy(),
                "--pid-file",
                &pid_file.to_string_lossy(),
                id,
            ],
            rss,
        )?;
        let pid: libc::pid_t = std::fs::read_to_string(pid_file)?.trim().parse()?;
        peak = peak.max(self.checked(&["start", id], rss)?);
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
        peak = peak.max(self.checked(&["delete", id], rss)?);
        Ok(Sample {
            wall: started.elapsed(),
            peak_rss_kib: peak,
        })
    }
}

/// Builds berth-runtime as it is meant to be installed and returns its path:
/// the `runtime` profile, statically linked (glibc and libseccomp), so that
/// each of its two execs per container maps no shared library.
///
/// `--target` keeps the static flags off build scripts and proc macros, and
/// puts the binary under `target/<host triple>/runtime/`.
fn build_static_runtime() -> anyhow::Result<PathBuf> {
    let host = output(Command::new("rustc").arg("-vV"))?
        .lines()
        .find_map(|line| line.strip_prefix("host: ").map(str::to_owned))
        .context("rustc -vV printed no host triple")?;
    let seccomp_dir = output(Command::new("pkg-config").args(["--variable=libdir", "libseccomp"]))?;
    eprintln!("xtask: building berth-runtime (profile runtime, static, {host})");
    run_command(
        Command::new(env!("CARGO"))
            .current_dir(workspace_root())
            .env("RUSTFLAGS", "-C target-feature=+crt-static")
            .env("LIBSECCOMP_LINK_TYPE", "static")
            .env("LIBSECCOMP_LIB_PATH", seccomp_dir.trim())
            .args(["build", "--profile", "runtime", "--target", &host])
            .args(["-p", "berth-runtime"]),
    )?;
    Ok(target_dir().join(host).join("runtime/berth-runtime"))
}

/// Mounts a tmpfs on `dir` for the runtimes' state roots, where both runc and
/// berth-runtime say state belongs (`--root`: "should be on tmpfs"; their
/// defaults are under /run). On a disk they would measure the filesystem:
/// every rewrite of a state file there costs block allocation and, on a disk
/// mounted with `discard`, a synchronous discard. The mount is made in a
/// private mount namespace of this process, so it disappears with it.
fn state_on_tmpfs(dir: &Path) -> anyhow::Result<()> {
    let sys = |what: &str| anyhow::anyhow!("{what}: {}", std::io::Error::last_os_error());
    // SAFETY: unshare with a constant flag only affects this process.
    if unsafe { libc::unshare(libc::CLONE_NEWNS) } != 0 {
        return Err(sys("unshare(CLONE_NEWNS) for the state tmpfs"));
    }
    // SAFETY: mount with valid C strings or nulls; it changes only this
    // process's new mount namespace.
    if unsafe {
        libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    } != 0
    {
        return Err(sys("making the benchmark's mounts private"));
    }
    let target = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())?;
    // SAFETY: as above.
    if unsafe {
        libc::mount(
            c"tmpfs".as_ptr(),
            target.as_ptr(),
            c"tmpfs".as_ptr(),
            0,
            c"mode=0700".as_ptr().cast(),
        )
    } != 0
    {
        return Err(sys(&format!("mounting a tmpfs on {}", dir.display())));
    }
    Ok(())
}

/// Runs the benchmark.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let rounds = Options::parse(args, 40, false)?.rounds;
    if !crate::util::is_root() {
        bail!("the runtime benchmark creates containers and needs root");
    }
    let fixtures = crate::fixtures::build()?;
    let berth = build_static_runtime()?;
    if !Path::new(GNU_TIME).is_file() {
        bail!("{GNU_TIME} (GNU time) is not installed; run 'cargo xtask deps'");
    }
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
    let state = work.join("state");
    std::fs::create_dir_all(&state)?;
    state_on_tmpfs(&state)?;
    let runtimes = [
        Runtime {
            name: "berth-runtime",
            binary: berth,
            root: state.join("root-berth"),
            rss_file: work.join("rss-berth"),
        },
        Runtime {
            name: "runc",
            binary: runc,
            root: state.join("root-runc"),
            rss_file: work.join("rss-runc"),
        },
    ];
    let pid_file = work.join("init.pid");
    // Warm the page cache and the runtimes' first-use paths.
    for rt in &runtimes {
        rt.run(&bundle, "warmup", false)?;
    }
    // samples[runtime][kind]: timed samples; rss[runtime][kind]: peak RSS
    // samples from the runs under GNU time.
    let mut samples: Vec<[Vec<Sample>; 2]> =
        vec![[Vec::new(), Vec::new()], [Vec::new(), Vec::new()]];
    let mut rss: Vec<[Vec<Sample>; 2]> = vec![[Vec::new(), Vec::new()], [Vec::new(), Vec::new()]];
    for round in 0..rounds {
        let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for &i in &order {
            let rt = &runtimes[i];
            samples[i][0].push(rt.run(&bundle, &format!("run-{round}"), false)?);
            samples[i][1].push(rt.lifecycle(
                &bundle,
                &format!("life-{round}"),
                &pid_file,
                false,
            )?);
            rss[i][0].push(rt.run(&bundle, &format!("run-rss-{round}"), true)?);
            rss[i][1].push(rt.lifecycle(&bundle, &format!("life-rss-{round}"), &pid_file, true)?);
        }
    }

    println!(
        "berth-runtime vs runc, busybox /bin/true, {rounds} alternating rounds (medians), state roots on tmpfs"
    );
    println!(
        "{:<28} {:>12} {:>12} {:>8}",
        "", "berth-runtime", "runc", "ratio"
    );
    for (kind, label) in [(0, "run"), (1, "create+start+wait+delete")] {
        let wall = |i: usize| {
            median(
                &mut samples[i][kind]
                    .iter()
                    .map(|s| s.wall.as_secs_f64() * 1000.0)
                    .collect::<Vec<_>>(),
            )
        };
        let peak = |i: usize| {
            median(
                &mut rss[i][kind]
                    .iter()
                    .map(|s| s.peak_rss_kib as f64 / 1024.0)
                    .collect::<Vec<_>>(),
            )
        };
        let (bw, rw) = (wall(0), wall(1));
        let (bm, rm) = (peak(0), peak(1));
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
