//! `cargo xtask bench network`: the time from `run -d -p HOST:80` to the
//! first HTTP 200 on `127.0.0.1:HOST`, berth against `podman run -d -p`, on
//! the same busybox image serving with its `httpd`, alternating.
//!
//! Each round starts one container per tool on a port of its own from a
//! range no test uses, polls the published port with a plain HTTP/1.0 GET
//! until it answers 200, then removes the container (untimed). podman gets
//! storage of its own under the work directory (the vfs driver, as the tests
//! use) and the image through `berth save` and `podman load`, and runs on
//! its default bridge with runc. It prints the medians and the berth/podman
//! ratio.
//!
//! Options: `--rounds N` (default 10); `--debug` times the debug binaries
//! already built instead of building release ones (a quick check that the
//! benchmark works, not a figure to quote).

use crate::bench::inputs::{Options, median, timed};
use crate::util::{run as run_command, target_dir};
use crate::{deps, fixtures};
use anyhow::{Context, bail};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The first host port the benchmark publishes; round N uses this plus 2N
/// and 2N+1.
const FIRST_PORT: u16 = 47100;

/// How long a container may take to answer before the round fails.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);

/// The served file: every runtime bind-mounts `/etc/hostname`, so busybox
/// `httpd -h /etc` answers `GET /hostname` with 200.
const PATH: &str = "/hostname";

/// One tool under test.
struct Tool {
    name: &'static str,
    /// The command line before `run`/`rm` (binary and global options).
    base: Vec<String>,
    /// The image name in its store.
    image: String,
}

impl Tool {
    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.base[0]);
        cmd.args(&self.base[1..]).args(args).stdin(Stdio::null());
        cmd
    }

    /// Runs the server on `port`; returns the seconds until the first 200.
    fn until_first_answer(&self, name: &str, port: u16, extra: &[&str]) -> anyhow::Result<f64> {
        let published = format!("{port}:80");
        let mut args = vec!["run", "-d", "--name", name, "-p", &published];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[&self.image, "httpd", "-f", "-p", "80", "-h", "/etc"]);
        let started = Instant::now();
        timed(&mut self.command(&args))?;
        wait_for_200(port, started + ANSWER_TIMEOUT)
            .with_context(|| format!("{} container on port {port}", self.name))?;
        Ok(started.elapsed().as_secs_f64())
    }

    /// `rm -f NAME`; podman's also without its stop timeout, which httpd
    /// as init (it ignores SIGTERM) would otherwise wait out.
    fn remove_args<'a>(&self, name: &'a str) -> Vec<&'a str> {
        match self.name {
            "podman" => vec!["rm", "-f", "-t", "0", name],
            _ => vec!["rm", "-f", name],
        }
    }

    /// Removes a container, running or not, if it exists.
    fn remove(&self, name: &str) {
        let _ = self
            .command(&self.remove_args(name))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Polls `127.0.0.1:port` until a GET answers 200.
fn wait_for_200(port: u16, deadline: Instant) -> anyhow::Result<()> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    loop {
        if http_status(address).is_ok_and(|status| status == 200) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("no HTTP 200 on {address} within {ANSWER_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The status of one `GET` (HTTP/1.0, so the server closes the connection).
fn http_status(address: SocketAddr) -> anyhow::Result<u16> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(1)))?;
    stream.write_all(format!("GET {PATH} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head)?;
    let text = std::str::from_utf8(&head)?;
    text.get(9..12)
        .context("a short status line")?
        .parse()
        .context("a status that is not a number")
}

/// The berth network the benchmark's containers join, and its subnet.
const NETWORK: &str = "berth-bench-net";
const SUBNET: &str = "10.214.0.0/24";

/// Removes the benchmark's berth network when it ends.
struct RemoveNetwork<'a>(&'a Tool);

impl Drop for RemoveNetwork<'_> {
    fn drop(&mut self) {
        let _ = self
            .0
            .command(&["network", "rm", NETWORK])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Removes the benchmark's containers of both tools when it ends, also on
/// an error.
struct Cleanup<'a> {
    tools: &'a [Tool],
    names: Vec<String>,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for name in &self.names {
            for tool in self.tools {
                tool.remove(name);
            }
        }
    }
}

/// Runs the benchmark.
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let debug = args.iter().any(|a| a == "--debug");
    let rest: Vec<String> = args.iter().filter(|a| *a != "--debug").cloned().collect();
    let rounds = Options::parse(&rest, 10, false)?.rounds;
    if !crate::util::is_root() {
        bail!("the network benchmark creates bridges and iptables rules and needs root");
    }
    if usize::from(FIRST_PORT) + 2 * rounds > usize::from(u16::MAX) {
        bail!("--rounds {rounds} needs more ports than there are above {FIRST_PORT}");
    }
    deps::ensure(&["podman", "runc", "containernetworking-plugins", "iptables"])?;
    let fixtures = fixtures::build()?;
    let bin = if debug {
        target_dir().join("debug")
    } else {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        run_command(
            Command::new(&cargo)
                .current_dir(crate::util::workspace_root())
                .args(["build", "--release", "--quiet", "--workspace", "--bins"]),
        )?;
        target_dir().join("release")
    };
    let work = target_dir().join("bench-network");
    if work.exists() {
        std::fs::remove_dir_all(&work).with_context(|| format!("removing {}", work.display()))?;
    }
    std::fs::create_dir_all(&work)?;

    let store = work.join("berth-store");
    let berth = Tool {
        name: "berth",
        base: vec![
            bin.join("berth").to_string_lossy().into_owned(),
            "--root".into(),
            store.to_string_lossy().into_owned(),
        ],
        image: "busybox".into(),
    };
    timed(
        berth
            .command(&["import"])
            .arg(fixtures.join("busybox/rootfs"))
            .args(["busybox", "--cmd", "sh"]),
    )?;
    let podman = podman_tool(&work)?;
    let archive = work.join("busybox.tar");
    timed(berth.command(&["save", "-o"]).arg(&archive).arg("busybox"))?;
    let (_, loaded) = timed(podman.command(&["load", "-i"]).arg(&archive))?;
    // podman names the image as it reads the archive's tag.
    let mut podman = podman;
    podman.image = loaded
        .lines()
        .find_map(|line| line.strip_prefix("Loaded image: "))
        .map(|name| name.trim().to_string())
        .with_context(|| format!("podman load named no image:\n{loaded}"))?;

    // A network of the benchmark's own, on a subnet of its own, so that
    // it never meets the default bridge of another berth store.
    timed(&mut berth.command(&["network", "create", "--subnet", SUBNET, NETWORK]))?;
    let tools = [berth, podman];
    let network = RemoveNetwork(&tools[0]);
    let mut cleanup = Cleanup {
        tools: &tools,
        names: Vec::new(),
    };
    // This machine's open-files hard limit is below podman's default
    // container limit (as in the tests' podman).
    let runtime = [
        "--runtime",
        "runc",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=4096:4096",
    ];
    let on_network = ["--network", NETWORK];
    let extra = |i: usize| -> &[&str] { if i == 1 { &runtime } else { &on_network } };
    // A first round of each, untimed, warms the page cache and creates the
    // tools' bridges.
    for (i, tool) in tools.iter().enumerate() {
        let name = format!("berth-bench-net-warm-{}", tool.name);
        cleanup.names.push(name.clone());
        tool.until_first_answer(&name, FIRST_PORT - 1 - i as u16, extra(i))?;
        tool.remove(&name);
    }
    let mut samples = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let tool = &tools[i];
            let name = format!("berth-bench-net-{round}-{}", tool.name);
            cleanup.names.push(name.clone());
            let port = FIRST_PORT + (2 * round + i) as u16;
            samples[i].push(tool.until_first_answer(&name, port, extra(i))? * 1000.0);
            tool.remove(&name);
        }
    }
    drop(cleanup);
    drop(network);

    let (b, p) = (median(&mut samples[0]), median(&mut samples[1]));
    println!(
        "run -d -p HOST:80 busybox httpd until the first HTTP 200 on 127.0.0.1:HOST, {rounds} alternating rounds (medians){}",
        if debug { ", DEBUG binaries" } else { "" }
    );
    println!("{:<12} {:>12} {:>12} {:>8}", "", "berth", "podman", "ratio");
    println!("{:<12} {:>10.1}ms {:>10.1}ms {:>7.2}x", "wall", b, p, b / p);
    println!("target: at most 0.50x podman's median");
    std::fs::remove_dir_all(&work).ok();
    Ok(())
}

/// podman with storage of its own under `work`.
fn podman_tool(work: &Path) -> anyhow::Result<Tool> {
    let dir = work.join("podman");
    std::fs::create_dir_all(&dir)?;
    let program = which("podman")?;
    let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
    Ok(Tool {
        name: "podman",
        base: vec![
            program.to_string_lossy().into_owned(),
            "--root".into(),
            path("root"),
            "--runroot".into(),
            path("runroot"),
            "--tmpdir".into(),
            path("tmp"),
            "--storage-driver".into(),
            "vfs".into(),
            "--cgroup-manager".into(),
            "cgroupfs".into(),
            "--events-backend".into(),
            "none".into(),
        ],
        image: String::new(),
    })
}

fn which(program: &str) -> anyhow::Result<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
        .with_context(|| format!("{program} is not installed; run 'cargo xtask deps'"))
}
