//! End to end: `berth stats` and `berth top` on real containers (busybox
//! fixture, berth-runtime, real cgroups): a busy container's CPU %, its
//! processes and memory limit, exited containers with `-a`, and a stream
//! whose reader goes away.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod build_common;

use berth_e2e::bins;
use build_common::BuildEnv;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A store holding `busybox`; every container in it is removed on drop,
/// also when the test fails.
struct Env {
    build: BuildEnv,
}

impl Env {
    fn new() -> Env {
        Env {
            build: BuildEnv::new(),
        }
    }

    fn store(&self) -> &Path {
        self.build.store.path()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bins::berth());
        cmd.arg("--root").arg(self.store()).args(args);
        cmd
    }

    fn berth(&self, args: &[&str]) -> Output {
        self.command(args).stdin(Stdio::null()).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.berth(args);
        assert!(
            out.status.success(),
            "berth {args:?} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `stats --no-stream --format json` rows of the named containers.
    fn stats_json(&self, extra: &[&str]) -> Vec<Value> {
        let mut args = vec!["stats", "--no-stream", "--format", "json"];
        args.extend_from_slice(extra);
        self.ok(&args)
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let ids = self.berth(&["ps", "-a", "-q"]);
        for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
            let _ = self.berth(&["rm", "-f", id]);
        }
    }
}

fn percent(text: &Value) -> f64 {
    text.as_str()
        .unwrap()
        .trim_end_matches('%')
        .parse()
        .unwrap()
}

#[test]
fn stats_of_a_busy_container_show_cpu_memory_and_pids() {
    let env = Env::new();
    env.ok(&[
        "run",
        "-d",
        "--name",
        "stats-busy",
        "--memory",
        "64m",
        "busybox",
        "sh",
        "-c",
        "while :; do :; done",
    ]);
    env.ok(&[
        "run",
        "-d",
        "--name",
        "stats-idle",
        "busybox",
        "sleep",
        "1000",
    ]);

    let rows = env.stats_json(&["stats-busy"]);
    assert_eq!(rows.len(), 1, "{rows:?}");
    let row = &rows[0];
    assert_eq!(row["Name"], "stats-busy");
    assert_eq!(row["ID"].as_str().unwrap().len(), 12);
    assert!(percent(&row["CPUPerc"]) > 10.0, "a busy loop: {row}");
    assert!(
        row["PIDs"].as_str().unwrap().parse::<u64>().unwrap() >= 1,
        "{row}"
    );
    // The limit is the cgroup's, read back from the container's cgroup.
    let (usage, limit) = row["MemUsage"].as_str().unwrap().split_once(" / ").unwrap();
    assert!(usage.ends_with('B') && usage != "0B", "{row}");
    assert_eq!(limit, "64MiB", "{row}");
    let mem = percent(&row["MemPerc"]);
    assert!(mem > 0.0 && mem < 100.0, "{row}");

    // No --memory: the limit is the host's memory, as docker shows it, and a
    // few hundred KiB of it rounds to 0.00%.
    let row = &env.stats_json(&["stats-idle"])[0];
    let (_, limit) = row["MemUsage"].as_str().unwrap().split_once(" / ").unwrap();
    assert!(limit.ends_with("GiB") || limit.ends_with("MiB"), "{row}");
    assert_ne!(limit, "64MiB", "{row}");
    assert!(percent(&row["MemPerc"]) < 1.0, "{row}");

    // A Go template with a tab, as docker takes it.
    let out = env.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}}\\t{{.CPUPerc}}",
        "stats-busy",
    ]);
    let (name, cpu) = out.trim_end().split_once('\t').unwrap();
    assert_eq!(name, "stats-busy", "{out:?}");
    assert!(cpu.ends_with('%'), "{out:?}");

    // The default table: docker's header, one row per running container.
    let table = env.ok(&["stats", "--no-stream"]);
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split("   ").map(str::trim).collect();
    let header: Vec<&str> = header.into_iter().filter(|h| !h.is_empty()).collect();
    assert_eq!(
        header,
        [
            "CONTAINER ID",
            "NAME",
            "CPU %",
            "MEM USAGE / LIMIT",
            "MEM %",
            "NET I/O",
            "BLOCK I/O",
            "PIDS"
        ],
        "{table}"
    );
    let names: Vec<&str> = lines
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{table}");
    assert!(names.contains(&"stats-busy") && names.contains(&"stats-idle"));

    // The idle one's CPU % (the average since it started, as podman's
    // one-shot stats) falls below 5 % once its start-up is long past, and
    // --no-trunc shows the whole id.
    let deadline = Instant::now() + Duration::from_secs(15);
    let rows = loop {
        let rows = env.stats_json(&["--no-trunc", "stats-idle"]);
        if percent(&rows[0]["CPUPerc"]) < 5.0 {
            break rows;
        }
        assert!(Instant::now() < deadline, "{:?}", rows[0]);
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(rows[0]["ID"].as_str().unwrap().len(), 64);

    let out = env.berth(&["stats", "--no-stream", "stats-nosuch"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no such container: stats-nosuch"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn exited_containers_show_with_all_and_zeros() {
    let env = Env::new();
    env.ok(&["run", "--name", "stats-done", "busybox", "true"]);
    env.ok(&[
        "run", "-d", "--name", "stats-up", "busybox", "sleep", "1000",
    ]);

    let running: Vec<String> = env
        .stats_json(&[])
        .iter()
        .map(|r| r["Name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(running, ["stats-up"]);

    let all = env.stats_json(&["-a"]);
    let done = all.iter().find(|r| r["Name"] == "stats-done").unwrap();
    assert_eq!(done["CPUPerc"], "0.00%");
    assert_eq!(done["MemUsage"], "0B / 0B");
    assert_eq!(done["NetIO"], "0B / 0B");
    assert_eq!(done["PIDs"], "0");
    assert_eq!(all.len(), 2, "{all:?}");
}

#[test]
fn top_lists_the_containers_processes_and_no_others() {
    let env = Env::new();
    env.ok(&["run", "-d", "--name", "top-one", "busybox", "sleep", "1001"]);
    env.ok(&["run", "-d", "--name", "top-two", "busybox", "sleep", "1002"]);

    let out = env.ok(&["top", "top-one"]);
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 1, "{out}");
    assert!(rows[0].ends_with("sleep 1001"), "{out}");
    assert!(!out.contains("sleep 1002"), "{out}");

    // ps options after the name, as docker passes them on.
    let out = env.ok(&["top", "top-two", "-o", "pid,args"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["PID", "COMMAND"]
    );
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[1].ends_with("sleep 1002"), "{out}");

    // A stopped container has no processes to show.
    env.ok(&["run", "--name", "top-done", "busybox", "true"]);
    let out = env.berth(&["top", "top-done"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("container top-done is not running"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_stream_ends_quietly_when_its_reader_goes() {
    let env = Env::new();
    env.ok(&[
        "run",
        "-d",
        "--name",
        "stats-stream",
        "busybox",
        "sleep",
        "1000",
    ]);
    let mut child = env
        .command(&["stats"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // As `berth stats | head -1`: one line read, then the pipe closed.
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.contains("CONTAINER ID"), "{first:?}");
    assert!(first.starts_with("\x1b[2J\x1b[H"), "{first:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("berth stats went on writing to a closed pipe");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    assert!(status.success(), "{status}");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}
