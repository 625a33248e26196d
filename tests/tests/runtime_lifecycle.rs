//! berth-runtime's lifecycle, end to end against the built binary: state JSON
//! at each step, exit codes and output, exec, a tty through a console socket
//! and the caller's terminal shared with an attached run and exec, pidfds
//! through `--pidfd-socket`,
//! pause/resume, kill, delete --force, events (--stats, OOM kills), ps, list, update,
//! features, spec and runc's JSON log lines.

// Helpers outside #[test] functions fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod runtime_support;

use berth_e2e::bundle::Bundle;
use runtime_support::{Runtime, unique_id, wait_for_content};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixListener;
use std::process::Stdio;

/// A container process that waits for the test to create `/tmp/go` in its
/// rootfs, then writes to stdout and stderr and exits with 7.
const GATED: &[&str] = &[
    "/bin/sh",
    "-c",
    "while [ ! -e /tmp/go ]; do sleep 0.05; done; echo out-$(hostname); echo err >&2; exit 7",
];

#[test]
fn created_running_paused_stopped_with_runc_state_json() {
    let rt = Runtime::new();
    let bundle = Bundle::busybox(GATED);
    let logs = tempfile::tempdir().unwrap();
    let id = unique_id("life");

    rt.create(&id, bundle.path(), logs.path(), &[]);
    let created = rt.state(&id);
    let mut keys: Vec<&str> = created
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "bundle",
            "created",
            "id",
            "ociVersion",
            "owner",
            "pid",
            "rootfs",
            "status"
        ],
        "state keys: {created}"
    );
    assert_eq!(created["status"], "created");
    assert_eq!(created["id"], id.as_str());
    let pid = created["pid"].as_i64().unwrap();
    assert!(pid > 0 && std::path::Path::new(&format!("/proc/{pid}")).exists());
    let bundle_dir = std::fs::canonicalize(bundle.path()).unwrap();
    assert_eq!(created["bundle"], bundle_dir.to_str().unwrap());
    assert_eq!(
        created["rootfs"],
        bundle_dir.join("rootfs").to_str().unwrap()
    );
    assert!(created["created"].as_str().unwrap().ends_with('Z'));
    assert_eq!(created["owner"], "");

    // A created container is not running: exec is refused, start works once.
    rt.ok(&["start", &id]);
    let running = rt.wait_status(&id, "running");
    assert_eq!(running["pid"], pid);
    let again = rt.fails(&["start", &id]);
    assert!(again.contains("running"), "{again}");

    let pids: Vec<i64> = serde_json::from_str(&rt.ok(&["ps", "--format", "json", &id])).unwrap();
    assert!(pids.contains(&pid), "ps json {pids:?} lacks init {pid}");
    let table = rt.ok(&["ps", &id]);
    assert!(table.lines().next().unwrap().contains("PID"), "{table}");
    assert!(table.contains(&pid.to_string()), "{table}");

    let event: serde_json::Value =
        serde_json::from_str(&rt.ok(&["events", "--stats", &id])).unwrap();
    assert_eq!(event["type"], "stats");
    assert_eq!(event["id"], id.as_str());
    assert!(
        event["data"]["pids"]["current"].as_u64().unwrap() >= 1,
        "{event}"
    );
    assert!(
        event["data"]["memory"]["usage"]["usage"].as_u64().unwrap() > 0,
        "{event}"
    );
    assert!(event["data"]["cpu"]["usage"].is_object(), "{event}");

    rt.ok(&["pause", &id]);
    assert_eq!(rt.state(&id)["status"], "paused");
    assert!(rt.fails(&["pause", &id]).contains("paused"));
    rt.ok(&["resume", &id]);
    assert_eq!(rt.state(&id)["status"], "running");

    std::fs::write(bundle.rootfs().join("tmp/go"), "").unwrap();
    let stopped = rt.wait_status(&id, "stopped");
    assert_eq!(stopped["pid"], 0);
    let out = wait_for_content(&logs.path().join(format!("{id}.out")), "\n");
    assert_eq!(out, "out-berth-test\n");
    let err = std::fs::read_to_string(logs.path().join(format!("{id}.err"))).unwrap();
    assert_eq!(err, "err\n");

    let kill = rt.fails(&["kill", &id, "KILL"]);
    assert!(kill.contains("container not running"), "{kill}");
    let start = rt.fails(&["start", &id]);
    assert!(start.contains("stopped"), "{start}");

    rt.ok(&["delete", &id]);
    let missing = rt.fails(&["state", &id]);
    assert!(missing.contains("does not exist"), "{missing}");
    rt.assert_gone(&id);
}

#[test]
fn run_returns_the_exit_code_and_passes_stdio() {
    let rt = Runtime::new();
    let bundle = Bundle::busybox(&[
        "/bin/sh",
        "-c",
        "read line; echo got-$line; echo oops >&2; exit 3",
    ]);
    let id = unique_id("run");
    let mut child = rt
        .cmd(&["run", "--bundle", bundle.path().to_str().unwrap(), &id])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"hello\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "got-hello\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "oops\n");
    rt.assert_gone(&id);

    // A signal death is 128 + the signal, as a shell reports it. PID 1 of a
    // namespace ignores signals it has no handler for unless they come from
    // outside, so the kill comes from the runtime.
    let bundle = Bundle::busybox(&["/bin/sleep", "30"]);
    let id = unique_id("run-sig");
    let run = rt
        .cmd(&["run", "--bundle", bundle.path().to_str().unwrap(), &id])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    rt.wait_status(&id, "running");
    rt.ok(&["kill", &id, "KILL"]);
    let out = run.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(137));
    rt.assert_gone(&id);

    // --keep leaves a stopped container to inspect and delete.
    let bundle = Bundle::busybox(&["/bin/true"]);
    let id = unique_id("run-keep");
    rt.ok(&[
        "run",
        "--keep",
        "--bundle",
        bundle.path().to_str().unwrap(),
        &id,
    ]);
    assert_eq!(rt.state(&id)["status"], "stopped");
    rt.ok(&["delete", &id]);
    rt.assert_gone(&id);
}

#[test]
fn exec_attached_and_detached_in_a_running_container() {
    let rt = Runtime::new();
    let bundle = Bundle::busybox(&["/bin/sleep", "60"]);
    let id = unique_id("exec");
    rt.run_detached(&id, bundle.path());

    let out = rt.output(&[
        "exec",
        &id,
        "/bin/sh",
        "-c",
        "echo in-$(hostname); echo e >&2; exit 4",
    ]);
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "in-berth-test\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "e\n");

    let out = rt.ok(&[
        "exec",
        "--env",
        "FOO=bar",
        "--cwd",
        "/tmp",
        "--user",
        "65534:65534",
        &id,
        "/bin/sh",
        "-c",
        "echo $FOO $(pwd) $(id -u) $(id -g) $PATH",
    ]);
    assert_eq!(
        out,
        "bar /tmp 65534 65534 /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
    );

    // Detached: returns at once, writes its pid, and the process runs in the container.
    let pid_file = bundle.path().join("exec.pid");
    rt.ok(&[
        "exec",
        "--detach",
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
        "/bin/sh",
        "-c",
        "echo detached > /tmp/marker",
    ]);
    let pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(pid > 0);
    wait_for_content(&bundle.rootfs().join("tmp/marker"), "detached");

    // --process with a process.json.
    let process = serde_json::json!({
        "args": ["/bin/sh", "-c", "echo from-json $X"],
        "env": ["X=1", "PATH=/bin"],
        "cwd": "/",
        "user": {"uid": 0, "gid": 0}
    });
    let process_path = bundle.path().join("process.json");
    std::fs::write(&process_path, process.to_string()).unwrap();
    let out = rt.ok(&["exec", "--process", process_path.to_str().unwrap(), &id]);
    assert_eq!(out, "from-json 1\n");

    rt.ok(&["delete", "--force", &id]);
    rt.assert_gone(&id);
}

#[test]
fn kill_signals_and_delete_force() {
    let rt = Runtime::new();
    let bundle = Bundle::busybox(&["/bin/sleep", "60"]);
    let id = unique_id("kill");
    rt.run_detached(&id, bundle.path());
    let pid = rt.state(&id)["pid"].as_i64().unwrap();

    let bad = rt.fails(&["kill", &id, "SIGNOPE"]);
    assert!(bad.contains("invalid signal"), "{bad}");
    let busy = rt.fails(&["delete", &id]);
    assert!(busy.contains("running"), "{busy}");

    rt.ok(&["kill", &id, "9"]);
    rt.wait_status(&id, "stopped");
    rt.ok(&["delete", &id]);
    rt.assert_gone(&id);
    assert_process_gone(pid);

    // delete --force removes a running container, its processes included.
    let id = unique_id("force");
    rt.run_detached(&id, bundle.path());
    let pid = rt.state(&id)["pid"].as_i64().unwrap();
    // The detached process lets go of the test's output pipes at once.
    rt.ok(&[
        "exec",
        "--detach",
        &id,
        "/bin/sh",
        "-c",
        "exec sleep 60 >/dev/null 2>&1",
    ]);
    rt.ok(&["kill", "--all", &id, "CONT"]);
    assert_eq!(rt.state(&id)["status"], "running");
    rt.ok(&["delete", "--force", &id]);
    rt.assert_gone(&id);
    assert_process_gone(pid);
    // --force on a container that does not exist is not an error.
    rt.ok(&["delete", "--force", &id]);
}

/// Waits until `pid` is gone or a zombie (PID 1 of this machine may not reap
/// the orphans a detached container leaves).
fn assert_process_gone(pid: i64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| !stat.contains(") Z "))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "process {pid} survived"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Receives one file descriptor sent with SCM_RIGHTS on a connected socket.
fn receive_fd(socket: &std::os::unix::net::UnixStream) -> OwnedFd {
    use std::os::fd::AsRawFd;
    let mut data = [0u8; 4096];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // Room for one fd of control data, aligned as cmsghdr requires.
    let mut control = [0u64; 8];
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of_val(&control);
    let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, 0) };
    assert!(n >= 0, "recvmsg: {}", std::io::Error::last_os_error());
    let cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    assert!(
        !cmsg.is_null(),
        "no file descriptor was sent on the console socket"
    );
    unsafe {
        assert_eq!((*cmsg).cmsg_type, libc::SCM_RIGHTS);
        let fd: RawFd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
        OwnedFd::from_raw_fd(fd)
    }
}

/// An attached `run` of a process that wants a terminal, without a console
/// socket, shares the caller's terminal as runc's does: the process gets a
/// pty, its output and exit code reach the caller, and input typed on the
/// caller's terminal reaches the process.
#[test]
fn attached_run_shares_the_callers_terminal() {
    let rt = Runtime::new();
    let bundle = Bundle::busybox_with(
        &["/bin/sh", "-c", "tty; read line; echo got-$line; exit 3"],
        |spec| {
            let mut process = spec.process().clone().unwrap();
            process.set_terminal(Some(true));
            spec.set_process(Some(process));
        },
    );
    let (master, slave) = open_pty();
    let stdio = || Stdio::from(slave.try_clone().unwrap());
    let id = unique_id("tty-run");
    let mut run = rt
        .cmd(&["run", "--bundle", bundle.path().to_str().unwrap(), &id])
        .stdin(stdio())
        .stdout(stdio())
        .stderr(stdio())
        .spawn()
        .unwrap();
    drop(slave);
    let (status, text) = type_and_read(master, &mut run);
    assert_terminal_session(status, &text, 3);
    rt.assert_gone(&id);
}

/// An attached `exec --tty` without a console socket shares the caller's
/// terminal, as with runc: the process gets a pty, input reaches it, and its
/// output and exit code reach the caller.
#[test]
fn attached_exec_shares_the_callers_terminal() {
    let rt = Runtime::new();
    let bundle = Bundle::busybox(&["/bin/sleep", "60"]);
    let id = unique_id("tty-exec");
    rt.run_detached(&id, bundle.path());
    let (master, slave) = open_pty();
    let stdio = || Stdio::from(slave.try_clone().unwrap());
    let mut exec = rt
        .cmd(&[
            "exec",
            "--tty",
            &id,
            "/bin/sh",
            "-c",
            "tty; read line; echo got-$line; exit 4",
        ])
        .stdin(stdio())
        .stdout(stdio())
        .stderr(stdio())
        .spawn()
        .unwrap();
    drop(slave);
    let (status, text) = type_and_read(master, &mut exec);
    assert_terminal_session(status, &text, 4);
    rt.ok(&["delete", "--force", &id]);
    rt.assert_gone(&id);
}

/// Asserts that a process ran on a pty, read the typed line and exited with
/// `code`.
fn assert_terminal_session(status: std::process::ExitStatus, text: &str, code: i32) {
    assert_eq!(status.code(), Some(code), "{text:?}");
    assert!(
        text.contains("/dev/pts/"),
        "the process has no terminal: {text:?}"
    );
    assert!(text.contains("got-typed"), "input did not arrive: {text:?}");
}

/// Types a line on the pty master, then reads it until the slave's last
/// holder closes it, and waits for `child`.
fn type_and_read(
    mut master: std::fs::File,
    child: &mut std::process::Child,
) -> (std::process::ExitStatus, String) {
    use std::io::{Read, Write};
    master.write_all(b"typed\r").unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let mut buf = [0u8; 1024];
        // The master reads EIO once every holder of the slave closed it.
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            text.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        text
    });
    let status = wait_with_timeout(child, std::time::Duration::from_secs(20));
    (status, reader.join().unwrap())
}

/// `--pidfd-socket` hands over a pidfd of the init process on create and of
/// the exec'd process on exec, and each signals exactly that process.
#[test]
fn pidfd_socket_receives_the_init_and_exec_processes() {
    let rt = Runtime::new();
    let bundle = Bundle::busybox(&["/bin/sleep", "60"]);
    let sockets = tempfile::tempdir().unwrap();
    let socket_path = sockets.path().join("pidfd.sock");
    let listener = UnixListener::bind(&socket_path).unwrap();
    let socket = socket_path.to_str().unwrap();
    let id = unique_id("pidfd");
    // A runtime that never sends must fail the test, not hang it.
    listener.set_nonblocking(true).unwrap();
    let accept = |listener: &UnixListener| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            match listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(false).unwrap();
                    return receive_fd(&stream);
                }
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "nothing connected to the pidfd socket"
                    );
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                Err(err) => panic!("accepting on the pidfd socket: {err}"),
            }
        }
    };

    let mut create = rt
        .cmd(&[
            "create",
            "--pidfd-socket",
            socket,
            "--bundle",
            bundle.path().to_str().unwrap(),
            &id,
        ])
        // The container inherits stdio: a pipe would stay open as long as
        // it runs.
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let init_fd = accept(&listener);
    assert!(create.wait().unwrap().success(), "create failed");
    let init_pid = rt.state(&id)["pid"].as_i64().unwrap();
    assert_eq!(pidfd_pid(&init_fd), init_pid, "the create pidfd's process");
    rt.ok(&["start", &id]);

    let mut exec = rt
        .cmd(&[
            "exec",
            "--detach",
            "--pidfd-socket",
            socket,
            &id,
            "/bin/sleep",
            "60",
        ])
        // The container inherits stdio: a pipe would stay open as long as
        // it runs.
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let exec_fd = accept(&listener);
    assert!(exec.wait().unwrap().success(), "exec --detach failed");
    let exec_pid = pidfd_pid(&exec_fd);
    assert_ne!(exec_pid, init_pid);
    assert!(
        rt.ok(&["ps", "--format", "json", &id])
            .contains(&exec_pid.to_string()),
        "the exec pidfd's process {exec_pid} is not in the container"
    );

    pidfd_kill(&exec_fd);
    assert_process_gone(exec_pid);
    assert_eq!(
        rt.state(&id)["status"],
        "running",
        "only the exec'd process dies"
    );

    // A pidfd that cannot be sent fails the exec and leaves no process.
    // Its stderr goes to a file: a process left behind would hold a pipe.
    let missing = sockets.path().join("missing.sock");
    let stderr_path = sockets.path().join("exec.err");
    let status = rt
        .cmd(&[
            "exec",
            "--detach",
            "--pidfd-socket",
            missing.to_str().unwrap(),
            &id,
            "/bin/sleep",
            "61",
        ])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .status()
        .unwrap();
    let err = std::fs::read_to_string(&stderr_path).unwrap();
    assert!(!status.success() && err.contains("missing.sock"), "{err}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let ps = rt.ok(&["ps", "--format", "json", &id]);
        let pids: Vec<i64> = serde_json::from_str(&ps).unwrap();
        if pids == [init_pid] {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the exec'd process outlived its failed exec: {pids:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    pidfd_kill(&init_fd);
    rt.wait_status(&id, "stopped");
    rt.ok(&["delete", &id]);
    rt.assert_gone(&id);
}

/// The pid a pidfd refers to, from its fdinfo.
fn pidfd_pid(fd: &OwnedFd) -> i64 {
    use std::os::fd::AsRawFd;
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd())).unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix("Pid:"))
        .unwrap_or_else(|| panic!("not a pidfd: {info}"))
        .trim()
        .parse()
        .unwrap()
}

/// Sends SIGKILL through a pidfd.
fn pidfd_kill(fd: &OwnedFd) {
    use std::os::fd::AsRawFd;
    // SAFETY: pidfd_send_signal with a valid pidfd, no siginfo and no flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    assert_eq!(
        rc,
        0,
        "pidfd_send_signal: {}",
        std::io::Error::last_os_error()
    );
}

/// A new pseudo-terminal pair: (master, slave).
fn open_pty() -> (std::fs::File, OwnedFd) {
    let (mut master, mut slave): (RawFd, RawFd) = (-1, -1);
    // SAFETY: openpty with valid out-pointers and no name, termios or size.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: openpty returned two new descriptors we own.
    unsafe {
        (
            std::fs::File::from(OwnedFd::from_raw_fd(master)),
            OwnedFd::from_raw_fd(slave),
        )
    }
}

fn wait_with_timeout(
    child: &mut std::process::Child,
    timeout: std::time::Duration,
) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("berth-runtime run did not finish within {timeout:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn terminal_is_sent_through_the_console_socket() {
    let rt = Runtime::new();
    let bundle = Bundle::busybox_with(&["/bin/sh", "-c", "tty; echo tty-ok; sleep 0.2"], |spec| {
        let mut process = spec.process().clone().unwrap();
        process.set_terminal(Some(true));
        spec.set_process(Some(process));
    });
    let sockets = tempfile::tempdir().unwrap();
    let socket_path = sockets.path().join("console.sock");
    let listener = UnixListener::bind(&socket_path).unwrap();
    let id = unique_id("tty");
    let create = rt
        .cmd(&[
            "create",
            "--console-socket",
            socket_path.to_str().unwrap(),
            "--bundle",
            bundle.path().to_str().unwrap(),
            &id,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (stream, _) = listener.accept().unwrap();
    let master = receive_fd(&stream);
    let out = create.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    rt.ok(&["start", &id]);

    let mut pty = std::fs::File::from(master);
    let mut text = String::new();
    let mut buf = [0u8; 1024];
    use std::io::Read;
    // The master reads EIO once the container closed the terminal.
    while let Ok(n) = pty.read(&mut buf) {
        if n == 0 {
            break;
        }
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
        if text.contains("tty-ok") {
            break;
        }
    }
    assert!(
        text.contains("/dev/pts/"),
        "the process has no terminal: {text:?}"
    );
    assert!(text.contains("tty-ok"), "{text:?}");
    rt.wait_status(&id, "stopped");
    rt.ok(&["delete", &id]);
    rt.assert_gone(&id);
}

#[test]
fn list_update_features_spec_and_json_log() {
    let rt = Runtime::new();
    let bundle = Bundle::busybox(&["/bin/sleep", "60"]);
    let (a, b) = (unique_id("list-a"), unique_id("list-b"));
    rt.run_detached(&a, bundle.path());
    rt.run_detached(&b, bundle.path());

    let listed: Vec<serde_json::Value> =
        serde_json::from_str(&rt.ok(&["list", "--format", "json"])).unwrap();
    let ids: Vec<&str> = listed.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [a.as_str(), b.as_str()]);
    assert_eq!(listed[0]["owner"], "root");
    assert_eq!(rt.ok(&["list", "-q"]), format!("{a}\n{b}\n"));
    let table = rt.ok(&["list"]);
    assert!(table.starts_with("ID "), "{table}");
    assert!(table.contains(&a) && table.contains("running"), "{table}");

    rt.ok(&["update", "--pids-limit", "42", &a]);
    let event: serde_json::Value =
        serde_json::from_str(&rt.ok(&["events", "--stats", &a])).unwrap();
    assert_eq!(event["data"]["pids"]["limit"], 42, "{event}");
    let mut child = rt
        .cmd(&["update", "--resources", "-", &a])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(br#"{"pids":{"limit":17}}"#)
            .unwrap();
    }
    assert!(child.wait().unwrap().success());
    let event: serde_json::Value =
        serde_json::from_str(&rt.ok(&["events", "--stats", &a])).unwrap();
    assert_eq!(event["data"]["pids"]["limit"], 17, "{event}");

    rt.ok(&["delete", "--force", &a]);
    rt.ok(&["delete", "--force", &b]);
    rt.assert_gone(&a);
    rt.assert_gone(&b);

    let features: serde_json::Value = serde_json::from_str(&rt.ok(&["features"])).unwrap();
    assert_eq!(features["ociVersionMin"], "1.0.0");
    assert!(
        features["ociVersionMax"]
            .as_str()
            .unwrap()
            .starts_with("1.")
    );
    assert!(
        features["linux"]["namespaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "user")
    );
    assert!(
        features["hooks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h == "createRuntime")
    );

    let dir = tempfile::tempdir().unwrap();
    rt.ok(&["spec", "--bundle", dir.path().to_str().unwrap()]);
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("config.json")).unwrap())
            .unwrap();
    assert_eq!(spec["root"]["path"], "rootfs");
    assert!(
        rt.fails(&["spec", "--bundle", dir.path().to_str().unwrap()])
            .contains("exists")
    );

    // containerd shows the msg of the last error line of the JSON log.
    let log = dir.path().join("log.json");
    let out = rt
        .cmd(&[
            "--log",
            log.to_str().unwrap(),
            "--log-format",
            "json",
            "kill",
            "no-such-container",
            "KILL",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "error");
    assert!(
        last["msg"].as_str().unwrap().contains("does not exist"),
        "{last}"
    );
    assert!(last["time"].as_str().unwrap().ends_with('Z'), "{last}");
}

/// A streaming `events` reports an `oom` event, as runc's does, when the OOM
/// killer kills a process of the container, and goes on with the stream.
#[test]
fn events_stream_reports_oom_kills() {
    use std::io::BufRead;
    let rt = Runtime::new();
    let bundle = Bundle::busybox_with(
        &[
            "/bin/sh",
            "-c",
            // dd's 64 MiB buffer does not fit under the 16 MiB limit.
            "while [ ! -e /tmp/go ]; do sleep 0.05; done; \
             dd if=/dev/zero of=/dev/null bs=64M count=1; sleep 60",
        ],
        |spec| {
            let memory = oci_spec::runtime::LinuxMemoryBuilder::default()
                .limit(16 * 1024 * 1024)
                .build()
                .unwrap();
            let resources = oci_spec::runtime::LinuxResourcesBuilder::default()
                .memory(memory)
                .build()
                .unwrap();
            let mut linux = spec.linux().clone().unwrap();
            linux.set_resources(Some(resources));
            spec.set_linux(Some(linux));
        },
    );
    let id = unique_id("oom");
    rt.run_detached(&id, bundle.path());
    let mut events = rt
        .cmd(&["events", "--interval", "60s", &id])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel();
    let stdout = events.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            if lines_tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let timeout = std::time::Duration::from_secs(20);
    let first: serde_json::Value =
        serde_json::from_str(&lines.recv_timeout(timeout).unwrap()).unwrap();
    assert_eq!(first["type"], "stats", "{first}");
    // The stream has its starting count now; only then may dd run.
    std::fs::write(bundle.rootfs().join("tmp/go"), "").unwrap();
    let next = lines
        .recv_timeout(timeout)
        .expect("no event followed the OOM kill");
    let oom: serde_json::Value = serde_json::from_str(&next).unwrap();
    assert_eq!(oom, serde_json::json!({"type": "oom", "id": id}));
    assert_eq!(rt.state(&id)["status"], "running", "only dd was killed");
    events.kill().unwrap();
    events.wait().unwrap();
    rt.ok(&["delete", "--force", &id]);
    rt.assert_gone(&id);
}

/// `spec` writes runc's defaults where they matter for security: no
/// inheritable capabilities (runc dropped them after CVE-2022-29162) and the
/// deny-all device rule, compared with what `runc spec` writes.
#[test]
fn spec_has_no_inheritable_capabilities_and_denies_devices() {
    let rt = Runtime::new();
    let runc = berth_e2e::require::program("runc", "runc");
    let ours = tempfile::tempdir().unwrap();
    rt.ok(&["spec", "--bundle", ours.path().to_str().unwrap()]);
    let theirs = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(runc)
        .args(["spec", "--bundle", theirs.path().to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success(), "runc spec failed");
    let load = |dir: &std::path::Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap()
    };
    let (ours, theirs) = (load(ours.path()), load(theirs.path()));
    let inheritable = &ours["process"]["capabilities"]["inheritable"];
    assert!(
        inheritable.is_null() || inheritable.as_array().is_some_and(Vec::is_empty),
        "spec writes inheritable capabilities: {inheritable}"
    );
    assert_eq!(
        ours["process"]["capabilities"]["inheritable"],
        theirs["process"]["capabilities"]["inheritable"]
    );
    assert_eq!(
        ours["linux"]["resources"]["devices"],
        serde_json::json!([{"allow": false, "access": "rwm"}])
    );
    assert_eq!(
        ours["linux"]["resources"]["devices"],
        theirs["linux"]["resources"]["devices"]
    );
}

/// A poststop hook that fails does not make the container undeletable: runc
/// logs the failure and deletes. Both plain and forced delete.
#[test]
fn failing_poststop_hook_is_logged_and_the_container_deleted() {
    let rt = Runtime::new();
    let bundle = Bundle::busybox_with(&["/bin/true"], |spec| {
        let hook = oci_spec::runtime::HookBuilder::default()
            .path("/bin/false")
            .build()
            .unwrap();
        spec.set_hooks(Some(
            oci_spec::runtime::HooksBuilder::default()
                .poststop(vec![hook])
                .build()
                .unwrap(),
        ));
    });
    let logs = tempfile::tempdir().unwrap();
    for force in [false, true] {
        let id = unique_id("poststop-fails");
        rt.create(&id, bundle.path(), logs.path(), &[]);
        rt.ok(&["start", &id]);
        rt.wait_status(&id, "stopped");
        let args: &[&str] = if force {
            &["delete", "--force", &id]
        } else {
            &["delete", &id]
        };
        let out = rt.output(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?} failed: {stderr}");
        assert!(
            stderr.contains("poststop") && stderr.contains("warn"),
            "{args:?} should warn about the failed hook: {stderr}"
        );
        rt.assert_gone(&id);
    }
}

/// A runtime killed while it rewrote `state.json` (libcontainer truncates it
/// first) leaves a running container with an empty state file. `delete
/// --force` must still kill it and remove its cgroups: a killed build's
/// cleanup relies on it. Without that, the state directory went and the
/// container and its cgroups stayed.
#[test]
fn delete_force_kills_a_container_whose_state_file_is_torn() {
    let rt = Runtime::new();
    let bundle = Bundle::busybox(&["sleep", "60"]);
    let logs = tempfile::tempdir().unwrap();
    let id = unique_id("torn-state");
    rt.create(&id, bundle.path(), logs.path(), &[]);
    rt.ok(&["start", &id]);
    let pid = rt.wait_status(&id, "running")["pid"].as_i64().unwrap();
    std::fs::write(rt.root.path().join(&id).join("state.json"), b"").unwrap();
    rt.ok(&["delete", "--force", &id]);
    rt.assert_gone(&id);
    // The process is gone too (a zombie of a reaped parent counts as gone).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::fs::read_to_string(format!("/proc/{pid}/status"))
        .is_ok_and(|status| !status.contains("State:\tZ"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the container's process {pid} still runs"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Two `create` of one id at the same time: exactly one wins, the other
/// fails with "already exists", and the winner is intact. Without a lock
/// both could pass the existence check and the loser's cleanup remove the
/// winner's state.
#[test]
fn concurrent_creates_of_one_id_leave_exactly_one_container() {
    let rt = Runtime::new();
    let bundle = Bundle::busybox(&["/bin/sleep", "60"]);
    let logs = tempfile::tempdir().unwrap();
    for trial in 0..20 {
        let id = unique_id("race");
        // The container keeps the stdio of its create: files, not pipes the
        // test would wait on.
        let spawn = |n: usize| {
            let path = logs.path().join(format!("{id}.{n}.err"));
            let child = rt
                .cmd(&["create", "--bundle", bundle.path().to_str().unwrap(), &id])
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&path).unwrap())
                .spawn()
                .unwrap();
            (child, path)
        };
        let (a, b) = (spawn(0), spawn(1));
        let outcomes: Vec<(bool, String)> = [a, b]
            .into_iter()
            .map(|(mut child, path)| {
                let ok = child.wait().unwrap().success();
                (ok, std::fs::read_to_string(path).unwrap())
            })
            .collect();
        let winners = outcomes.iter().filter(|(ok, _)| *ok).count();
        let errors: Vec<String> = outcomes
            .iter()
            .filter(|(ok, _)| !ok)
            .map(|(_, err)| err.clone())
            .collect();
        assert_eq!(winners, 1, "trial {trial}: {errors:?}");
        assert!(
            errors[0].contains("already exists"),
            "trial {trial}: the loser should say the id exists: {}",
            errors[0]
        );
        let state = rt.state(&id);
        assert_eq!(state["status"], "created", "trial {trial}: {state}");
        let pid = state["pid"].as_i64().unwrap();
        assert!(
            std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "trial {trial}: the winner's init {pid} is gone"
        );
        rt.ok(&["delete", "--force", &id]);
        rt.assert_gone(&id);
    }
}
