//! The local store under concurrency and crashes: two builds at once share
//! the cache and both succeed; a build killed in the middle of a RUN leaves
//! nothing the next build trips on (no staging, mount, process or cgroup),
//! and the next build works.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod build_common;

use build_common::{BuildEnv, staging_entries};
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

#[test]
fn concurrent_builds_on_one_store_both_succeed_and_share_the_cache() {
    let env = BuildEnv::new();
    env.write("shared.txt", "shared\n");
    env.write(
        "Dockerfile",
        "FROM busybox\nCOPY shared.txt /shared.txt\n\
         RUN --mount=type=cache,id=counter,target=/counter echo x >> /counter/shared && sleep 0.3 && cp /shared.txt /copy\n",
    );
    let children: Vec<_> = (0..2)
        .map(|i| {
            env.command(&["-t", &format!("con{i}")])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let digests: Vec<String> = children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "a concurrent build failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        })
        .collect();
    // Both tags were recorded: the index was updated under its lock.
    let a = env.manifest_of("con0");
    let b = env.manifest_of("con1");
    assert_eq!(a["layers"].as_array().unwrap().len(), 3);
    // The base and the COPY layer are the same blobs; the RUN layers may
    // differ (both builds may run the step, each writing its own mtimes).
    assert_eq!(
        a["layers"].as_array().unwrap()[..2],
        b["layers"].as_array().unwrap()[..2],
        "{digests:?}"
    );
    // A third build finds everything cached.
    let runs = env.runs("counter", "shared");
    let (_, progress) = env.build_ok(&["-t", "con2"]);
    assert_eq!(env.runs("counter", "shared"), runs, "{progress}");
    assert!(staging_entries(env.store.path()).is_empty());
}

fn mounts_under(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|p| p.starts_with(&*path.to_string_lossy()))
        .collect()
}

/// Starts a build whose RUN sleeps, waits until the RUN has started, and
/// sends `signal` to berth alone. Returns the killed build's pid and how it
/// ended.
fn kill_during_run(env: &BuildEnv, signal: i32) -> (u32, std::process::ExitStatus) {
    env.write(
        "Dockerfile",
        "FROM busybox\nCOPY a.txt /a\nRUN echo running && sleep 60\n",
    );
    let mut child = env
        .command(&[])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let line = lines
            .next()
            .expect("the build ended before its RUN started")
            .unwrap();
        if line.ends_with(" running") {
            break;
        }
        assert!(Instant::now() < deadline, "the RUN step did not start");
    }
    // SAFETY: kill has no memory-safety preconditions.
    unsafe {
        libc::kill(child.id() as i32, signal);
    }
    let status = child.wait().unwrap();
    assert!(!status.success());
    (child.id(), status)
}

#[test]
fn killed_builds_leave_the_store_consistent() {
    let env = BuildEnv::new();
    env.write("a.txt", "a\n");
    for signal in [libc::SIGKILL, libc::SIGINT, libc::SIGTERM] {
        let (killed, status) = kill_during_run(&env, signal);
        let killed_runs = format!("berth-{killed}-");
        if signal != libc::SIGKILL {
            // A signal berth can catch cancels the build: it stops and
            // deletes its RUN container itself before it exits.
            assert_eq!(status.code(), Some(128 + signal), "signal {signal}");
            let cgroups = berth_e2e::cgroups::dirs_naming(&killed_runs);
            assert!(
                cgroups.is_empty(),
                "signal {signal}: the cancelled build left cgroups: {cgroups:?}"
            );
            let prefix = format!("{killed}-");
            let staging = staging_entries(env.store.path());
            assert!(
                !staging.iter().any(|e| e.starts_with(&prefix)),
                "signal {signal}: the cancelled build left staging: {staging:?}"
            );
        }
        // The next build replaces the RUN and must succeed; opening the
        // store removes what the killed build left behind.
        env.write(
            "Dockerfile",
            "FROM busybox\nCOPY a.txt /a\nRUN cat /a > /b\nCMD [\"cat\", \"/b\"]\n",
        );
        env.build_ok(&["-t", "after"]);
        assert_eq!(env.run_image("after:latest"), "a\n");
        assert!(
            staging_entries(env.store.path()).is_empty(),
            "signal {signal}: staging left behind"
        );
        assert!(
            mounts_under(env.store.path()).is_empty(),
            "signal {signal}: mounts left behind"
        );
        // The killed RUN's container is deleted through its runtime, cgroups
        // and all; its id names the killed build's staging entry.
        let cgroups = berth_e2e::cgroups::dirs_naming(&killed_runs);
        assert!(
            cgroups.is_empty(),
            "signal {signal}: cgroups of the killed RUN left behind: {cgroups:?}"
        );
    }
    // Nothing of the killed containers still runs.
    let store = env.store.path().to_string_lossy().into_owned();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(root) = std::fs::read_link(entry.path().join("root")) {
            assert!(
                !root.to_string_lossy().starts_with(&store),
                "process {} still runs in the store",
                entry.file_name().to_string_lossy()
            );
        }
    }
}
