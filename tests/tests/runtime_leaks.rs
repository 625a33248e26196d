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
        .filter(|name| name != "@locks")
        .collect();
    assert!(left.is_empty(), "state left under the root: {left:?}");
    // The directory of per-id locks stays, but no lock of a gone container.
    let locks: Vec<_> = std::fs::read_dir(rt.root.path().join("@locks"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(
        locks.is_empty(),
        "lock files left under the root: {locks:?}"
    );
}

/// Live processes whose cgroup path names `prefix`: container processes that
/// outlived their container. Zombies waiting for PID 1 to reap them hold no
/// resources and are not counted.
fn processes_in_cgroups_naming(prefix: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cgroups) = std::fs::read_to_string(entry.path().join("cgroup")) else {
            continue;
        };
        let zombie = std::fs::read_to_string(entry.path().join("stat"))
            .is_ok_and(|stat| stat.contains(") Z "));
        if cgroups.contains(prefix) && !zombie {
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
    assert_eq!(processes_in_cgroups_naming(&prefix), Vec::<String>::new());
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
    assert_eq!(processes_in_cgroups_naming(&prefix), Vec::<String>::new());

    // delete --force of ten running containers at once.
    let ids: Vec<String> = (0..10).map(|n| format!("{prefix}-d{n}")).collect();
    let long = Bundle::busybox(&["/bin/sleep", "300"]);
    for id in &ids {
        rt.run_detached(id, long.path());
    }
    assert_eq!(
        processes_in_cgroups_naming(&prefix).len(),
        10,
        "each running container's process is found by its cgroup"
    );
    assert!(
        berth_e2e::cgroups::dirs_naming(&prefix).len() >= 10,
        "each running container's cgroup directories are found"
    );
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
    assert_eq!(processes_in_cgroups_naming(&prefix), Vec::<String>::new());
}
