//! Real clients drive berth-runtime in place of runc: podman (through conmon)
//! and containerd (through its runc v2 shim, `ctr run --runc-binary`), and
//! berth's own typed client drives berth-runtime and runc alike.

// Helpers outside #[test] functions fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod runtime_support;

use berth_e2e::podman::{Podman, RUN_LIMITS};
use berth_e2e::{bins, require};
use runtime_support::unique_id;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A tar of the busybox fixture's rootfs.
fn rootfs_tar(dir: &Path) -> PathBuf {
    let tar = require::program("tar", "tar");
    let path = dir.join("rootfs.tar");
    let status = Command::new(tar)
        .arg("-C")
        .arg(bins::fixtures().join("busybox/rootfs"))
        .arg("-cf")
        .arg(&path)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success(), "tar of the busybox rootfs failed");
    path
}

fn checked(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn podman_runs_execs_and_stops_with_berth_runtime() {
    require::root();
    let podman = Podman::new();
    require::program("conmon", "conmon");
    let tar = rootfs_tar(podman.dir());
    let image = "localhost/berth-busybox:test";
    podman.ok(&["import", tar.to_str().unwrap(), image]);

    let mut run = vec!["run", "--rm", "--network", "none"];
    run.extend_from_slice(RUN_LIMITS);
    run.extend_from_slice(&[image, "sh", "-c", "echo hello from $(cat /proc/1/comm)"]);
    assert_eq!(podman.ok(&run), "hello from sh\n");

    // The exit code of the container reaches podman.
    let mut failing = vec!["run", "--rm", "--network", "none"];
    failing.extend_from_slice(RUN_LIMITS);
    failing.extend_from_slice(&[image, "sh", "-c", "exit 42"]);
    let out = podman.command(&failing).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(42),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let name = unique_id("podman");
    let mut detached = vec!["run", "--detach", "--name", &name, "--network", "none"];
    detached.extend_from_slice(RUN_LIMITS);
    detached.extend_from_slice(&[image, "sleep", "300"]);
    podman.ok(&detached);
    assert_eq!(
        podman.ok(&["exec", &name, "sh", "-c", "echo exec-$((40+2))"]),
        "exec-42\n"
    );
    let started = Instant::now();
    podman.ok(&["stop", "--time", "1", &name]);
    assert!(started.elapsed() < Duration::from_secs(20));
    let status = podman.ok(&["inspect", "--format", "{{.State.Status}}", &name]);
    assert_eq!(status.trim(), "exited");
    podman.ok(&["rm", &name]);
}

/// A private containerd on sockets in a temporary directory; killed on drop.
struct Containerd {
    dir: tempfile::TempDir,
    child: Child,
    ctr: PathBuf,
    namespace: String,
}

impl Containerd {
    fn start() -> Containerd {
        let containerd = require::program("containerd", "containerd");
        let ctr = require::program("ctr", "containerd");
        require::program("containerd-shim-runc-v2", "containerd");
        let dir = tempfile::Builder::new()
            .prefix("berth-containerd-")
            .tempdir()
            .unwrap();
        let d = dir.path().display();
        let config = format!(
            "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{d}/containerd.sock\"\n\
             [ttrpc]\n  address = \"{d}/containerd-ttrpc.sock\"\n\
             [debug]\n  address = \"\"\n[metrics]\n  address = \"\"\n"
        );
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        let log = std::fs::File::create(dir.path().join("containerd.log")).unwrap();
        let child = Command::new(containerd)
            .arg("--config")
            .arg(dir.path().join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut daemon = Containerd {
            dir,
            child,
            ctr,
            namespace: unique_id("ns"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if daemon.ctr(&["version"]).output().unwrap().status.success() {
                return daemon;
            }
            if let Ok(Some(status)) = daemon.child.try_wait() {
                panic!("containerd exited ({status}): {}", daemon.log());
            }
            assert!(
                Instant::now() < deadline,
                "containerd did not start: {}",
                daemon.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn ctr(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.ctr);
        cmd.arg("--address")
            .arg(self.dir.path().join("containerd.sock"))
            .args(["--namespace", &self.namespace])
            .args(args)
            .stdin(Stdio::null());
        cmd
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // containerd puts a namespace's containers under the cgroup
        // /<namespace>/<id>. The runtime removes a container's own cgroup on
        // delete but, like runc, leaves the parent it created with it; the
        // namespace is this test's, so its parents are the test's to remove
        // (deepest first; all are empty once the containers are gone).
        let mut parents = berth_e2e::cgroups::dirs_naming(&self.namespace);
        parents.sort_by_key(|path| std::cmp::Reverse(path.components().count()));
        for parent in parents {
            let _ = std::fs::remove_dir(parent);
        }
    }
}

/// Writes an OCI image archive of one uncompressed layer (the rootfs tar).
fn oci_archive(dir: &Path, layer_tar: &Path, name: &str) -> PathBuf {
    let layout = dir.join("layout");
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| -> (String, usize) {
        let hex = format!("{:x}", Sha256::digest(bytes));
        std::fs::write(blobs.join(&hex), bytes).unwrap();
        (format!("sha256:{hex}"), bytes.len())
    };
    let (layer_digest, layer_size) = put(&std::fs::read(layer_tar).unwrap());
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let config = serde_json::json!({
        "architecture": arch,
        "os": "linux",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    });
    let (config_digest, config_size) = put(config.to_string().as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest, "size": layer_size}],
    });
    let (manifest_digest, manifest_size) = put(manifest.to_string().as_bytes());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": manifest_digest, "size": manifest_size,
                       "annotations": {"org.opencontainers.image.ref.name": name}}],
    });
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let archive = dir.join("image.tar");
    let status = Command::new(require::program("tar", "tar"))
        .arg("-C")
        .arg(&layout)
        .arg("-cf")
        .arg(&archive)
        .arg(".")
        .status()
        .unwrap();
    assert!(status.success());
    archive
}

#[test]
fn containerd_runs_a_container_to_completion_through_its_runc_shim() {
    require::root();
    let daemon = Containerd::start();
    let work = tempfile::tempdir().unwrap();
    let image = "localhost/berth-busybox:test";
    let archive = oci_archive(work.path(), &rootfs_tar(work.path()), image);
    checked(
        daemon
            .ctr(&["images", "import", "--snapshotter", "native"])
            .arg(&archive)
            .output()
            .unwrap(),
        "ctr images import",
    );

    let runtime = bins::berth_runtime();
    let id = unique_id("ctr");
    let out = daemon
        .ctr(&["run", "--rm", "--snapshotter", "native", "--runc-binary"])
        .arg(&runtime)
        .args([
            image,
            &id,
            "sh",
            "-c",
            "echo hello from $(cat /proc/1/comm); exit 3",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "ctr run: {}\ncontainerd log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        daemon.log()
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello from sh\n");

    // A detached task: exec into it, kill it, see the exit status.
    let id = unique_id("ctr-task");
    checked(
        daemon
            .ctr(&[
                "run",
                "--detach",
                "--snapshotter",
                "native",
                "--runc-binary",
            ])
            .arg(&runtime)
            .args([image, &id, "sleep", "300"])
            .output()
            .unwrap(),
        "ctr run --detach",
    );
    let exec = daemon
        .ctr(&[
            "task",
            "exec",
            "--exec-id",
            "probe",
            &id,
            "sh",
            "-c",
            "echo in-task",
        ])
        .output()
        .unwrap();
    assert_eq!(checked(exec, "ctr task exec"), "in-task\n");
    checked(
        daemon
            .ctr(&["task", "kill", "--signal", "SIGKILL", &id])
            .output()
            .unwrap(),
        "ctr task kill",
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let tasks = checked(daemon.ctr(&["task", "ls"]).output().unwrap(), "ctr task ls");
        if tasks
            .lines()
            .any(|l| l.starts_with(&id) && l.contains("STOPPED"))
        {
            break;
        }
        assert!(Instant::now() < deadline, "the task did not stop: {tasks}");
        std::thread::sleep(Duration::from_millis(50));
    }
    checked(
        daemon.ctr(&["task", "delete", &id]).output().unwrap(),
        "ctr task delete",
    );
    checked(
        daemon.ctr(&["container", "delete", &id]).output().unwrap(),
        "ctr container delete",
    );
}

/// Force-deletes the container on drop, so a failed assertion leaves no
/// process or cgroup behind.
struct Deleted<'a>(&'a berth_containers::runc::Runc, &'a str);

impl Drop for Deleted<'_> {
    fn drop(&mut self) {
        let _ = self.0.delete(self.1, true);
    }
}

/// Polls the container's state until it has `status`.
fn wait_for_status(
    runc: &berth_containers::runc::Runc,
    id: &str,
    status: berth_containers::runc::Status,
) -> berth_containers::runc::State {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let state = runc.state(id).unwrap();
        if state.status == status || Instant::now() > deadline {
            return state;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// berth's typed runc client drives a container through its whole life, the
/// same way with berth-runtime and with runc.
fn typed_client_drives_a_container_through_its_life(binary: PathBuf) {
    use berth_containers::runc::{
        CreateOptions, ExecOptions, ExecProcess, ProcessIo, ProcessSpec, Runc, RuncError, Status,
    };
    use std::io::Read;
    let what = binary.display().to_string();
    let root = tempfile::tempdir().unwrap();
    let runc = Runc::new(&binary)
        .root(root.path().join("state"))
        .log(root.path().join("log.json"));
    let bundle = berth_e2e::bundle::Bundle::busybox(&["sleep", "300"]);
    let id = unique_id("typed");
    let pid_file = bundle.path().join("pid");

    runc.create(
        &id,
        bundle.path(),
        CreateOptions {
            pid_file: Some(pid_file.clone()),
            ..CreateOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("{what}: create: {e}"));
    let _deleted = Deleted(&runc, &id);
    let created = runc.state(&id).unwrap();
    assert_eq!(created.status, Status::Created, "{what}");
    assert_eq!(created.id, id);
    assert_eq!(created.bundle, bundle.path());
    let written: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(created.pid, written, "{what}: the pid file and state agree");

    runc.start(&id).unwrap();
    let running = runc.state(&id).unwrap();
    assert_eq!(running.status, Status::Running, "{what}");
    // The pidfd pins the container's init: signal 0 through it reaches it.
    let pidfd = running.pidfd().unwrap();
    // SAFETY: pidfd_send_signal takes a descriptor, a signal, a null siginfo
    // and flags.
    let sent = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            std::os::fd::AsRawFd::as_raw_fd(&pidfd),
            0,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    assert_eq!(sent, 0, "{what}: signal 0 through the pidfd");
    assert!(
        runc.ps(&id).unwrap().contains(&running.pid),
        "{what}: ps lists the init process"
    );
    let stats = runc.stats(&id).unwrap();
    assert!(stats.pids.current >= 1, "{what}: {stats:?}");

    let resources: oci_spec::runtime::LinuxResources =
        serde_json::from_str(r#"{"pids":{"limit":64}}"#).unwrap();
    runc.update(&id, &resources).unwrap();
    assert_eq!(runc.stats(&id).unwrap().pids.limit, 64, "{what}: update");

    runc.pause(&id).unwrap();
    assert_eq!(runc.state(&id).unwrap().status, Status::Paused, "{what}");
    runc.resume(&id).unwrap();
    assert_eq!(runc.state(&id).unwrap().status, Status::Running, "{what}");

    // A second process, its output through a pipe.
    let (mut reader, writer) = std::io::pipe().unwrap();
    let code = runc
        .exec(
            &id,
            ProcessSpec::Flags(&ExecProcess {
                args: vec![
                    "sh".into(),
                    "-c".into(),
                    "echo exec-$((40+2)) in $PWD; exit 3".into(),
                ],
                cwd: Some("/tmp".into()),
                env: vec!["A=1".into()],
                ..ExecProcess::default()
            }),
            ExecOptions {
                io: ProcessIo {
                    stdout: Some(writer.into()),
                    ..ProcessIo::default()
                },
                ..ExecOptions::default()
            },
        )
        .unwrap();
    let mut out = String::new();
    reader.read_to_string(&mut out).unwrap();
    assert_eq!(out, "exec-42 in /tmp\n", "{what}");
    assert_eq!(code, 3, "{what}: the exec'd process's exit code");

    runc.kill(&id, "SIGKILL", false).unwrap();
    let stopped = wait_for_status(&runc, &id, Status::Stopped);
    assert_eq!(stopped.status, Status::Stopped, "{what}");
    runc.delete(&id, false).unwrap();

    // A container that is gone: the error names the subcommand and the
    // container, and carries the runtime's own words.
    let err = runc.state(&id).unwrap_err();
    assert!(
        matches!(
            err,
            RuncError::Failed {
                command: "state",
                ..
            }
        ),
        "{what}: {err}"
    );
    assert!(err.to_string().contains(&id), "{what}: {err}");
    assert!(!err.runtime_errors().is_empty(), "{what}: {err}");
    let err = runc.kill(&id, "SIGTERM", false).unwrap_err();
    assert!(
        matches!(
            err,
            RuncError::Failed {
                command: "kill",
                ..
            }
        ),
        "{what}: {err}"
    );
}

#[test]
fn typed_runc_client_drives_berth_runtime() {
    require::root();
    typed_client_drives_a_container_through_its_life(bins::berth_runtime());
}

#[test]
fn typed_runc_client_drives_runc() {
    require::root();
    typed_client_drives_a_container_through_its_life(require::program("runc", "runc"));
}
