//! The executor runs a real container through a runtime's command line on an
//! overlay of snapshots, and the upper directory becomes a layer with OCI
//! whiteouts. Needs root, overlayfs, Debian's runc and the busybox fixture.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use berth_containers::executor::{self, Network, RunSpec, Runtime, StepMount};
use berth_store::Store;
use berth_store::image;
use berth_store::layer::scan::{TreeKind, scan_tree};
use berth_store::layer::{EntryKind, extract};
use std::fs;
use std::path::PathBuf;
use std::sync::Mutex;

fn busybox_rootfs() -> PathBuf {
    let fixtures = std::env::var_os("BERTH_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/fixtures"))
        });
    let rootfs = fixtures.join("busybox/rootfs");
    assert!(
        rootfs.join("bin/busybox").is_file(),
        "the busybox fixture is missing under {}; run 'cargo xtask fixtures'",
        fixtures.display()
    );
    rootfs
}

fn require_root_and_runc() -> PathBuf {
    // SAFETY: geteuid has no preconditions.
    assert!(
        unsafe { libc::geteuid() } == 0,
        "this test needs root (overlay mounts, containers)"
    );
    for dir in ["/usr/sbin", "/usr/bin", "/sbin", "/bin"] {
        let candidate = PathBuf::from(dir).join("runc");
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("this test needs 'runc'; install the Debian package 'runc' (cargo xtask deps does)");
}

/// A fresh store holding the busybox fixture as an image, and its snapshot.
fn busybox_store() -> (tempfile::TempDir, Store, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    image::import_rootfs(&store, &busybox_rootfs(), "busybox", &["sh"], 0).unwrap();
    let base = image::load(&store, "busybox").unwrap();
    let layer = &base.layers()[0];
    let lower = extract::ensure_snapshot(&store, &layer.descriptor.digest, &layer.diff_id).unwrap();
    (dir, store, lower)
}

#[test]
fn run_step_in_runc_produces_layer_with_whiteouts_and_no_mountpoints() {
    let runc = require_root_and_runc();
    let (_dir, store, lower) = busybox_store();
    let cache_dir = tempfile::tempdir().unwrap();

    let spec = RunSpec {
        args: vec![
            "/bin/sh".into(),
            "-c".into(),
            "echo out-$GREETING; echo err >&2; rm /etc/hostname; mkdir -p /new; id -u > /new/uid; \
             echo cached > /cache/f; pwd > /new/pwd"
                .into(),
        ],
        env: vec!["GREETING=hello".into()],
        user: String::new(),
        workdir: "/work/dir".into(),
        network: Network::None,
        mounts: vec![StepMount::Bind {
            source: cache_dir.path().to_path_buf(),
            target: "/cache".into(),
            readonly: false,
        }],
        extra_hosts: Vec::new(),
    };
    let lines = Mutex::new(Vec::new());
    let out = executor::run_step(
        &store,
        &Runtime { binary: runc },
        &[lower],
        &spec,
        &|_, line| lines.lock().unwrap().push(line.to_string()),
    )
    .unwrap();
    assert_eq!(out.exit.code, 0, "output: {:?}", out.exit.tail);
    let mut lines = lines.into_inner().unwrap();
    lines.sort();
    assert_eq!(lines, ["err", "out-hello"]);
    assert_eq!(
        fs::read_to_string(cache_dir.path().join("f")).unwrap(),
        "cached\n"
    );

    let mut entries = scan_tree(&out.staging.upper(), TreeKind::OverlayUpper).unwrap();
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    let summary: Vec<(String, bool)> = entries
        .iter()
        .map(|e| (e.tar_path(), matches!(e.kind, EntryKind::Dir)))
        .collect();
    assert_eq!(
        summary,
        [
            ("etc".to_string(), true),
            ("etc/.wh.hostname".into(), false),
            ("new".into(), true),
            ("new/pwd".into(), false),
            ("new/uid".into(), false),
            ("work".into(), true),
            ("work/dir".into(), true),
        ],
        "the layer must hold the change set only: no mount points"
    );
    assert_eq!(
        fs::read_to_string(out.staging.upper().join("new/pwd")).unwrap(),
        "/work/dir\n"
    );
}

#[test]
fn failing_step_reports_exit_code_and_output_tail() {
    let runc = require_root_and_runc();
    let (dir, store, lower) = busybox_store();
    let spec = RunSpec {
        args: vec![
            "/bin/sh".into(),
            "-c".into(),
            "for i in $(seq 1 30); do echo line$i; done; exit 7".into(),
        ],
        env: vec![],
        user: "nobody".into(),
        workdir: "/".into(),
        network: Network::Default,
        mounts: vec![StepMount::Tmpfs {
            target: "/scratch".into(),
            size: None,
        }],
        extra_hosts: Vec::new(),
    };
    let out = executor::run_step(
        &store,
        &Runtime { binary: runc },
        &[lower],
        &spec,
        &|_, _| {},
    )
    .unwrap();
    assert_eq!(out.exit.code, 7);
    assert_eq!(out.exit.tail.len(), 20);
    assert_eq!(out.exit.tail.last().map(String::as_str), Some("line30"));
    let staging_root = dir.path().join("tmp");
    drop(out);
    assert_eq!(
        fs::read_dir(staging_root).unwrap().count(),
        0,
        "staging must be removed"
    );
}
