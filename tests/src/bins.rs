//! The built binaries and the fixtures directory.

use std::path::PathBuf;

/// The directory cargo put the binaries in: the parent of `deps/`, which holds
/// the running test executable.
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable has a path");
    let mut dir = exe
        .parent()
        .expect("the test executable is in a directory")
        .to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

fn built(name: &str, env_override: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env_override) {
        return PathBuf::from(path);
    }
    let path = bin_dir().join(name);
    assert!(
        path.is_file(),
        "{} is not built; run 'cargo build --workspace --bins' first \
         (cargo xtask ci does), or set {env_override}",
        path.display()
    );
    path
}

/// The `berth` binary, or `$BERTH_BIN`.
pub fn berth() -> PathBuf {
    built("berth", "BERTH_BIN")
}

/// The `berth-runtime` binary, or `$BERTH_RUNTIME_BIN`.
pub fn berth_runtime() -> PathBuf {
    built("berth-runtime", "BERTH_RUNTIME_BIN")
}

/// The fixtures directory built by `cargo xtask fixtures`, or `$BERTH_FIXTURES`.
pub fn fixtures() -> PathBuf {
    let dir = std::env::var_os("BERTH_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/fixtures"));
    assert!(
        dir.join("busybox/rootfs/bin/busybox").is_file(),
        "the test fixtures are missing under {}; run 'cargo xtask fixtures' \
         (cargo xtask ci does)",
        dir.display()
    );
    dir
}
