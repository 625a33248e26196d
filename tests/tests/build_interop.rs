//! Interop of build outputs: the OCI layout (directory and tar) is read and
//! unpacked by umoci and skopeo, and podman loads and runs the docker archive.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod build_common;

use berth_e2e::require;
use build_common::BuildEnv;
use std::process::Command;

fn setup() -> BuildEnv {
    let env = BuildEnv::new();
    env.write("hello.txt", "hello interop\n");
    env.write(
        "Dockerfile",
        "FROM busybox\nCOPY hello.txt /hello.txt\nRUN rm /etc/hostname\nCMD [\"cat\", \"/hello.txt\"]\n",
    );
    env
}

fn ok(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn oci_outputs_pass_umoci_and_skopeo() {
    let env = setup();
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().join("layout");
    let tar = out.path().join("image.tar");
    env.build_ok(&[
        "-t",
        "interop:1",
        "--output",
        &format!("type=oci,dest={}", dir.display()),
        "--output",
        &format!("type=oci,dest={}", tar.display()),
    ]);
    // umoci validates the layout, the manifest, the config and every layer
    // (digests and sizes) while unpacking.
    let umoci = require::program("umoci", "umoci");
    let bundle = out.path().join("bundle");
    ok(Command::new(&umoci)
        .args(["--log", "error", "unpack", "--image"])
        .arg(format!("{}:interop:1", dir.display()))
        .arg(&bundle));
    assert_eq!(
        std::fs::read_to_string(bundle.join("rootfs/hello.txt")).unwrap(),
        "hello interop\n"
    );
    assert!(
        !bundle.join("rootfs/etc/hostname").exists(),
        "the whiteout was applied"
    );
    let stat = ok(Command::new(&umoci)
        .args(["stat", "--image"])
        .arg(format!("{}:interop:1", dir.display())));
    assert!(stat.contains("COPY hello.txt"), "{stat}");

    // skopeo reads the tar form and copies it into a fresh layout, checking digests.
    let skopeo = require::program("skopeo", "skopeo");
    let copied = out.path().join("copied");
    ok(Command::new(&skopeo)
        .args(["copy", "--quiet"])
        .arg(format!("oci-archive:{}:interop:1", tar.display()))
        .arg(format!("oci:{}:again", copied.display())));
    let inspect = ok(Command::new(&skopeo)
        .arg("inspect")
        .arg(format!("oci:{}:again", copied.display())));
    assert!(inspect.contains("\"Layers\""), "{inspect}");
}

#[test]
fn podman_loads_and_runs_the_docker_archive() {
    let env = setup();
    let podman = require::program("podman", "podman");
    let out = tempfile::tempdir().unwrap();
    let archive = out.path().join("image.tar");
    let name = format!("localhost/berth-interop-{}:latest", std::process::id());
    env.build_ok(&[
        "-t",
        &name,
        "--output",
        &format!("type=docker,dest={}", archive.display()),
    ]);
    // Podman keeps its own store in the temporary directory, so the test
    // leaves nothing behind on the machine.
    let podman_cmd = || {
        let mut c = Command::new(&podman);
        c.arg("--root")
            .arg(out.path().join("podman-root"))
            .arg("--runroot")
            .arg(out.path().join("podman-run"))
            .args([
                "--storage-driver",
                "vfs",
                "--cgroup-manager",
                "cgroupfs",
                "--events-backend",
                "none",
            ]);
        c
    };
    let loaded = ok(podman_cmd().arg("load").arg("-i").arg(&archive));
    assert!(loaded.contains(&name), "{loaded}");
    // The machine's limits may be below podman's defaults and raising them is
    // not allowed here; ask for small ones, which lowering always permits.
    let nofile = rlimit(libc::RLIMIT_NOFILE).min(1024);
    let nproc = rlimit(libc::RLIMIT_NPROC).min(4096);
    let output = ok(podman_cmd()
        .args(["run", "--rm", "--network", "none", "--ulimit"])
        .arg(format!("nofile={nofile}:{nofile}"))
        .arg("--ulimit")
        .arg(format!("nproc={nproc}:{nproc}"))
        .arg(&name));
    assert_eq!(output, "hello interop\n");
}

fn rlimit(resource: libc::__rlimit_resource_t) -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    let rc = unsafe { libc::getrlimit(resource, &mut limit) };
    assert_eq!(rc, 0);
    limit.rlim_cur
}
