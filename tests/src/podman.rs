//! Podman with storage of its own in a temporary directory (so a test never
//! touches the host's images or containers), the vfs driver, cgroupfs, no
//! event log, an empty registry auth file, and berth-runtime as its OCI
//! runtime.

use crate::{bins, require};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The container limits to pass to `podman run`: this machine's open-files
/// hard limit (20000) is below podman's default container limit.
pub const RUN_LIMITS: &[&str] = &[
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=4096:4096",
];

/// A private podman.
pub struct Podman {
    dir: tempfile::TempDir,
    program: PathBuf,
}

impl Podman {
    /// A podman with fresh storage; fails the test if podman is missing.
    pub fn new() -> Podman {
        let podman = Podman {
            dir: tempfile::Builder::new()
                .prefix("berth-podman-")
                .tempdir()
                .unwrap(),
            program: require::program("podman", "podman"),
        };
        std::fs::write(podman.dir.path().join("auth.json"), "{}").unwrap();
        podman
    }

    /// Its directory, for files the test hands it.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `podman args…` with the private storage options.
    pub fn command(&self, args: &[&str]) -> Command {
        let dir = self.dir.path();
        let mut cmd = Command::new(&self.program);
        cmd.arg("--root")
            .arg(dir.join("root"))
            .arg("--runroot")
            .arg(dir.join("runroot"))
            .arg("--tmpdir")
            .arg(dir.join("tmp"))
            .args(["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs"])
            .args(["--events-backend", "none", "--runtime"])
            .arg(bins::berth_runtime())
            .args(args)
            .env("REGISTRY_AUTH_FILE", dir.join("auth.json"))
            .stdin(Stdio::null());
        cmd
    }

    /// Runs podman, fails the test unless it succeeds, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.command(args).output().unwrap();
        assert!(
            out.status.success(),
            "podman {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `podman run --rm` of `image` without a network; returns stdout.
    pub fn run(&self, image: &str, command: &[&str]) -> String {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend_from_slice(RUN_LIMITS);
        args.push(image);
        args.extend_from_slice(command);
        self.ok(&args)
    }
}

impl Default for Podman {
    fn default() -> Self {
        Podman::new()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        // Containers hold mounts under the run root; remove them before the
        // directory goes.
        let _ = self
            .command(&["rm", "--all", "--force", "--time", "0"])
            .output();
    }
}
