//! End to end: a container can neither open the host's block devices nor
//! leave Docker's seccomp profile, whether it is a `berth run` container (with
//! berth-runtime and with runc) or a build `RUN` step; and `--security-opt
//! seccomp=unconfined|FILE` works as with docker.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod build_common;

use berth_e2e::{bins, require};
use build_common::BuildEnv;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A host block device that root on the host can open and read, as (major,
/// minor), so that the test fails if a container can too. An unconfigured
/// loop or zram device reads as empty, which is enough: opening it is what
/// the device cgroup must refuse.
fn readable_host_block_device() -> (u32, u32) {
    let mut entries: Vec<String> = fs::read_dir("/sys/dev/block")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    for entry in &entries {
        let mut byte = [0u8; 1];
        let uevent = fs::read_to_string(Path::new("/sys/dev/block").join(entry).join("uevent"))
            .unwrap_or_default();
        let Some(name) = uevent.lines().find_map(|l| l.strip_prefix("DEVNAME=")) else {
            continue;
        };
        let readable = fs::File::open(Path::new("/dev").join(name))
            .and_then(|mut f| f.read(&mut byte))
            .is_ok();
        if readable {
            let (major, minor) = entry.split_once(':').unwrap();
            return (major.parse().unwrap(), minor.parse().unwrap());
        }
    }
    panic!("no readable block device on the host among {entries:?}");
}

/// A shell script that reports what the container can do, one marker a line.
/// The markers are split by `""` so that a build's echo of the command line
/// does not contain them.
fn probe_script() -> String {
    let (major, minor) = readable_host_block_device();
    format!(
        "cat /sys/fs/cgroup/devices/devices.list 2>&1; \
         grep Seccomp: /proc/self/status; \
         mknod /tmp/blk b {major} {minor} && echo MKNOD\"\"-OK; \
         head -c1 /tmp/blk >/dev/null && echo BLOCK\"\"-READ; \
         unshare -U -r id && echo USERNS\"\"-OK; \
         echo PROBE\"\"-DONE"
    )
}

/// Fails unless the probe's output shows a confined container.
fn assert_confined(output: &str, devices_list_visible: bool) {
    assert!(output.contains("PROBE-DONE"), "{output}");
    assert!(
        !output.contains("a *:* rwm"),
        "the device cgroup allows everything: {output}"
    );
    if devices_list_visible {
        assert!(output.contains("c 1:3 rwm"), "no devices.list: {output}");
    }
    assert!(
        output.contains("Seccomp:\t2"),
        "no seccomp filter: {output}"
    );
    // Creating the node is allowed (as with Docker); opening it is not.
    assert!(output.contains("MKNOD-OK"), "{output}");
    assert!(
        !output.contains("BLOCK-READ"),
        "a host block device was read: {output}"
    );
    assert!(!output.contains("USERNS-OK"), "unshare -U worked: {output}");
    assert!(
        output.contains("Operation not permitted"),
        "refusals are EPERM: {output}"
    );
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `berth run --rm [--runtime RUNTIME] ARGS… busybox sh -c SCRIPT`.
fn run(env: &BuildEnv, runtime: Option<&Path>, args: &[&str], script: &str) -> Output {
    let mut cmd = Command::new(bins::berth());
    cmd.arg("--root")
        .arg(env.store.path())
        .args(["run", "--rm"]);
    if let Some(runtime) = runtime {
        cmd.arg("--runtime").arg(runtime);
    }
    cmd.args(args)
        .args(["busybox", "sh", "-c", script])
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn runtimes() -> Vec<(&'static str, Option<PathBuf>)> {
    vec![
        ("berth-runtime", None),
        ("runc", Some(require::program("runc", "runc"))),
    ]
}

#[test]
fn run_containers_get_the_device_policy_and_the_default_seccomp_profile() {
    let env = BuildEnv::new();
    let script = probe_script();
    for (name, runtime) in runtimes() {
        let out = run(&env, runtime.as_deref(), &[], &script);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{name}: {stderr}");
        assert_confined(&format!("{stdout}{stderr}"), true);
    }
}

#[test]
fn run_steps_get_the_device_policy_and_the_default_seccomp_profile() {
    for (name, runtime) in runtimes() {
        let mut env = BuildEnv::new();
        if let Some(runtime) = runtime {
            env.runtime = runtime;
        }
        probe_a_run_step(&env, name);
    }
}

/// Builds a step that probes its confinement, and fails unless it is confined.
fn probe_a_run_step(env: &BuildEnv, name: &str) {
    // RUN steps have no cgroup mount: the host's view of the step's device
    // cgroup, read while the step waits, stands for its devices.list.
    env.write(
        "Dockerfile",
        &format!(
            "FROM busybox\nRUN {}; echo DEV\"\"CG=$(sed -n s/^[0-9]*:devices://p /proc/self/cgroup); sleep 2\n",
            probe_script()
        ),
    );
    let mut child = env.command(&[]).stderr(Stdio::piped()).spawn().unwrap();
    let mut progress = String::new();
    let mut devices_list = None;
    let mut stderr = child.stderr.take().unwrap();
    let mut buf = [0u8; 4096];
    loop {
        let n = stderr.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        progress.push_str(&String::from_utf8_lossy(&buf[..n]));
        if devices_list.is_none()
            && let Some(rest) = progress.split("DEVCG=").nth(1)
            && let Some((path, _)) = rest.split_once('\n')
        {
            let file = Path::new("/sys/fs/cgroup/devices")
                .join(path.trim().trim_start_matches('/'))
                .join("devices.list");
            devices_list = Some(
                fs::read_to_string(&file)
                    .unwrap_or_else(|e| panic!("reading {}: {e}\n{progress}", file.display())),
            );
        }
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "{name}: {progress}");
    let devices_list = devices_list.unwrap_or_else(|| panic!("{name}: no DEVCG line: {progress}"));
    assert!(
        !devices_list.contains("a *:* rwm"),
        "{name}: the step's device cgroup allows everything: {devices_list}\n{progress}"
    );
    assert!(devices_list.contains("c 1:3 rwm"), "{name}: {devices_list}");
    assert_confined(&progress, false);
}

#[test]
fn seccomp_unconfined_removes_the_filter() {
    let env = BuildEnv::new();
    for (name, runtime) in runtimes() {
        let out = run(
            &env,
            runtime.as_deref(),
            &["--security-opt", "seccomp=unconfined"],
            "grep Seccomp: /proc/self/status",
        );
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{name}: {stderr}");
        assert_eq!(stdout, "Seccomp:\t0\n", "{name}");
    }
}

#[test]
fn a_seccomp_profile_file_is_applied() {
    let env = BuildEnv::new();
    let profile = env.ctx.path().join("deny-mkdir.json");
    fs::write(
        &profile,
        r#"{
            "defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [
                {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}
            ]
        }"#,
    )
    .unwrap();
    let option = format!("seccomp={}", profile.display());
    for (name, runtime) in runtimes() {
        let out = run(
            &env,
            runtime.as_deref(),
            &["--security-opt", &option],
            "grep Seccomp: /proc/self/status; touch /tmp/file && echo TOUCH-OK; \
             mkdir /tmp/dir && echo MKDIR-OK; true",
        );
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{name}: {stderr}");
        assert!(stdout.contains("Seccomp:\t2"), "{name}: {stdout}");
        assert!(stdout.contains("TOUCH-OK"), "{name}: {stdout}{stderr}");
        assert!(!stdout.contains("MKDIR-OK"), "{name}: {stdout}");
        assert!(
            stderr.contains("Operation not permitted"),
            "{name}: {stderr}"
        );
    }
}

#[test]
fn a_bad_seccomp_profile_file_is_a_clear_error() {
    let env = BuildEnv::new();
    let missing = env.ctx.path().join("missing.json");
    let invalid = env.ctx.path().join("invalid.json");
    fs::write(&invalid, r#"{"defaultAction": "SCMP_ACT_NOPE"}"#).unwrap();
    for (file, cause) in [
        (&missing, "No such file or directory"),
        (&invalid, "SCMP_ACT_NOPE"),
    ] {
        let option = format!("seccomp={}", file.display());
        let out = run(&env, None, &["--security-opt", &option], "echo RAN");
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(125), "{stderr}");
        assert!(!stdout.contains("RAN"), "{stdout}");
        let file = file.display().to_string();
        assert!(stderr.contains(&file) && stderr.contains(cause), "{stderr}");
    }
    let out = run(&env, None, &["--security-opt", "apparmor=x"], "echo RAN");
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("unsupported security option"), "{stderr}");
    let containers = fs::read_dir(env.store.path().join("containers"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(containers, 0, "a refused run left a container");
}
