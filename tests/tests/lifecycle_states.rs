//! End to end: a container's life through docker's states and commands
//! (`create`, `start`, `pause`, `unpause`, `stop`, `restart`, `kill`, `wait`,
//! `rename`, `rm`, `container prune`), `ps -a` after each step, docker's
//! messages and exit codes for the transitions docker refuses, a stop of
//! several containers in parallel, a pause made through the runtime behind
//! berth's back, and `exec -it` with a store path too long for a socket.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use berth_e2e::{bins, require};
use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// A store of its own holding `busybox`, at `store`.
struct Env {
    _dir: TempDir,
    store: PathBuf,
}

impl Env {
    fn new() -> Env {
        Env::at_depth("")
    }

    /// A store under `suffix` in a fresh temporary directory (a long suffix
    /// makes every path under the store long).
    fn at_depth(suffix: &str) -> Env {
        require::root();
        let dir = tempfile::Builder::new()
            .prefix("berth-life-")
            .tempdir()
            .unwrap();
        let store = dir.path().join(suffix).join("store");
        fs::create_dir_all(&store).unwrap();
        let env = Env { _dir: dir, store };
        let rootfs = bins::fixtures().join("busybox/rootfs");
        let rootfs = rootfs.to_str().unwrap();
        env.ok(&["import", rootfs, "busybox", "--cmd", "sh"]);
        env
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bins::berth());
        cmd.arg("--root").arg(&self.store).args(args);
        cmd
    }

    fn berth(&self, args: &[&str]) -> Output {
        self.command(args).stdin(Stdio::null()).output().unwrap()
    }

    /// Runs berth and fails the test unless it succeeds; returns stdout.
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

    /// Runs berth, expects it to fail with `code`, and returns its stderr.
    fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.berth(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(code), "berth {args:?}: {stderr}");
        stderr
    }

    /// The STATUS column of the container `name` in `ps -a`.
    fn status(&self, name: &str) -> String {
        let ps = self.ok(&["ps", "-a", "--format", "json"]);
        for line in ps.lines() {
            let row: serde_json::Value = serde_json::from_str(line).unwrap();
            if row["Names"] == name {
                return row["Status"].as_str().unwrap().to_string();
            }
        }
        panic!("no container {name} in ps -a:\n{ps}")
    }

    /// The row of `name` in the `ps -a` table.
    fn table_row(&self, name: &str) -> String {
        let ps = self.ok(&["ps", "-a"]);
        assert!(ps.starts_with("CONTAINER ID   IMAGE"), "{ps}");
        ps.lines()
            .find(|l| l.ends_with(&format!("   {name}")))
            .unwrap_or_else(|| panic!("no row for {name}:\n{ps}"))
            .to_string()
    }

    /// Removes every container left, whatever the test's outcome.
    fn remove_all(&self) {
        let ids = self.ok(&["ps", "-aq", "--no-trunc"]);
        for id in ids.lines() {
            let _ = self.berth(&["rm", "-f", id]);
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        self.remove_all();
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A process that ignores SIGTERM, so only the stop timeout's SIGKILL ends it.
const STUBBORN: &[&str] = &["sh", "-c", "trap '' TERM; while true; do sleep 1; done"];

#[test]
fn a_container_walks_through_dockers_states_with_ps_after_each_step() {
    let env = Env::new();
    let mut create = vec!["create", "--name", "walker", "-e", "GREETING=hi", "busybox"];
    create.extend(STUBBORN);
    let id = env.ok(&create).trim().to_string();
    assert_eq!(id.len(), 64, "create prints the full id: {id}");
    let row = env.table_row("walker");
    assert!(
        row.starts_with(&id[..12]) && row.contains("   Created   "),
        "{row}"
    );
    assert!(
        !env.ok(&["ps"]).contains("walker"),
        "ps without -a shows no created container"
    );

    assert_eq!(env.ok(&["start", "walker"]), "walker\n");
    assert!(
        env.status("walker").starts_with("Up "),
        "{}",
        env.status("walker")
    );
    assert!(env.ok(&["ps"]).contains("walker"));
    // `create` took run's flags: the environment is the container's.
    assert_eq!(
        env.ok(&["exec", "walker", "sh", "-c", "echo $GREETING"]),
        "hi\n"
    );
    // A second start of a running container succeeds quietly, as docker's.
    assert_eq!(env.ok(&["start", "walker"]), "walker\n");

    assert_eq!(env.ok(&["pause", "walker"]), "walker\n");
    let status = env.status("walker");
    assert!(
        status.starts_with("Up ") && status.ends_with(" (Paused)"),
        "{status}"
    );
    assert!(
        env.ok(&["ps"]).contains("(Paused)"),
        "ps shows paused containers"
    );
    let err = env.fails(&["pause", "walker"], 1);
    assert!(
        err.contains(&format!("Container {id} is already paused")),
        "{err}"
    );
    let err = env.fails(&["start", "walker"], 1);
    assert!(
        err.contains("cannot start a paused container, try unpause instead"),
        "{err}"
    );
    let err = env.fails(&["rm", "walker"], 1);
    assert!(
        err.contains("cannot remove container \"/walker\": container is paused: unpause and then stop the container before attempting removal or force remove"),
        "{err}"
    );

    assert_eq!(env.ok(&["unpause", "walker"]), "walker\n");
    assert!(!env.status("walker").contains("Paused"));
    let err = env.fails(&["unpause", "walker"], 1);
    assert!(
        err.contains(&format!("Container {id} is not paused")),
        "{err}"
    );
    let err = env.fails(&["rm", "walker"], 1);
    assert!(
        err.contains("container is running: stop the container before removing or force remove"),
        "{err}"
    );

    assert_eq!(env.ok(&["stop", "-t", "1", "walker"]), "walker\n");
    let status = env.status("walker");
    assert!(status.starts_with("Exited (137) "), "{status}");
    assert!(status.ends_with(" ago"), "{status}");
    let err = env.fails(&["pause", "walker"], 1);
    assert!(
        err.contains(&format!("Container {id} is not running")),
        "{err}"
    );
    let err = env.fails(&["kill", "walker"], 1);
    assert!(
        err.contains(&format!(
            "Cannot kill container: walker: Container {id} is not running"
        )),
        "{err}"
    );
    // A stop of a stopped container succeeds, as docker's.
    assert_eq!(env.ok(&["stop", "walker"]), "walker\n");

    // What the container wrote survives its restart.
    env.ok(&["restart", "-t", "1", "walker"]);
    assert!(env.status("walker").starts_with("Up "));
    env.ok(&["exec", "walker", "sh", "-c", "echo kept > /kept"]);
    env.ok(&["restart", "-t", "1", "walker"]);
    assert!(env.status("walker").starts_with("Up "));
    assert_eq!(env.ok(&["exec", "walker", "cat", "/kept"]), "kept\n");

    env.ok(&["stop", "-t", "1", "walker"]);
    assert_eq!(env.ok(&["rm", "walker"]), "walker\n");
    assert!(!env.ok(&["ps", "-a"]).contains("walker"));
    let left: Vec<_> = fs::read_dir(env.store.join("containers"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // Every mount of its root filesystem (one per start) is gone too.
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let store = env.store.to_string_lossy().into_owned();
    let stale: Vec<&str> = mounts.lines().filter(|l| l.contains(&store)).collect();
    assert!(stale.is_empty(), "mounts left under the store: {stale:#?}");
}

#[test]
fn ps_filters_and_limits_as_docker() {
    let env = Env::new();
    env.ok(&["run", "--name", "ok", "busybox", "true"]);
    let _ = env.berth(&["run", "--name", "bad", "busybox", "sh", "-c", "exit 3"]);
    // Creation times are kept in seconds: a second apart, -n has an order.
    std::thread::sleep(Duration::from_millis(1100));
    env.ok(&["create", "--name", "fresh", "busybox"]);
    std::thread::sleep(Duration::from_millis(1100));
    env.ok(&["run", "-d", "--name", "up", "busybox", "sleep", "60"]);
    let names = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["ps", "--format", "json"];
        all.extend(args);
        let mut names: Vec<String> = env
            .ok(&all)
            .lines()
            .map(|l| {
                let row: serde_json::Value = serde_json::from_str(l).unwrap();
                row["Names"].as_str().unwrap().to_string()
            })
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(&[]), ["up"]);
    assert_eq!(names(&["-a"]), ["bad", "fresh", "ok", "up"]);
    assert_eq!(names(&["--filter", "status=exited"]), ["bad", "ok"]);
    assert_eq!(
        names(&["-f", "status=exited", "-f", "status=created"]),
        ["bad", "fresh", "ok"]
    );
    assert_eq!(
        names(&["-a", "-f", "status=exited", "-f", "name=ba"]),
        ["bad"]
    );
    assert_eq!(names(&["-f", "exited=3"]), ["bad"]);
    assert_eq!(names(&["-a", "-f", "ancestor=busybox"]).len(), 4);
    assert_eq!(
        names(&["-a", "-f", "ancestor=alpine"]),
        Vec::<String>::new()
    );
    assert_eq!(names(&["-l"]), ["up"]);
    assert_eq!(names(&["-n", "2"]), ["fresh", "up"]);
    let err = env.fails(&["ps", "--filter", "colour=red"], 1);
    assert!(err.contains("invalid filter 'colour'"), "{err}");
}

#[test]
fn a_pause_through_the_runtime_shows_in_ps() {
    let env = Env::new();
    let id = env.ok(&["run", "-d", "--name", "frozen", "busybox", "sleep", "60"]);
    let id = id.trim();
    let runtime = |action: &str| {
        let out = Command::new(bins::berth_runtime())
            .arg("--root")
            .arg(env.store.join("containers").join(id).join("runtime"))
            .args([action, id])
            .output()
            .unwrap();
        assert!(out.status.success(), "{action}: {}", text(&out.stderr));
    };
    runtime("pause");
    assert!(
        env.status("frozen").ends_with("(Paused)"),
        "{}",
        env.status("frozen")
    );
    let inspected = env.ok(&[
        "inspect",
        "-f",
        "{{.State.Status}} {{.State.Paused}}",
        "frozen",
    ]);
    assert_eq!(inspected, "paused true\n");
    let listed = env.ok(&["container", "ls", "--format", "{{.Names}}\\t{{.State}}"]);
    assert_eq!(listed, "frozen\tpaused\n");
    let err = env.fails(&["exec", "frozen", "true"], 125);
    assert!(
        err.contains("is paused, unpause the container before exec"),
        "{err}"
    );
    runtime("resume");
    assert!(!env.status("frozen").contains("Paused"));
    env.ok(&["rm", "-f", "frozen"]);
}

#[test]
fn stop_stops_containers_in_parallel() {
    let env = Env::new();
    let names: Vec<String> = (0..5).map(|i| format!("stubborn{i}")).collect();
    for name in &names {
        let mut run = vec!["run", "-d", "--name", name.as_str(), "busybox"];
        run.extend(STUBBORN);
        env.ok(&run);
    }
    let mut stop = vec!["stop", "-t", "2"];
    stop.extend(names.iter().map(String::as_str));
    let started = Instant::now();
    let out = env.ok(&stop);
    let took = started.elapsed();
    // One after another this takes five timeouts (10 s); in parallel one.
    assert!(took < Duration::from_secs(6), "stop took {took:?}");
    assert!(
        took >= Duration::from_secs(2),
        "the timeout was not waited for: {took:?}"
    );
    assert_eq!(
        out,
        names.iter().map(|n| format!("{n}\n")).collect::<String>()
    );
    for name in &names {
        assert!(
            env.status(name).starts_with("Exited (137)"),
            "{}",
            env.status(name)
        );
    }
}

#[test]
fn wait_kill_rename_and_container_prune() {
    let env = Env::new();
    // wait: blocks until the container ends, prints its code.
    env.ok(&[
        "run",
        "-d",
        "--name",
        "seven",
        "busybox",
        "sh",
        "-c",
        "sleep 1; exit 7",
    ]);
    let started = Instant::now();
    assert_eq!(env.ok(&["wait", "seven"]), "7\n");
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert_eq!(
        env.ok(&["container", "wait", "seven"]),
        "7\n",
        "an exited one at once"
    );

    // kill -s: the container's process gets the signal it names.
    env.ok(&[
        "run",
        "-d",
        "--name",
        "listener",
        "busybox",
        "sh",
        "-c",
        "trap 'echo got-usr1; exit 5' USR1; echo ready; while true; do sleep 0.1; done",
    ]);
    wait_for_log(&env, "listener", "ready");
    assert_eq!(env.ok(&["kill", "-s", "USR1", "listener"]), "listener\n");
    assert_eq!(env.ok(&["wait", "listener"]), "5\n");
    assert!(env.ok(&["logs", "listener"]).contains("got-usr1"));

    // rename: the new name finds it, the old does not; a taken name is refused.
    env.ok(&["rename", "listener", "renamed"]);
    assert!(env.status("renamed").starts_with("Exited (5)"));
    let err = env.fails(&["rename", "listener", "x"], 1);
    assert!(err.contains("no such container: listener"), "{err}");
    let err = env.fails(&["rename", "renamed", "seven"], 1);
    assert!(
        err.contains("the container name 'seven' is already in use"),
        "{err}"
    );

    // container prune: the stopped ones go, the running one stays.
    env.ok(&["run", "-d", "--name", "alive", "busybox", "sleep", "60"]);
    let seven = env.ok(&["ps", "-aq", "--no-trunc", "-f", "name=seven"]);
    let out = env.ok(&["container", "prune", "-f"]);
    assert!(out.starts_with("Deleted Containers:\n"), "{out}");
    assert!(out.contains(seven.trim()), "{out}");
    assert!(out.contains("\nTotal reclaimed space: "), "{out}");
    let left = env.ok(&["container", "ls", "-a", "--format", "json"]);
    assert_eq!(left.lines().count(), 1, "{left}");
    assert!(left.contains("\"alive\""), "{left}");
    env.ok(&["container", "rm", "-f", "alive"]);
}

#[test]
fn start_attaches_with_a_and_a_failed_start_keeps_the_container() {
    let env = Env::new();
    env.ok(&[
        "create",
        "--name",
        "once",
        "busybox",
        "sh",
        "-c",
        "echo said-$((6*7)); exit 3",
    ]);
    for _ in 0..2 {
        let out = env.berth(&["start", "-a", "once"]);
        assert_eq!(text(&out.stdout), "said-42\n");
        assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
        assert!(
            env.status("once").starts_with("Exited (3)"),
            "{}",
            env.status("once")
        );
    }

    // docker keeps a container whose command is missing; so does berth, twice.
    env.ok(&["create", "--name", "broken", "busybox", "no-such-command"]);
    for _ in 0..2 {
        let err = env.fails(&["start", "broken"], 1);
        assert!(err.contains("no-such-command"), "{err}");
        assert_eq!(env.status("broken"), "Created");
    }
    env.ok(&["rm", "broken", "once"]);
}

#[test]
fn two_starts_at_once_start_the_container_once() {
    let env = Env::new();
    env.ok(&["create", "--name", "racer", "busybox", "sleep", "60"]);
    let children: Vec<_> = (0..3)
        .map(|_| {
            env.command(&["start", "racer"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "racer\n");
    }
    assert!(
        env.status("racer").starts_with("Up "),
        "{}",
        env.status("racer")
    );
    assert_eq!(
        env.ok(&["exec", "racer", "echo", "still-here"]),
        "still-here\n"
    );
    env.ok(&["rm", "-f", "racer"]);
}

fn wait_for_log(env: &Env, name: &str, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !env.ok(&["logs", name]).contains(needle) {
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in the log of {name}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn exec_it_works_with_a_store_path_too_long_for_a_socket() {
    // The store path alone is longer than a socket path may be (108 bytes).
    let env = Env::at_depth(&"long-path-".repeat(12));
    assert!(env.store.as_os_str().len() > 120);
    env.ok(&["run", "-d", "--name", "deep", "busybox", "sleep", "60"]);
    let script = require::program("script", "bsdutils");
    let berth = format!(
        "{} --root {} exec -it deep sh -c 'tty; test -t 0 && echo stdin-is-a-tty; exit 4'",
        bins::berth().display(),
        env.store.display()
    );
    let out = Command::new(script)
        .args(["-qfec", &berth, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = text(&out.stdout).replace('\r', "");
    assert!(
        stdout.contains("/dev/pts/"),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("stdin-is-a-tty\n"), "{stdout}");
    assert_eq!(out.status.code(), Some(4), "{stdout}");
    // `run -t` too.
    let berth = format!(
        "{} --root {} run --rm -t busybox sh -c 'test -t 1 && echo run-tty'",
        bins::berth().display(),
        env.store.display()
    );
    let out = Command::new(require::program("script", "bsdutils"))
        .args(["-qfec", &berth, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        text(&out.stdout).contains("run-tty"),
        "{}",
        text(&out.stdout)
    );
    env.ok(&["rm", "-f", "deep"]);
}
