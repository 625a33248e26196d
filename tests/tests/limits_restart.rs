//! End to end: resource limits (`run --memory --cpus --pids-limit --ulimit
//! --shm-size`) read back from the container's own cgroup files and from
//! inside it, `berth update` changing them, and restart policies: `always`
//! brings a killed process back, `on-failure:N` gives up after N restarts,
//! and `berth stop` is never undone. With berth-runtime and Debian's runc.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod build_common;

use berth_e2e::{bins, require};
use build_common::BuildEnv;
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A store holding `busybox`, and a runtime. Dropping it removes every
/// container it made, also when a test fails.
struct Env {
    build: BuildEnv,
    runtime: PathBuf,
}

impl Env {
    fn new(runtime: PathBuf) -> Env {
        Env {
            build: BuildEnv::new(),
            runtime,
        }
    }

    fn store(&self) -> &Path {
        self.build.store.path()
    }

    fn berth(&self, args: &[&str]) -> Output {
        Command::new(bins::berth())
            .arg("--root")
            .arg(self.store())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
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

    /// `berth run -d` with this env's runtime; returns the id.
    fn run_detached(&self, flags: &[&str], command: &[&str]) -> String {
        let runtime = self.runtime.to_string_lossy().into_owned();
        let mut args = vec!["run", "-d", "--runtime", &runtime];
        args.extend_from_slice(flags);
        args.push("busybox");
        args.extend_from_slice(command);
        self.ok(&args).trim().to_string()
    }

    fn record(&self, id: &str) -> Value {
        let path = self
            .store()
            .join("containers")
            .join(id)
            .join("container.json");
        serde_json::from_slice(&fs::read(&path).unwrap()).unwrap()
    }

    /// Polls the record until `done` holds; fails after `limit`.
    fn wait_record(&self, id: &str, limit: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let record = self.record(id);
            if done(&record) {
                return record;
            }
            assert!(
                Instant::now() < deadline,
                "the container never reached the wanted state: {record:#}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let Ok(entries) = fs::read_dir(self.store().join("containers")) else {
            return;
        };
        for entry in entries.flatten() {
            let id = entry.file_name().to_string_lossy().into_owned();
            let _ = self.berth(&["rm", "-f", &id]);
        }
    }
}

fn status(record: &Value) -> &str {
    record["state"]["status"].as_str().unwrap_or_default()
}

fn pid(record: &Value) -> i32 {
    record["state"]["pid"].as_i64().unwrap() as i32
}

/// The directory of `pid`'s cgroup for `controller` (v1), or of its unified
/// cgroup (v2), from `/proc/PID/cgroup`.
fn cgroup_dir(pid: i32, controller: &str) -> PathBuf {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for line in text.lines() {
        // hierarchy-id:controllers:path, and the path may hold colons
        // (youki's `/:youki:<id>`).
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (
            fields.next().unwrap(),
            fields.next().unwrap(),
            fields.next().unwrap(),
        );
        let relative = path.trim_start_matches('/');
        if controllers.split(',').any(|c| c == controller) {
            for mount in [controller.to_string(), controllers.to_string()] {
                let dir = Path::new("/sys/fs/cgroup").join(mount).join(relative);
                if dir.is_dir() {
                    return dir;
                }
            }
        }
    }
    // cgroup v2 only: the unified hierarchy holds every controller.
    let unified = text
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .expect("no cgroup of the container's process");
    Path::new("/sys/fs/cgroup")
        .join(unified.trim_start_matches('/'))
        .to_path_buf()
}

fn is_v2() -> bool {
    Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

fn read(dir: &Path, file: &str) -> String {
    fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.join(file).display()))
        .trim()
        .to_string()
}

fn limits_reach_the_cgroup_and_update_changes_them(runtime: PathBuf) {
    let env = Env::new(runtime);
    let id = env.run_detached(
        &[
            "--cpus=1.5",
            "--memory=512m",
            "--pids-limit",
            "100",
            "--ulimit",
            "nofile=1024:2048",
            "--shm-size",
            "128m",
        ],
        &["sleep", "300"],
    );
    let pid = pid(&env.record(&id));
    let memory = cgroup_dir(pid, "memory");
    let cpu = cgroup_dir(pid, "cpu");
    let pids = cgroup_dir(pid, "pids");
    if is_v2() {
        assert_eq!(read(&memory, "memory.max"), "536870912");
        assert_eq!(read(&memory, "memory.swap.max"), "536870912");
        assert_eq!(read(&cpu, "cpu.max"), "150000 100000");
    } else {
        assert_eq!(read(&memory, "memory.limit_in_bytes"), "536870912");
        // Docker's default: as much swap as memory, so twice the memory.
        assert_eq!(read(&memory, "memory.memsw.limit_in_bytes"), "1073741824");
        assert_eq!(read(&cpu, "cpu.cfs_quota_us"), "150000");
        assert_eq!(read(&cpu, "cpu.cfs_period_us"), "100000");
    }
    assert_eq!(read(&pids, "pids.max"), "100");

    let inside = env.ok(&["exec", &id, "sh", "-c", "ulimit -n; ulimit -Hn"]);
    assert_eq!(inside, "1024\n2048\n");
    let mounts = env.ok(&["exec", &id, "cat", "/proc/mounts"]);
    let shm = mounts
        .lines()
        .find(|l| l.split(' ').nth(1) == Some("/dev/shm"))
        .unwrap();
    assert!(shm.contains("size=131072k"), "{shm}");

    assert_eq!(
        env.ok(&[
            "update",
            "--memory",
            "256m",
            "--pids-limit",
            "50",
            &id[..12]
        ])
        .trim(),
        &id[..12]
    );
    if is_v2() {
        assert_eq!(read(&memory, "memory.max"), "268435456");
    } else {
        assert_eq!(read(&memory, "memory.limit_in_bytes"), "268435456");
    }
    assert_eq!(read(&pids, "pids.max"), "50");
    let record = env.record(&id);
    assert_eq!(record["resources"]["Memory"], 268435456);
    assert_eq!(record["resources"]["NanoCpus"], 1_500_000_000i64);
    assert_eq!(record["resources"]["PidsLimit"], 50);

    // Raising the memory past the swap total needs the swap too (docker's rule).
    let out = env.berth(&["update", "--memory", "2g", &id]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Memory limit should be smaller than already set memoryswap limit"),
        "{err}"
    );
    env.ok(&["rm", "-f", &id]);
}

#[test]
fn limits_reach_the_cgroup_and_update_changes_them_with_berth_runtime() {
    limits_reach_the_cgroup_and_update_changes_them(bins::berth_runtime());
}

#[test]
fn limits_reach_the_cgroup_and_update_changes_them_with_runc() {
    limits_reach_the_cgroup_and_update_changes_them(require::program("runc", "runc"));
}

#[test]
fn invalid_limits_are_refused_with_dockers_messages() {
    let env = Env::new(bins::berth_runtime());
    for (flags, want) in [
        (
            &["--memory", "4m"][..],
            "Minimum memory limit allowed is 6MB",
        ),
        (
            &["--memory", "64m", "--memory-swap", "32m"],
            "Minimum memoryswap limit should be larger than memory limit",
        ),
        (
            &["--cpus", "1", "--cpu-quota", "50000"],
            "Conflicting options: Nano CPUs and CPU Quota cannot both be set",
        ),
        (
            &["--rm", "--restart", "always"],
            "Conflicting options: --restart and --rm",
        ),
        (&["--memory", "lots"], "invalid size: 'lots'"),
        (&["--restart", "sometimes"], "unknown policy 'sometimes'"),
        (
            &["--ulimit", "nofile=9:3"],
            "soft limit must be less than or equal",
        ),
    ] {
        let mut args = vec!["run", "-d"];
        args.extend_from_slice(flags);
        args.extend(["busybox", "true"]);
        let out = env.berth(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flags:?} was accepted");
        assert!(err.contains(want), "{flags:?}: {err}");
    }
    assert!(
        fs::read_dir(env.store().join("containers"))
            .map(|d| d.count())
            .unwrap_or(0)
            == 0,
        "a refused run left a container"
    );
}

#[test]
fn restart_always_brings_a_killed_process_back_and_stop_is_final() {
    let env = Env::new(bins::berth_runtime());
    let id = env.run_detached(&["--restart", "always"], &["sleep", "300"]);
    let first = pid(&env.record(&id));
    // SAFETY: kill has no memory-safety preconditions; the pid is the
    // container's process, alive as the record was just read.
    assert_eq!(unsafe { libc::kill(first, libc::SIGKILL) }, 0);
    let record = env.wait_record(&id, Duration::from_secs(20), |r| {
        status(r) == "running" && r["restart_count"] == 1
    });
    let second = pid(&record);
    assert_ne!(second, first);
    assert!(Path::new(&format!("/proc/{second}")).exists());
    assert!(env.ok(&["ps"]).contains("Up "));

    // Killed again: the count goes on.
    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(second, libc::SIGKILL) }, 0);
    env.wait_record(&id, Duration::from_secs(20), |r| {
        status(r) == "running" && r["restart_count"] == 2
    });

    env.ok(&["stop", "-t", "1", &id]);
    let stopped = env.record(&id);
    assert_eq!(status(&stopped), "exited", "{stopped:#}");
    // Longer than any backoff so far: nothing brings it back.
    std::thread::sleep(Duration::from_secs(2));
    let later = env.record(&id);
    assert_eq!(status(&later), "exited", "{later:#}");
    assert_eq!(later["restart_count"], 2);
    assert!(env.ok(&["ps", "-a"]).contains("Exited (137)"));
    env.ok(&["rm", &id]);
    // The rootfs was kept mounted across restarts; rm leaves nothing.
    let store = env.store().to_string_lossy().into_owned();
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&store), "mounts left under the store");
}

#[test]
fn on_failure_gives_up_after_the_maximum_and_ignores_success() {
    let env = Env::new(bins::berth_runtime());
    let failing = env.run_detached(
        &["--restart", "on-failure:2"],
        &["sh", "-c", "echo ran; exit 3"],
    );
    let record = env.wait_record(&failing, Duration::from_secs(20), |r| {
        status(r) == "exited" && r["restart_count"] == 2
    });
    assert_eq!(record["state"]["code"], 3);
    assert_eq!(
        record["restart_policy"],
        serde_json::json!({"Name": "on-failure", "MaximumRetryCount": 2})
    );
    std::thread::sleep(Duration::from_secs(1));
    let later = env.record(&failing);
    assert_eq!(
        (status(&later), &later["restart_count"]),
        ("exited", &2.into())
    );
    // The first run and both restarts wrote to the same log.
    assert_eq!(env.ok(&["logs", &failing]), "ran\nran\nran\n");

    let succeeding = env.run_detached(&["--restart", "on-failure"], &["true"]);
    let record = env.wait_record(&succeeding, Duration::from_secs(20), |r| {
        status(r) == "exited"
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(env.record(&succeeding)["restart_count"], 0, "{record:#}");
}
