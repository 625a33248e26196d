//! Many containers in a row and at once leave nothing behind: no state
//! directory, no cgroup, no mount, no process.

// Helpers outside #[test] functions fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod runtime_support;

use berth_e2e::bundle::Bundle;
use runtime_support::{Runtime, assert_no_leftovers, unique_id};
use std::process::Stdio;

fn assert_root_empty(rt: &Runtime) {
    let left: Vec<_> = std::fs::read_dir(rt.root.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "state left under the root: {left:?}");
}

/// Processes whose command line names the bundle: a container process that
/// outlived its container.
fn processes_using(bundle: &std::path::Path) -> Vec<String> {
    let needle = bundle.to_string_lossy().into_owned();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(root) = std::fs::read_link(entry.path().join("root")) else {
            continue;
        };
        if root.to_string_lossy().starts_with(&needle) {
            found.push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    found
}

#[test]
fn fifty_sequential_containers_leave_nothing_behind() {
    let rt = Runtime::new();
    let bundle = Bundle::busybox(&["/bin/sh", "-c", "echo $$ > /dev/null"]);
    let logs = tempfile::tempdir().unwrap();
    let prefix = unique_id("seq");
    for n in 0..50 {
        let id = format!("{prefix}-{n}");
        if n % 2 == 0 {
            // run: create, start, wait, delete in one command.
            let out = rt.output(&["run", "--bundle", bundle.path().to_str().unwrap(), &id]);
            assert!(
                out.status.success(),
                "run {id}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        } else {
            // The orchestrator's path: create, start, wait for stopped, delete.
            rt.create(&id, bundle.path(), logs.path(), &[]);
            rt.ok(&["start", &id]);
            rt.wait_status(&id, "stopped");
            rt.ok(&["delete", &id]);
        }
    }
    assert_root_empty(&rt);
    assert_no_leftovers(&prefix);
    assert!(processes_using(bundle.path()).is_empty());
}

#[test]
fn ten_concurrent_containers_leave_nothing_behind() {
    let rt = Runtime::new();
    let bundle = Bundle::busybox(&["/bin/sh", "-c", "sleep 0.3; echo done"]);
    let prefix = unique_id("par");
    let children: Vec<_> = (0..10)
        .map(|n| {
            rt.cmd(&[
                "run",
                "--bundle",
                bundle.path().to_str().unwrap(),
                &format!("{prefix}-{n}"),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    // While they run, each has its own state.
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "done\n");
    }
    assert_root_empty(&rt);
    assert_no_leftovers(&prefix);
    assert!(processes_using(bundle.path()).is_empty());

    // delete --force of ten running containers at once.
    let ids: Vec<String> = (0..10).map(|n| format!("{prefix}-d{n}")).collect();
    let long = Bundle::busybox(&["/bin/sleep", "300"]);
    for id in &ids {
        rt.run_detached(id, long.path());
    }
    let deletes: Vec<_> = ids
        .iter()
        .map(|id| {
            rt.cmd(&["delete", "--force", id])
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in deletes {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_root_empty(&rt);
    assert_no_leftovers(&prefix);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    // Killed processes may linger as zombies of PID 1 for a moment; a zombie
    // has no root link, so it does not count.
    while !processes_using(long.path()).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "container processes survived delete --force"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
