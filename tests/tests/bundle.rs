//! The bundle helper makes bundles a real runtime accepts: Debian's runc runs one.

use berth_e2e::{bundle::Bundle, require};
use std::process::Command;

#[test]
fn busybox_bundle_runs_under_runc() {
    require::root();
    let runc = require::program("runc", "runc");
    let state = tempfile::tempdir().unwrap();
    let bundle = Bundle::busybox(&["/bin/sh", "-c", "echo hello from $(hostname)"]);
    let id = format!("berth-bundle-{}", std::process::id());
    let out = Command::new(runc)
        .arg("--root")
        .arg(state.path())
        .args(["run", "--bundle"])
        .arg(bundle.path())
        .arg(&id)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "runc run failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello from berth-test\n"
    );
}
