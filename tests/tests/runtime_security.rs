//! Security regressions: the host's runtime binary cannot be overwritten
//! through /proc/PID/exe (CVE-2019-5736), no runtime file descriptor reaches
//! the container (CVE-2024-21626), and a mount destination that is a symlink
//! out of the rootfs stays inside it.

// Helpers outside #[test] functions fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod runtime_support;

use berth_e2e::bundle::Bundle;
use oci_spec::runtime::MountBuilder;
use runtime_support::{Runtime, unique_id};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, symlink};

fn contents(path: &std::path::Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

/// The attack of CVE-2019-5736, done with more power than a container has: a
/// created container's init is still a clone of the runtime, so its
/// /proc/PID/exe is the runtime binary. Keep that open, let the runtime
/// finish (`start` execs the user's program), then reopen it for writing and
/// write. The runtime binary on the host must be unchanged.
#[test]
fn container_cannot_overwrite_the_runtime_binary_through_proc_exe() {
    let mut rt = Runtime::new();
    // Attack a private copy, so a regression cannot break the real binary.
    let copy_dir = tempfile::tempdir().unwrap();
    let copy = copy_dir.path().join("berth-runtime");
    std::fs::copy(&rt.bin, &copy).unwrap();
    rt.bin = copy.clone();
    let before = contents(&copy);

    let bundle = Bundle::busybox(&["/bin/sleep", "60"]);
    let logs = tempfile::tempdir().unwrap();
    let id = unique_id("cve-2019-5736");
    rt.create(&id, bundle.path(), logs.path(), &[]);
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    let exe = std::fs::File::open(format!("/proc/{pid}/exe")).unwrap();
    use std::os::fd::AsRawFd;
    // The runtime ran from its sealed view by way of a read-only overlay of
    // its directory (no copy of the binary), not the memfd fallback.
    // SAFETY: an all-zero statfs is valid; fstatfs fills it for an open fd.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::fstatfs(exe.as_raw_fd(), &mut fs) }, 0);
    assert_eq!(
        fs.f_type,
        libc::OVERLAYFS_SUPER_MAGIC,
        "the init's executable is not on the read-only overlay (kernel without overlayfs or the new mount API?)"
    );
    let held = format!("/proc/self/fd/{}", exe.as_raw_fd());
    rt.ok(&["start", &id]);
    rt.wait_status(&id, "running");

    let mut outcome = String::new();
    match std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(&held)
    {
        Ok(mut file) => match file.write_all(b"#!/bin/sh\necho pwned\n") {
            Ok(()) => outcome.push_str("the write through /proc/PID/exe succeeded"),
            Err(err) => outcome.push_str(&format!("write refused: {err}")),
        },
        Err(err) => outcome.push_str(&format!("open refused: {err}")),
    }
    rt.ok(&["delete", "--force", &id]);
    assert!(
        contents(&copy) == before,
        "the runtime binary was overwritten from the container side ({outcome})"
    );
    assert!(!outcome.contains("succeeded"), "{outcome}");
}

/// No descriptor of the runtime is open in the container's process: only
/// stdio (and what --preserve-fds passes), so nothing like the leaked host
/// cgroup directory of CVE-2024-21626 is reachable.
#[test]
fn no_runtime_file_descriptor_leaks_into_the_container() {
    let rt = Runtime::new();
    let bundle = Bundle::busybox(&["/bin/sleep", "60"]);
    let id = unique_id("cve-2024-21626");
    rt.run_detached(&id, bundle.path());
    // The init process (sleep, PID 1), listed from an exec'd process.
    let out = rt.ok(&["exec", &id, "/bin/ls", "/proc/1/fd"]);
    let fds: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(
        fds,
        ["0", "1", "2"],
        "descriptors open in the container's init"
    );
    // An exec'd process (the shell), listed by its child; `; true` keeps the
    // shell from exec'ing ls in its place.
    let out = rt.ok(&["exec", &id, "/bin/sh", "-c", "ls /proc/$$/fd; true"]);
    let fds: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(
        fds,
        ["0", "1", "2"],
        "descriptors open in the exec'd process"
    );
    // --preserve-fds passes exactly the descriptors asked for.
    let extra = std::fs::File::open("/dev/null").unwrap();
    use std::os::fd::AsRawFd;
    let mut cmd = rt.cmd(&[
        "exec",
        "--preserve-fds",
        "1",
        &id,
        "/bin/sh",
        "-c",
        "ls /proc/$$/fd; true",
    ]);
    let raw = extra.as_raw_fd();
    // SAFETY: dup2 in the child before exec only touches the child's table.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(move || {
            // dup2 onto itself would keep FD_CLOEXEC, so clear it then.
            let rc = if raw == 3 {
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(raw, 3)
            };
            if rc < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let fds: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(fds, ["0", "1", "2", "3"], "--preserve-fds 1");

    // A cwd through /proc/self/fd, the CVE's entry point, never lands
    // outside the rootfs.
    for fd in 3..10 {
        let cwd = format!("/proc/self/fd/{fd}");
        let out = rt.output(&["exec", "--cwd", &cwd, &id, "/bin/sh", "-c", "pwd -P; ls .."]);
        if out.status.success() {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                !text.contains("sys/fs/cgroup") && !text.contains("berth-rt-root"),
                "cwd {cwd} reached the host: {text}"
            );
        }
    }
    rt.ok(&["delete", "--force", &id]);
    rt.assert_gone(&id);
}

/// A mount whose destination is a symlink pointing out of the rootfs (by an
/// absolute path or by `..`) is resolved inside the rootfs.
#[test]
fn symlinked_mount_destination_cannot_escape_the_rootfs() {
    let rt = Runtime::new();
    let host = tempfile::tempdir().unwrap();
    let target = host.path().join("target");
    std::fs::create_dir(&target).unwrap();
    let source = tempfile::tempdir().unwrap();
    std::fs::write(source.path().join("from-source"), "x").unwrap();

    let bundle = Bundle::busybox_with(
        &[
            "/bin/sh",
            "-c",
            "echo written > /absolute/escaped; echo written > /relative/escaped; ls /absolute /relative",
        ],
        |spec| {
            let mut mounts = spec.mounts().clone().unwrap();
            mounts.push(
                MountBuilder::default()
                    .destination("/absolute")
                    .typ("tmpfs")
                    .source("tmpfs")
                    .options(vec!["nosuid".to_string()])
                    .build()
                    .unwrap(),
            );
            mounts.push(
                MountBuilder::default()
                    .destination("/relative")
                    .typ("bind")
                    .source(source.path())
                    .options(vec!["rbind".to_string(), "rw".to_string()])
                    .build()
                    .unwrap(),
            );
            spec.set_mounts(Some(mounts));
        },
    );
    let rootfs = bundle.rootfs();
    symlink(&target, rootfs.join("absolute")).unwrap();
    let depth = rootfs.components().count() + 2;
    let climb = "../".repeat(depth);
    symlink(
        format!("{climb}{}", target.strip_prefix("/").unwrap().display()),
        rootfs.join("relative"),
    )
    .unwrap();

    let id = unique_id("symlink-mount");
    let out = rt.output(&["run", "--bundle", bundle.path().to_str().unwrap(), &id]);
    let leaked: Vec<_> = std::fs::read_dir(&target)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(
        leaked.is_empty(),
        "the container wrote to the host through a mount: {leaked:?}"
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(target.to_str().unwrap()),
        "a mount landed on the host target {}",
        target.display()
    );
    // Either the runtime refused the mounts, or it made them inside the rootfs.
    if out.status.success() {
        let listing = String::from_utf8_lossy(&out.stdout);
        assert!(listing.contains("escaped"), "{listing}");
        assert!(listing.contains("from-source"), "{listing}");
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.is_empty(), "a refused mount must say why");
    }
    rt.assert_gone(&id);
}

/// A `cgroupsPath` that climbs with `..` stays inside each cgroup
/// hierarchy, as runc keeps it (its `utils.CleanPath`): `../NAME` from
/// `/sys/fs/cgroup/memory` would otherwise be `/sys/fs/cgroup/NAME` on the
/// tmpfs that holds the hierarchies, and more `..` reach the host's `/`.
#[test]
fn cgroups_path_with_dotdot_stays_inside_the_hierarchy() {
    let rt = Runtime::new();
    let name = unique_id("cgroup-escape");
    // cgroupfs paths, and systemd's slice:prefix:name, which on a v1 host
    // is a cgroupfs path too.
    let cases = [
        (format!("../{name}"), &[][..], name.clone()),
        (format!("/../../../../{name}"), &[][..], name.clone()),
        (
            format!("berth.slice:../../../{name}:c"),
            &["--systemd-cgroup"][..],
            format!("{name}:c"),
        ),
    ];
    for (climb, flags, leaf) in cases {
        let escapes = [
            std::path::PathBuf::from("/sys/fs/cgroup").join(&leaf),
            std::path::PathBuf::from("/").join(&leaf),
        ];
        let bundle = Bundle::busybox_with(&["/bin/sleep", "60"], |spec| {
            let mut linux = spec.linux().clone().unwrap();
            linux.set_cgroups_path(Some(climb.clone().into()));
            spec.set_linux(Some(linux));
        });
        let id = unique_id("cgroup-dotdot");
        let logs = tempfile::tempdir().unwrap();
        let stderr = logs.path().join("create.err");
        let mut args = flags.to_vec();
        args.extend(["create", "--bundle", bundle.path().to_str().unwrap(), &id]);
        let status = rt
            .cmd(&args)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .status()
            .unwrap();
        let escaped: Vec<_> = escapes.iter().filter(|p| p.exists()).cloned().collect();
        for dir in &escaped {
            // Undo what the escape made on the host; the test fails below.
            let _ = std::fs::remove_dir(dir);
        }
        assert!(
            escaped.is_empty(),
            "cgroupsPath {climb:?} made directories outside the cgroup hierarchies: {escaped:?}"
        );
        assert!(
            status.success(),
            "create with cgroupsPath {climb:?}: {}",
            std::fs::read_to_string(&stderr).unwrap_or_default()
        );
        // The container got its cgroup inside the hierarchy, at the cleaned path.
        let inside = berth_e2e::cgroups::dirs_naming(&name);
        assert!(
            !inside.is_empty()
                && inside.iter().all(|dir| dir
                    .parent()
                    .is_some_and(|p| p.parent() == Some(std::path::Path::new("/sys/fs/cgroup")))),
            "the cgroup of cgroupsPath {climb:?} should be at the top of each hierarchy: {inside:?}"
        );
        rt.ok(&["delete", "--force", &id]);
        assert!(
            berth_e2e::cgroups::dirs_naming(&name).is_empty(),
            "delete left the cgroups of {climb:?}"
        );
    }
}

/// A config with no mount namespace of its own (youki's contest `ns_itype`:
/// empty `linux.namespaces`) runs in the caller's mount namespace; the
/// runtime must not remount the caller's cgroup hierarchies read-only there
/// (that broke every later container on the machine). The runtime runs in a
/// private mount namespace made for the test, so a regression stays in it.
#[test]
fn no_mount_namespace_config_leaves_the_callers_mounts_alone() {
    let rt = Runtime::new();
    let unshare = berth_e2e::require::program("unshare", "util-linux");
    let shared = Bundle::busybox_with(&["/bin/true"], |spec| {
        let mut linux = spec.linux().clone().unwrap();
        linux.set_namespaces(Some(Vec::new()));
        linux.set_masked_paths(None);
        linux.set_readonly_paths(None);
        spec.set_linux(Some(linux));
        // Without a UTS namespace there is no hostname of its own to set.
        spec.set_hostname(None);
    });
    let normal = Bundle::busybox(&["/bin/true"]);
    let work = tempfile::tempdir().unwrap();
    let w = work.path().display();
    let bin = rt.bin.display();
    let root = rt.root.path().display();
    let script = format!(
        "cat /proc/self/mountinfo > {w}/before; \
         {bin} --root {root} run --bundle {shared} {a} > {w}/shared.out 2>&1; echo $? > {w}/shared.rc; \
         cat /proc/self/mountinfo > {w}/after; \
         {bin} --root {root} run --bundle {normal} {b} > {w}/normal.out 2>&1; echo $? > {w}/normal.rc",
        shared = shared.path().display(),
        normal = normal.path().display(),
        a = unique_id("no-mntns"),
        b = unique_id("after-no-mntns"),
    );
    let status = std::process::Command::new(unshare)
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .status()
        .unwrap();
    assert!(status.success(), "the test's private namespace failed");
    let read = |name: &str| std::fs::read_to_string(work.path().join(name)).unwrap();
    let cgroup_lines = |table: String| -> Vec<String> {
        table
            .lines()
            .filter(|l| l.contains(" /sys/fs/cgroup"))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        cgroup_lines(read("before")),
        cgroup_lines(read("after")),
        "the run of a config without a mount namespace changed the caller's cgroup mounts ({})",
        read("shared.out")
    );
    assert_eq!(
        read("shared.rc").trim(),
        "0",
        "the config without a mount namespace should run: {}",
        read("shared.out")
    );
    assert_eq!(
        read("normal.rc").trim(),
        "0",
        "a normal container after it should still run: {}",
        read("normal.out")
    );
}

/// `exec --cap` grants the capability in the permitted, effective and
/// bounding sets only, as runc does; in the inheritable and ambient sets it
/// would pass on to programs the process execs (the pattern of
/// CVE-2022-29162).
#[test]
fn exec_cap_is_not_inheritable_or_ambient() {
    let rt = Runtime::new();
    let bundle = Bundle::busybox(&["/bin/sleep", "60"]);
    let id = unique_id("exec-cap");
    rt.run_detached(&id, bundle.path());
    let work = tempfile::tempdir().unwrap();
    let pid_file = work.path().join("exec.pid");
    // The detached process keeps its stdio: not the test's pipes.
    let errors = work.path().join("exec.err");
    let status = rt
        .cmd(&[
            "exec",
            "--detach",
            "--pid-file",
            pid_file.to_str().unwrap(),
            "--cap",
            "CAP_SYS_ADMIN",
            &id,
            "/bin/sleep",
            "60",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&errors).unwrap())
        .status()
        .unwrap();
    assert!(
        status.success(),
        "exec --cap: {}",
        std::fs::read_to_string(&errors).unwrap()
    );
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid.trim())).unwrap();
    let set = |name: &str| -> u64 {
        let line = status
            .lines()
            .find(|l| l.starts_with(&format!("{name}:")))
            .unwrap_or_else(|| panic!("no {name} in {status}"));
        u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
    };
    const SYS_ADMIN: u64 = 1 << 21;
    let sets: Vec<(&str, bool)> = ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"]
        .iter()
        .map(|name| (*name, set(name) & SYS_ADMIN != 0))
        .collect();
    rt.ok(&["delete", "--force", &id]);
    assert_eq!(
        sets,
        [
            ("CapInh", false),
            ("CapPrm", true),
            ("CapEff", true),
            ("CapBnd", true),
            ("CapAmb", false)
        ],
        "CAP_SYS_ADMIN in each set of the exec'd process"
    );
}
