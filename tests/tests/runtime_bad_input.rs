//! Bad input to berth-runtime fails with a message naming the problem and a
//! non-zero exit code, and leaves no state directory, cgroup or mount behind.

// Helpers outside #[test] functions fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod runtime_support;

use berth_e2e::bundle::Bundle;
use oci_spec::runtime::{LinuxNamespace, LinuxNamespaceType};
use runtime_support::{Runtime, unique_id};

/// Creates a container from `bundle` expecting failure; checks the message
/// contains every one of `wants` and that nothing of the container remains.
fn create_fails(rt: &Runtime, bundle: &std::path::Path, wants: &[&str]) {
    let id = unique_id("bad");
    let err = rt.fails(&["create", "--bundle", bundle.to_str().unwrap(), &id]);
    for want in wants {
        assert!(
            err.contains(want),
            "the error should mention {want:?}: {err}"
        );
    }
    assert_reported_once(&err);
    rt.assert_gone(&id);
    // run fails the same way and leaves nothing either.
    let err = rt.fails(&["run", "--bundle", bundle.to_str().unwrap(), &id]);
    assert!(err.contains(wants[0]), "run: {err}");
    assert_reported_once(&err);
    rt.assert_gone(&id);
}

/// The error is one line, as runc prints it, not once per layer of
/// libcontainer that passed it on.
fn assert_reported_once(stderr: &str) {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        lines.len(),
        1,
        "the error should be reported once: {stderr}"
    );
}

#[test]
fn malformed_and_invalid_configs_are_rejected() {
    let rt = Runtime::new();

    let bundle = Bundle::busybox(&["/bin/true"]);
    std::fs::write(
        bundle.path().join("config.json"),
        "{\"ociVersion\": \"1.0.0\", ",
    )
    .unwrap();
    create_fails(&rt, bundle.path(), &["config.json", "invalid config"]);

    let bundle = Bundle::busybox_with(&["/bin/true"], |spec| {
        spec.set_version("2.0.0".into());
    });
    create_fails(&rt, bundle.path(), &["ociVersion", "2.0.0"]);

    let bundle = Bundle::busybox(&[]);
    create_fails(&rt, bundle.path(), &["process.args is empty"]);

    let bundle = Bundle::busybox_with(&["/bin/true"], |spec| {
        spec.set_root(None);
    });
    create_fails(&rt, bundle.path(), &["no root"]);
}

#[test]
fn missing_bundle_rootfs_and_program_are_rejected() {
    let rt = Runtime::new();
    let missing = tempfile::tempdir().unwrap().path().join("no-such-bundle");
    create_fails(&rt, &missing, &["no-such-bundle"]);

    let bundle = Bundle::busybox(&["/bin/true"]);
    std::fs::remove_dir_all(bundle.rootfs()).unwrap();
    create_fails(&rt, bundle.path(), &["rootfs", "not a directory"]);

    // These fail only once the container's cgroup and namespaces exist: the
    // runtime must undo them.
    let bundle = Bundle::busybox(&["/no/such/program"]);
    create_fails(&rt, bundle.path(), &["/no/such/program"]);

    let bundle = Bundle::busybox_with(&["/bin/true"], |spec| {
        let mut linux = spec.linux().clone().unwrap();
        let mut namespaces = linux.namespaces().clone().unwrap();
        namespaces.retain(|n| n.typ() != LinuxNamespaceType::Network);
        let mut joined = LinuxNamespace::default();
        joined.set_typ(LinuxNamespaceType::Network);
        joined.set_path(Some("/proc/999999999/ns/net".into()));
        namespaces.push(joined);
        linux.set_namespaces(Some(namespaces));
        spec.set_linux(Some(linux));
    });
    create_fails(&rt, bundle.path(), &["creating container"]);
}

#[test]
fn ids_duplicate_unknown_and_invalid_are_rejected() {
    let rt = Runtime::new();
    let bundle = Bundle::busybox(&["/bin/sleep", "60"]);
    let logs = tempfile::tempdir().unwrap();
    let id = unique_id("dup");
    rt.create(&id, bundle.path(), logs.path(), &[]);
    let pid = rt.state(&id)["pid"].clone();

    let err = rt.fails(&["create", "--bundle", bundle.path().to_str().unwrap(), &id]);
    assert!(err.contains("already exists"), "{err}");
    // The first container is untouched by the failed duplicate.
    let state = rt.state(&id);
    assert_eq!(state["status"], "created");
    assert_eq!(state["pid"], pid);

    let unknown = unique_id("unknown");
    for args in [
        vec!["state", unknown.as_str()],
        vec!["start", unknown.as_str()],
        vec!["kill", unknown.as_str(), "KILL"],
        vec!["delete", unknown.as_str()],
        vec!["pause", unknown.as_str()],
        vec!["ps", unknown.as_str()],
        vec!["exec", unknown.as_str(), "/bin/true"],
        vec!["events", "--stats", unknown.as_str()],
    ] {
        let err = rt.fails(&args);
        assert!(err.contains("does not exist"), "{args:?}: {err}");
        assert!(
            !rt.root.path().join(&unknown).exists(),
            "{args:?} left state"
        );
    }

    for bad in ["../escape", "a/b", "."] {
        let err = rt.fails(&["create", "--bundle", bundle.path().to_str().unwrap(), bad]);
        assert!(err.contains("invalid container id"), "{bad}: {err}");
    }
    // Besides the directory of per-id lock files.
    let entries: Vec<_> = std::fs::read_dir(rt.root.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|name| name != "@locks")
        .collect();
    assert_eq!(
        entries.len(),
        1,
        "only the first container's state may exist: {entries:?}"
    );

    let err = rt.fails(&["kill", &id, "NOTASIGNAL"]);
    assert!(err.contains("invalid signal"), "{err}");
    let err = rt.fails(&["kill", &id, "99"]);
    assert!(err.contains("invalid signal"), "{err}");
    assert_eq!(rt.state(&id)["status"], "created");

    // start works once; a second start, on a running container, is refused.
    rt.ok(&["start", &id]);
    let err = rt.fails(&["start", &id]);
    assert!(
        err.contains("cannot start") && err.contains("running"),
        "{err}"
    );
    let err = rt.fails(&["resume", &id]);
    assert!(err.contains("cannot resume"), "{err}");

    rt.ok(&["delete", "--force", &id]);
    rt.assert_gone(&id);
}

/// A terminal without a console socket to hand its pty to is refused, for
/// create, run and exec, instead of running the process without a terminal.
#[test]
fn terminal_without_console_socket_is_rejected() {
    let rt = Runtime::new();
    let bundle = Bundle::busybox_with(&["/bin/true"], |spec| {
        let mut process = spec.process().clone().unwrap();
        process.set_terminal(Some(true));
        spec.set_process(Some(process));
    });
    create_fails(&rt, bundle.path(), &["--console-socket", "config.json"]);

    let running = Bundle::busybox(&["/bin/sleep", "60"]);
    let id = unique_id("tty-exec");
    rt.run_detached(&id, running.path());
    let err = rt.fails(&["exec", "--tty", &id, "/bin/true"]);
    assert!(err.contains("--console-socket"), "{err}");
    rt.ok(&["delete", "--force", &id]);
}

/// `run` of `bundle` fails; its one error line says "error" and has every
/// one of `wants` (the cause, not only what failed), and nothing is left.
fn run_fails_with_cause(rt: &Runtime, bundle: &std::path::Path, wants: &[&str]) {
    let id = unique_id("cause");
    let err = rt.fails(&["run", "--bundle", bundle.to_str().unwrap(), &id]);
    assert!(err.contains("error"), "the error should say so: {err}");
    for want in wants {
        assert!(
            err.contains(want),
            "the error should give the cause {want:?}: {err}"
        );
    }
    assert_reported_once(&err);
    rt.assert_gone(&id);
}

/// A program that exists but cannot be executed (its interpreter is
/// missing) reports the errno of execve, not "failed to execute workload".
#[test]
fn exec_failure_reports_its_errno() {
    let rt = Runtime::new();
    let bundle = Bundle::busybox(&["/bin/broken-script"]);
    let script = bundle.rootfs().join("bin/broken-script");
    std::fs::write(&script, "#!/no/such/interpreter\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    run_fails_with_cause(
        &rt,
        bundle.path(),
        &["/bin/broken-script", "No such file or directory"],
    );
}

/// A working directory that cannot be entered is named with its errno, not
/// "failed to unix syscall".
#[test]
fn unusable_cwd_is_named_with_its_cause() {
    let rt = Runtime::new();
    let bundle = Bundle::busybox_with(&["/bin/true"], |spec| {
        let mut process = spec.process().clone().unwrap();
        process.set_cwd("/bin/busybox/dir".into());
        spec.set_process(Some(process));
    });
    run_fails_with_cause(&rt, bundle.path(), &["/bin/busybox/dir", "Not a directory"]);
}

/// A missing working directory is created, as runc creates it, inside the
/// rootfs even when the image leads it through a symlink to a host path.
#[test]
fn missing_cwd_is_created_inside_the_rootfs() {
    let rt = Runtime::new();
    let outside = tempfile::tempdir().unwrap();
    let bundle = Bundle::busybox_with(&["pwd"], |spec| {
        let mut process = spec.process().clone().unwrap();
        process.set_cwd("/host-link/made".into());
        spec.set_process(Some(process));
    });
    std::os::unix::fs::symlink(outside.path(), bundle.rootfs().join("host-link")).unwrap();
    // The link's target exists in the rootfs too, where it must resolve.
    let inside = bundle
        .rootfs()
        .join(outside.path().strip_prefix("/").unwrap());
    std::fs::create_dir_all(&inside).unwrap();
    let id = unique_id("cwd-made");
    let out = rt.ok(&["run", "--bundle", bundle.path().to_str().unwrap(), &id]);
    // The link resolves inside the container to the same path in its rootfs.
    assert_eq!(
        out.trim(),
        outside.path().join("made").to_str().unwrap(),
        "pwd of the created cwd"
    );
    assert!(
        std::fs::read_dir(outside.path()).unwrap().next().is_none(),
        "the cwd was created outside the rootfs"
    );
    assert!(
        inside.join("made").is_dir(),
        "the cwd was not made in the rootfs"
    );
    rt.assert_gone(&id);
}

/// An environment or argument list larger than the kernel takes fails with
/// E2BIG named, not "PATH environment variable is not set" or a silent 255.
#[test]
fn oversized_env_and_args_report_e2big() {
    let rt = Runtime::new();
    let huge = "x".repeat(200_000);
    let bundle = Bundle::busybox_with(&["/bin/true"], |spec| {
        let mut process = spec.process().clone().unwrap();
        let mut env = process.env().clone().unwrap();
        env.push(format!("HUGE={huge}"));
        process.set_env(Some(env));
        spec.set_process(Some(process));
    });
    run_fails_with_cause(
        &rt,
        bundle.path(),
        &["process.env", "Argument list too long"],
    );

    let bundle = Bundle::busybox(&["/bin/echo", &huge]);
    run_fails_with_cause(
        &rt,
        bundle.path(),
        &["process.args", "Argument list too long"],
    );

    // Many strings each under the per-string limit, together over ARG_MAX.
    let chunk = "y".repeat(100_000);
    let many: Vec<&str> = std::iter::once("/bin/echo")
        .chain(std::iter::repeat_n(chunk.as_str(), 100))
        .collect();
    let bundle = Bundle::busybox(&many);
    run_fails_with_cause(&rt, bundle.path(), &["Argument list too long"]);
}

/// An RLIMIT_NOFILE of 0 leaves the init no descriptor to open; the error
/// says which limit and why, not "io error".
#[test]
fn zero_nofile_rlimit_is_named() {
    let rt = Runtime::new();
    let bundle = Bundle::busybox_with(&["/bin/true"], |spec| {
        let mut process = spec.process().clone().unwrap();
        process.set_rlimits(Some(vec![
            oci_spec::runtime::PosixRlimitBuilder::default()
                .typ(oci_spec::runtime::PosixRlimitType::RlimitNofile)
                .soft(0u64)
                .hard(0u64)
                .build()
                .unwrap(),
        ]));
        spec.set_process(Some(process));
    });
    run_fails_with_cause(
        &rt,
        bundle.path(),
        &["RLIMIT_NOFILE", "Too many open files"],
    );
}

/// The text log and the JSON log carry the whole cause at level error.
#[test]
fn fatal_errors_are_logged_at_level_error_with_the_cause() {
    let rt = Runtime::new();
    let bundle = Bundle::busybox_with(&["/bin/true"], |spec| {
        let mut process = spec.process().clone().unwrap();
        process.set_cwd("/bin/busybox/dir".into());
        spec.set_process(Some(process));
    });
    let logs = tempfile::tempdir().unwrap();
    for format in ["text", "json"] {
        let log = logs.path().join(format!("log.{format}"));
        let id = unique_id("log-cause");
        let out = rt.output(&[
            "--log",
            log.to_str().unwrap(),
            "--log-format",
            format,
            "run",
            "--bundle",
            bundle.path().to_str().unwrap(),
            &id,
        ]);
        assert!(!out.status.success());
        let text = std::fs::read_to_string(&log).unwrap();
        let last = text.lines().last().unwrap();
        if format == "json" {
            let line: serde_json::Value = serde_json::from_str(last).unwrap();
            assert_eq!(line["level"], "error", "{last}");
            let msg = line["msg"].as_str().unwrap();
            assert!(
                msg.contains("/bin/busybox/dir") && msg.contains("Not a directory"),
                "{last}"
            );
        } else {
            assert!(last.contains("level=error"), "{last}");
            assert!(last.contains("Not a directory"), "{last}");
        }
        rt.assert_gone(&id);
    }
}
