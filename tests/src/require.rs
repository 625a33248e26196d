//! Prerequisite checks that fail the test with a message naming what is missing.

use std::path::{Path, PathBuf};

/// Fails the test unless it runs as root.
pub fn root() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert!(
        euid == 0,
        "this test needs root (it creates namespaces, mounts and cgroups); \
         run the suite with 'cargo xtask ci' as root"
    );
}

/// Returns the path of a program found on `PATH`, or fails the test naming the
/// Debian package that provides it.
pub fn program(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
        .unwrap_or_else(|| {
            panic!(
                "this test needs '{name}', which is not installed; \
                 install the Debian package '{package}' (cargo xtask deps does)"
            )
        })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
