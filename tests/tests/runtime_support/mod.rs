//! Shared helpers of the `runtime_*` end-to-end tests: a private state root,
//! unique container ids, and checks that nothing of a container is left.
// Test support: failing loudly with a message is the point here.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use berth_e2e::{bins, require};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// berth-runtime with its own `--root`, removed on drop.
pub struct Runtime {
    pub root: TempDir,
    pub bin: PathBuf,
}

impl Drop for Runtime {
    /// Force-deletes the containers a test left under its root (one that
    /// failed part-way), so that their processes and cgroups go with it
    /// instead of outliving the removed state directory.
    fn drop(&mut self) {
        let Ok(out) = self.cmd(&["list", "--quiet"]).output() else {
            return;
        };
        for id in String::from_utf8_lossy(&out.stdout).lines() {
            let _ = self
                .cmd(&["delete", "--force", id])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Runtime {
    /// Fails the test unless it runs as root and the binary is built.
    pub fn new() -> Runtime {
        require::root();
        Runtime {
            root: tempfile::Builder::new()
                .prefix("berth-rt-root-")
                .tempdir()
                .unwrap(),
            bin: bins::berth_runtime(),
        }
    }

    /// A command with `--root` set and stdio detached from the test.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--root").arg(self.root.path()).args(args);
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Runs a command to completion, capturing its output.
    pub fn output(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// Runs a command that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.output(args);
        assert!(
            out.status.success(),
            "berth-runtime {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs a command that must fail; returns its stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.output(args);
        assert!(
            !out.status.success(),
            "berth-runtime {args:?} should have failed; stdout: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    /// `create` with the container's stdio sent to files under `logs`, so no
    /// pipe of the test is held open by the container.
    pub fn create(&self, id: &str, bundle: &Path, logs: &Path, extra: &[&str]) {
        let stdout = std::fs::File::create(logs.join(format!("{id}.out"))).unwrap();
        let stderr = std::fs::File::create(logs.join(format!("{id}.err"))).unwrap();
        let mut args = vec!["create", "--bundle", bundle.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.push(id);
        let status = self
            .cmd(&args)
            .stdout(stdout)
            .stderr(stderr)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "create {id} failed: {}",
            std::fs::read_to_string(logs.join(format!("{id}.err"))).unwrap_or_default()
        );
    }

    /// `run --detach` with the container's stdio on /dev/null; the runtime's
    /// own errors are collected through a file, as a pipe would be held open
    /// by the container.
    pub fn run_detached(&self, id: &str, bundle: &Path) {
        let errors = tempfile::tempfile().unwrap();
        let status = self
            .cmd(&["run", "--detach", "--bundle", bundle.to_str().unwrap(), id])
            .stdout(Stdio::null())
            .stderr(errors.try_clone().unwrap())
            .status()
            .unwrap();
        if !status.success() {
            use std::io::{Read, Seek};
            let mut errors = errors;
            let mut text = String::new();
            errors.rewind().unwrap();
            errors.read_to_string(&mut text).unwrap();
            panic!("run -d {id} failed ({status}): {text}");
        }
    }

    /// The parsed `state` of a container.
    pub fn state(&self, id: &str) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["state", id])).unwrap()
    }

    /// Polls until the container reaches `status`.
    pub fn wait_status(&self, id: &str, status: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            // A container a concurrent `run` is still creating does not exist yet.
            let out = self.output(&["state", id]);
            let state: serde_json::Value =
                serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
            if state["status"] == status {
                return state;
            }
            assert!(
                Instant::now() < deadline,
                "container {id} did not become {status}: {state}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Asserts that nothing of the container is left: no state directory, no
    /// cgroup directory in any hierarchy, no mount naming it.
    pub fn assert_gone(&self, id: &str) {
        assert!(
            !self.root.path().join(id).exists(),
            "the state directory of {id} is left behind"
        );
        assert_no_leftovers(id);
    }
}

/// A container id unique to this test process and call.
pub fn unique_id(tag: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "berth-{tag}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Asserts no cgroup directory in any hierarchy and no host mount names `id`.
pub fn assert_no_leftovers(id: &str) {
    let cgroups = berth_e2e::cgroups::dirs_naming(id);
    assert!(
        cgroups.is_empty(),
        "cgroups of {id} are left behind: {cgroups:?}"
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let leaked: Vec<&str> = mounts.lines().filter(|l| l.contains(id)).collect();
    assert!(
        leaked.is_empty(),
        "mounts of {id} are left behind: {leaked:?}"
    );
}

/// Reads a file the container writes, waiting until it has `want` in it.
pub fn wait_for_content(path: &Path, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(want) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{} never contained {want:?}; it has {text:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
