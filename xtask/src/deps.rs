//! The Debian packages the test suite needs, installed when missing.

use crate::util::{is_root, output, run};
use anyhow::bail;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

/// Every Debian package a test, a fixture or a benchmark uses. Later features
/// add theirs here, so that one command prepares a fresh machine.
pub const PACKAGES: &[&str] = &[
    // Build: libcontainer links libseccomp.
    "libseccomp-dev",
    "pkg-config",
    // Build: libcgroups' cgroup v2 device controller (libbpf-sys) compiles
    // libbpf, which links libelf and zlib.
    "libelf-dev",
    "zlib1g-dev",
    // Fixtures: the busybox root filesystem.
    "busybox-static",
    // Peers: the reference registry and runtime.
    "docker-registry",
    "runc",
    // Registry client tests and benchmark: interop peer and htpasswd files.
    "skopeo",
    "apache2-utils",
    // Frontend: the .dockerignore differential test builds with buildah.
    "buildah",
    // berth build tests: unpack/validate OCI output, load docker archives,
    // read zstd layers; buildah is also the build benchmark's peer.
    "umoci",
    "podman",
    "zstd",
    "tar",
    // berth-runtime tests: real clients (podman through conmon, containerd
    // through its runc shim) and the host ps behind `ps`'s table format.
    "conmon",
    "containerd",
    "procps",
    // The runtime benchmark measures peak RSS under GNU time.
    "time",
    // berth run -t tests run berth under script(1) for a terminal.
    "bsdutils",
    // The store layout test traces berth's fsyncs and renames.
    "strace",
    // Container networking: the CNI plugins berth runs (bridge, host-local,
    // portmap, firewall, tuning, loopback), the iptables they program, and
    // for the published-port tests and benchmark a real HTTP client and
    // `ip` to look for leftover veths.
    "containernetworking-plugins",
    "iptables",
    "curl",
    "iproute2",
];

/// Whether dpkg reports the package as installed.
fn installed(package: &str) -> bool {
    output(Command::new("dpkg-query").args(["-W", "-f=${db:Status-Status}", package]))
        .is_ok_and(|status| status.trim() == "installed")
}

/// Installs the missing packages with apt-get, after an `apt-get update`.
pub fn ensure_installed() -> anyhow::Result<()> {
    ensure(PACKAGES)
}

/// Installs those of `packages` that are missing (`cargo xtask demo` needs
/// only a few).
pub fn ensure(packages: &[&str]) -> anyhow::Result<()> {
    let missing: Vec<&str> = packages.iter().copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        eprintln!(
            "xtask: all {} needed packages are installed",
            packages.len()
        );
        return Ok(());
    }
    if !is_root() {
        bail!(
            "these Debian packages are missing and installing them needs root: {}\n\
             hint: run 'sudo apt-get install {}' or run this task as root",
            missing.join(" "),
            missing.join(" ")
        );
    }
    eprintln!("xtask: installing missing packages: {}", missing.join(" "));
    run(Command::new("apt-get").arg("update").arg("-q"))?;
    // Package scripts must not start daemons (docker-registry, containerd) on
    // the machine's public interfaces: tests start their own on loopback. A
    // policy-rc.d that exits 101 tells invoke-rc.d to start nothing.
    let policy = Path::new("/usr/sbin/policy-rc.d");
    let own_policy = !policy.exists();
    if own_policy {
        fs::write(policy, "#!/bin/sh\nexit 101\n")?;
        fs::set_permissions(policy, fs::Permissions::from_mode(0o755))?;
    }
    let installed_result = run(Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .env("RUNLEVEL", "1"));
    if own_policy {
        fs::remove_file(policy)?;
    }
    installed_result?;
    let still_missing: Vec<&str> = missing.into_iter().filter(|p| !installed(p)).collect();
    if !still_missing.is_empty() {
        bail!("apt-get did not install: {}", still_missing.join(" "));
    }
    Ok(())
}
