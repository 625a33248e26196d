//! End to end: `berth run` (foreground, `-d`, `-t`, `-i`, every flag), `exec`, `ps`,
//! `stop`, `rm` and `logs` on the busybox fixture, with berth-runtime and with
//! Debian's runc, and that nothing is left behind: no container directory, no
//! mount under the store, no runtime state, no cgroup.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod build_common;

use berth_e2e::{bins, require};
use build_common::BuildEnv;
use serde_json::Value;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A store holding `busybox` (default command `sh`).
struct Env {
    build: BuildEnv,
}

impl Env {
    fn new() -> Env {
        Env {
            build: BuildEnv::new(),
        }
    }

    fn store(&self) -> &Path {
        self.build.store.path()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bins::berth());
        cmd.arg("--root").arg(self.store()).args(args);
        cmd
    }

    fn berth(&self, args: &[&str]) -> Output {
        self.command(args).stdin(Stdio::null()).output().unwrap()
    }

    /// Runs berth and fails the test unless it succeeds; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.berth(args);
        assert!(
            out.status.success(),
            "berth {args:?} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn containers_dir(&self) -> PathBuf {
        self.store().join("containers")
    }

    /// The container directories that exist.
    fn container_dirs(&self) -> Vec<String> {
        match fs::read_dir(self.containers_dir()) {
            Ok(entries) => entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Fails unless no container, mount or cgroup of this store is left.
    fn assert_nothing_left(&self) {
        assert_eq!(
            self.container_dirs(),
            Vec::<String>::new(),
            "container directories left"
        );
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
        let store = self.store().to_string_lossy().into_owned();
        let left: Vec<&str> = mounts.lines().filter(|l| l.contains(&store)).collect();
        assert!(left.is_empty(), "mounts left under the store: {left:#?}");
    }

    /// The record of a container, by its full id.
    fn record(&self, id: &str) -> Value {
        let path = self.containers_dir().join(id).join("container.json");
        serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn output_exit_codes_and_the_stored_record() {
    let env = Env::new();
    let out = env.berth(&["run", "--rm", "busybox", "echo", "hello"]);
    assert_eq!(text(&out.stdout), "hello\n");
    assert_eq!(out.status.code(), Some(0));

    let out = env.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(text(&out.stdout), "out\n");
    assert!(text(&out.stderr).contains("err\n"), "{}", text(&out.stderr));
    assert_eq!(out.status.code(), Some(3));
    env.assert_nothing_left();

    // Without --rm the container stays, exited, with its code, until rm.
    let out = env.berth(&[
        "run",
        "--name",
        "kept",
        "busybox",
        "sh",
        "-c",
        "echo kept-out; echo kept-err >&2; exit 42",
    ]);
    assert_eq!(out.status.code(), Some(42));
    let ids = env.container_dirs();
    assert_eq!(ids.len(), 1);
    let id = &ids[0];
    assert_eq!(id.len(), 64);
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    let record = env.record(id);
    assert_eq!(record["name"], "kept");
    assert_eq!(record["state"]["status"], "exited");
    assert_eq!(record["state"]["code"], 42);
    assert!(
        record["image_digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:"),
        "{record}"
    );
    assert_eq!(text(&out.stdout), "kept-out\n");
    // Its output is logged as it is shown, as Docker does.
    let logs = env.berth(&["logs", "kept"]);
    assert_eq!(text(&logs.stdout), "kept-out\n");
    assert_eq!(text(&logs.stderr), "kept-err\n");
    let ps = env.ok(&["ps", "-a"]);
    let line = ps.lines().find(|l| l.contains("kept")).unwrap();
    assert!(line.starts_with(&id[..12]), "{ps}");
    assert!(line.contains("Exited (42)"), "{ps}");
    assert!(
        !env.ok(&["ps"]).contains("kept"),
        "ps without -a lists only running ones"
    );
    // The image is in use until the container is removed.
    let out = env.berth(&["rmi", "busybox"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(&id[..12]),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(env.ok(&["rm", &id[..8]]).trim(), &id[..8]);
    env.assert_nothing_left();
    assert!(
        berth_e2e::cgroups::dirs_naming(id).is_empty(),
        "{:?}",
        berth_e2e::cgroups::dirs_naming(id)
    );
}

#[test]
fn flags_shape_the_process_as_docker_does() {
    let env = Env::new();
    let script = "echo \"$FOO|$EMPTY|$HOSTNAME|$HOME|$TERM\"; pwd; id; hostname; cat /etc/hostname; \
                  grep -c \"$(hostname)\" /etc/hosts; ulimit -n; cat /proc/self/status | grep NoNewPrivs";
    let out = env.berth(&[
        "run",
        "--rm",
        "-e",
        "FOO=bar",
        "-e",
        "EMPTY=",
        "-w",
        "/made/here",
        "-u",
        "nobody",
        "--hostname",
        "box1",
        "busybox",
        "sh",
        "-c",
        script,
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "bar||box1|/nonexistent|", "{stdout}");
    assert_eq!(lines[1], "/made/here");
    assert_eq!(lines[2], "uid=65534(nobody) gid=65534(nogroup)");
    assert_eq!(lines[3], "box1");
    assert_eq!(lines[4], "box1");
    assert_eq!(lines[5], "1");
    let nofile: u64 = lines[6].parse().unwrap();
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
        0
    );
    assert!(nofile > 1024 && nofile <= limit.rlim_max, "{nofile}");
    assert!(
        lines[7].ends_with('0'),
        "no_new_privileges is false: {}",
        lines[7]
    );

    // Docker's capabilities: its default set for root, none left for another user.
    let caps = env.ok(&[
        "run",
        "--rm",
        "busybox",
        "grep",
        "^Cap",
        "/proc/self/status",
    ]);
    for (set, want) in [
        ("CapInh", "0000000000000000"),
        ("CapEff", "00000000a80425fb"),
        ("CapBnd", "00000000a80425fb"),
        ("CapAmb", "0000000000000000"),
    ] {
        assert!(caps.contains(&format!("{set}:\t{want}")), "{caps}");
    }
    let caps = env.ok(&[
        "run",
        "--rm",
        "-u",
        "nobody",
        "busybox",
        "grep",
        "^CapEff",
        "/proc/self/status",
    ]);
    assert_eq!(caps.trim(), "CapEff:\t0000000000000000");
    // Masked and read-only paths.
    let out = env.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "cat /proc/kcore; echo x > /proc/sys/kernel/domainname",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("Read-only file system"),
        "{}",
        text(&out.stderr)
    );

    // Numeric user and group, with no passwd entry; the default hostname is the short id.
    let out = env.ok(&[
        "run",
        "-u",
        "4242:77",
        "--name",
        "num",
        "busybox",
        "sh",
        "-c",
        "id -u; id -g; hostname",
    ]);
    let id = &env.container_dirs()[0];
    assert_eq!(out, format!("4242\n77\n{}\n", &id[..12]));
    env.ok(&["rm", "num"]);

    // A group by name.
    let out = env.ok(&["run", "--rm", "-u", "root:nogroup", "busybox", "id", "-g"]);
    assert_eq!(out.trim(), "65534");

    // --entrypoint replaces the image's and drops its Cmd; arguments replace Cmd.
    assert_eq!(
        env.ok(&["run", "--rm", "--entrypoint", "echo", "busybox"]),
        "\n"
    );
    assert_eq!(
        env.ok(&["run", "--rm", "--entrypoint", "echo", "busybox", "a", "b"]),
        "a b\n"
    );
    // The image's Cmd (sh) runs without arguments: it reads the script from -i.
    let mut child = env
        .command(&["run", "--rm", "-i", "busybox"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"echo from stdin\nexit 4\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(text(&out.stdout), "from stdin\n");
    assert_eq!(out.status.code(), Some(4));
    // Without -i the container's input is empty.
    assert_eq!(env.ok(&["run", "--rm", "busybox", "cat"]), "");

    // --network none leaves only loopback; --network host is the host's network.
    let none = env.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "ls",
        "/sys/class/net",
    ]);
    assert_eq!(none.split_whitespace().collect::<Vec<_>>(), ["lo"]);
    // Other tests add and remove veths meanwhile: the links present both
    // before and after the run are the ones the container must see.
    let links = || -> std::collections::BTreeSet<String> {
        fs::read_dir("/sys/class/net")
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    let before = links();
    let host = env.ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        "busybox",
        "ls",
        "/sys/class/net",
    ]);
    let after = links();
    let seen: std::collections::BTreeSet<String> =
        host.split_whitespace().map(str::to_owned).collect();
    let stable: Vec<&String> = before.intersection(&after).collect();
    assert!(
        stable.len() > 1,
        "the host has more than loopback: {stable:?}"
    );
    for link in stable {
        assert!(
            seen.contains(link),
            "{link} missing from the host network: {seen:?}"
        );
    }
    env.assert_nothing_left();
}

#[test]
fn volumes_bind_host_paths_writable_or_read_only() {
    let env = Env::new();
    let host = tempfile::tempdir().unwrap();
    fs::write(host.path().join("in"), "from host\n").unwrap();
    let rw = format!("{}:/data", host.path().display());
    let out = env.ok(&[
        "run",
        "--rm",
        "-v",
        &rw,
        "busybox",
        "sh",
        "-c",
        "cat /data/in; echo back > /data/out",
    ]);
    assert_eq!(out, "from host\n");
    assert_eq!(
        fs::read_to_string(host.path().join("out")).unwrap(),
        "back\n"
    );

    let ro = format!("{}:/data:ro", host.path().display());
    let out = env.berth(&[
        "run",
        "--rm",
        "-v",
        &ro,
        "busybox",
        "sh",
        "-c",
        "cat /data/in; touch /data/new",
    ]);
    assert_eq!(text(&out.stdout), "from host\n");
    assert_ne!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("Read-only file system"),
        "{}",
        text(&out.stderr)
    );
    assert!(!host.path().join("new").exists());
    env.assert_nothing_left();
}

#[test]
fn signals_to_berth_reach_the_container() {
    let env = Env::new();
    let script = "trap 'echo got TERM; exit 7' TERM; trap 'echo got USR1' USR1; echo ready; \
                  while true; do sleep 0.1; done";
    let mut child = env
        .command(&["run", "--rm", "busybox", "sh", "-c", script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    let pid = child.id() as i32;
    unsafe { libc::kill(pid, libc::SIGUSR1) };
    assert_eq!(lines.next().unwrap().unwrap(), "got USR1");
    unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(lines.next().unwrap().unwrap(), "got TERM");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(7));
    env.assert_nothing_left();
}

#[test]
fn detached_containers_with_ps_logs_stop_and_rm() {
    let env = Env::new();
    let script = "echo started; echo to-stderr >&2; i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.1; done";
    let id = env.ok(&[
        "run", "-d", "--name", "ticker", "busybox", "sh", "-c", script,
    ]);
    let id = id.trim().to_string();
    assert_eq!(id.len(), 64, "{id}");

    let ps = env.ok(&["ps"]);
    let mut rows = ps.lines();
    let header = rows.next().unwrap();
    for column in [
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "NAMES",
    ] {
        assert!(header.contains(column), "{header}");
    }
    let row = rows.next().unwrap();
    assert!(
        row.starts_with(&id[..12]) && row.contains("busybox"),
        "{row}"
    );
    assert!(row.contains(" Up ") && row.ends_with("ticker"), "{row}");
    assert_eq!(env.ok(&["ps", "-q"]).trim(), &id[..12]);
    let json: Value = serde_json::from_str(env.ok(&["ps", "--format", "json"]).trim()).unwrap();
    assert_eq!(json["ID"], &id[..12]);
    assert_eq!(json["Names"], "ticker");
    assert_eq!(json["State"], "running");

    // The output is logged by stream while the container runs.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = env.berth(&["logs", "ticker"]);
        if text(&out.stdout).contains("tick 3") {
            assert!(
                text(&out.stdout).starts_with("started\ntick 1\n"),
                "{}",
                text(&out.stdout)
            );
            assert_eq!(text(&out.stderr), "to-stderr\n");
            break;
        }
        assert!(Instant::now() < deadline, "no output logged: {out:?}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // A second container by the same name is refused, and leaves nothing.
    let out = env.berth(&["run", "-d", "--name", "ticker", "busybox", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("already in use"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(env.container_dirs(), vec![id.clone()]);

    // rm refuses a running container.
    let out = env.berth(&["rm", "ticker"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("is running"),
        "{}",
        text(&out.stderr)
    );

    // logs -f follows until the container stops; stop gives up on SIGTERM
    // (sh as pid 1 ignores it) and kills after the timeout.
    let follower = env
        .command(&["logs", "-f", &id[..6]])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    assert_eq!(env.ok(&["stop", "-t", "1", "ticker"]).trim(), "ticker");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(8),
        "{waited:?}"
    );
    let followed = follower.wait_with_output().unwrap();
    assert!(followed.status.success());
    assert!(
        text(&followed.stdout).contains("tick 5"),
        "{}",
        text(&followed.stdout)
    );
    let ps = env.ok(&["ps", "-a"]);
    assert!(ps.contains("Exited (137)"), "{ps}");
    assert!(!env.ok(&["ps"]).contains("ticker"));
    // The mount went with the process; the container stays until rm.
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&id), "{mounts}");
    env.ok(&["rm", "ticker"]);
    env.assert_nothing_left();
    assert!(berth_e2e::cgroups::dirs_naming(&id).is_empty());
}

#[test]
fn stop_uses_the_stop_signal_and_rm_force_kills() {
    let env = Env::new();
    let trap = "trap 'echo bye; exit 0' TERM; echo up; while true; do sleep 0.1; done";
    let id = env
        .ok(&["run", "-d", "busybox", "sh", "-c", trap])
        .trim()
        .to_string();
    wait_for_log(&env, &id, "up");
    let started = Instant::now();
    env.ok(&["stop", &id]);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "SIGTERM was not handled"
    );
    assert_eq!(env.record(&id)["state"]["code"], 0);
    assert_eq!(text(&env.berth(&["logs", &id]).stdout), "up\nbye\n");
    assert_eq!(
        text(&env.berth(&["logs", "--tail", "1", &id]).stdout),
        "bye\n"
    );
    let stamped = text(&env.berth(&["logs", "-t", &id]).stdout);
    let first = stamped.lines().next().unwrap();
    assert!(
        first.ends_with("Z up") && first.starts_with("20"),
        "{stamped}"
    );
    // Stopping a stopped container is fine, as with Docker.
    env.ok(&["stop", &id]);
    env.ok(&["rm", &id]);

    let id = env
        .ok(&["run", "-d", "busybox", "sleep", "60"])
        .trim()
        .to_string();
    env.ok(&["rm", "-f", &id]);
    env.assert_nothing_left();
    assert!(berth_e2e::cgroups::dirs_naming(&id).is_empty());

    // The image's STOPSIGNAL comes first; a shell as pid 1 would ignore SIGTERM.
    env.build.write(
        "Dockerfile",
        "FROM busybox\nSTOPSIGNAL SIGUSR1\n\
         CMD [\"sh\", \"-c\", \"trap 'echo usr1; exit 9' USR1; echo up; while true; do sleep 0.1; done\"]\n",
    );
    env.build.build_ok(&["-t", "stoppable"]);
    let id = env.ok(&["run", "-d", "stoppable"]).trim().to_string();
    wait_for_log(&env, &id, "up");
    let started = Instant::now();
    env.ok(&["stop", &id[..12]]);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the stop signal was not sent"
    );
    assert_eq!(env.record(&id)["state"]["code"], 9);
    assert_eq!(text(&env.berth(&["logs", &id]).stdout), "up\nusr1\n");
    env.ok(&["rm", &id]);

    // --rm with -d: the monitor removes the container when it exits.
    env.ok(&["run", "-d", "--rm", "busybox", "true"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !env.container_dirs().is_empty() {
        assert!(Instant::now() < deadline, "the --rm container stayed");
        std::thread::sleep(Duration::from_millis(50));
    }
    env.assert_nothing_left();
}

fn wait_for_log(env: &Env, id: &str, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !text(&env.berth(&["logs", id]).stdout).contains(needle) {
        assert!(Instant::now() < deadline, "'{needle}' never logged");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn tty_through_a_pty_with_its_window_size() {
    let env = Env::new();
    let script = require::program("script", "bsdutils");
    let berth = format!(
        "stty rows 33 cols 101; {} --root {} run --rm -t busybox sh -c 'tty; test -t 0 && test -t 1 && echo both-tty; stty size; echo $TERM; exit 6'",
        bins::berth().display(),
        env.store().display()
    );
    let out = Command::new(script)
        .args(["-qfec", &berth, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = text(&out.stdout).replace('\r', "");
    assert!(stdout.contains("/dev/pts/"), "{stdout}");
    assert!(stdout.contains("both-tty\n"), "{stdout}");
    assert!(stdout.contains("33 101\n"), "{stdout}");
    assert!(stdout.contains("xterm\n"), "{stdout}");
    assert_eq!(out.status.code(), Some(6), "{stdout}");
    env.assert_nothing_left();

    // -i -t: keys typed on berth's terminal reach the container's shell.
    let berth = format!(
        "{} --root {} run --rm -it busybox sh",
        bins::berth().display(),
        env.store().display()
    );
    let mut child = Command::new(require::program("script", "bsdutils"))
        .args(["-qfec", &berth, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut keys = child.stdin.take().unwrap();
    let typist = std::thread::spawn(move || {
        use std::io::Write;
        // The shell starts and reads its first line only once it runs.
        std::thread::sleep(Duration::from_millis(1500));
        keys.write_all(b"echo typed-$((6*7))\r").unwrap();
        std::thread::sleep(Duration::from_millis(300));
        keys.write_all(b"exit 3\r").unwrap();
        std::thread::sleep(Duration::from_millis(1000));
    });
    let out = child.wait_with_output().unwrap();
    typist.join().unwrap();
    assert!(
        text(&out.stdout).contains("typed-42"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(out.status.code(), Some(3));
    env.assert_nothing_left();

    // A window size change on berth's terminal reaches the container's.
    let names = tempfile::tempdir().unwrap();
    let tty_name = names.path().join("tty");
    let berth = format!(
        "tty > {}; stty rows 20 cols 80; exec {} --root {} run --rm -t busybox sh -c \
         'trap \"stty size; exit 0\" WINCH; echo ready; while true; do sleep 0.1; done'",
        tty_name.display(),
        bins::berth().display(),
        env.store().display()
    );
    let mut child = Command::new(require::program("script", "bsdutils"))
        .args(["-qfec", &berth, "/dev/null"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut output = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("ready") {
        line.clear();
        assert!(output.read_line(&mut line).unwrap() > 0, "no ready line");
    }
    let tty = fs::read_to_string(&tty_name).unwrap();
    let status = Command::new("stty")
        .args(["-F", tty.trim(), "rows", "40", "cols", "120"])
        .status()
        .unwrap();
    assert!(status.success());
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut output, &mut rest).unwrap();
    assert!(rest.contains("40 120"), "{rest}");
    assert!(child.wait().unwrap().success());
    env.assert_nothing_left();

    // -d -t: the terminal's output goes to the log.
    let id = env.ok(&[
        "run",
        "-d",
        "-t",
        "busybox",
        "sh",
        "-c",
        "test -t 1 && echo logged-tty",
    ]);
    wait_for_log(&env, id.trim(), "logged-tty");
    env.ok(&["rm", "-f", id.trim()]);
    env.assert_nothing_left();
}

#[test]
fn runc_gives_the_same_output_and_exit_codes() {
    let env = Env::new();
    let runc = require::program("runc", "runc");
    let runc = runc.to_str().unwrap();
    let cases: &[&[&str]] = &[
        &[
            "busybox",
            "sh",
            "-c",
            "echo out; echo err >&2; id; pwd; cat /etc/hostname | wc -c; exit 5",
        ],
        &[
            "-w",
            "/srv",
            "-u",
            "nobody",
            "-e",
            "A=1",
            "busybox",
            "sh",
            "-c",
            "pwd; id; echo $A",
        ],
        &["--entrypoint", "echo", "busybox", "entry"],
        &["busybox", "nonexistent-command"],
        &["busybox", "/etc/passwd"],
    ];
    for args in cases {
        let run = |runtime: &str| {
            let mut full = vec!["run", "--rm", "--runtime", runtime];
            full.extend_from_slice(args);
            env.berth(&full)
        };
        let ours = run(bins::berth_runtime().to_str().unwrap());
        let theirs = run(runc);
        assert_eq!(text(&ours.stdout), text(&theirs.stdout), "{args:?}");
        assert_eq!(ours.status.code(), theirs.status.code(), "{args:?}");
    }
    // Detached, the monitor drives runc the same way.
    let id = env.ok(&[
        "run",
        "-d",
        "--runtime",
        runc,
        "busybox",
        "sh",
        "-c",
        "echo via-runc; sleep 30",
    ]);
    wait_for_log(&env, id.trim(), "via-runc");
    assert!(env.ok(&["ps"]).contains(&id[..12]));
    env.ok(&["stop", "-t", "1", id.trim()]);
    assert_eq!(env.record(id.trim())["state"]["code"], 137);
    env.ok(&["rm", id.trim()]);
    env.assert_nothing_left();
}

#[test]
fn bad_input_gets_a_clear_error_and_leaves_nothing() {
    let env = Env::new();
    let host = tempfile::tempdir().unwrap();
    let missing = format!("{}/missing:/x", host.path().display());
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &["run", "--rm", "busybox", "nonexistent"],
            127,
            "nonexistent",
        ),
        (
            &["run", "busybox", "/etc/passwd"],
            126,
            "could not create container",
        ),
        (&["run", "-d", "busybox", "nonexistent"], 127, "nonexistent"),
        (
            &["run", "--rm", "-v", "relative:/x", "busybox", "true"],
            125,
            "must be absolute",
        ),
        (
            &["run", "--rm", "-v", "/a:/b:bogus", "busybox", "true"],
            125,
            "unknown option 'bogus'",
        ),
        (
            &["run", "--rm", "-v", &missing, "busybox", "true"],
            125,
            "does not exist",
        ),
        (
            &["run", "--rm", "-u", "nosuchuser", "busybox", "true"],
            125,
            "nosuchuser",
        ),
        (
            &["run", "--rm", "-u", "root:nosuchgroup", "busybox", "true"],
            125,
            "nosuchgroup",
        ),
        (
            &["run", "--rm", "--name", "bad/name", "busybox", "true"],
            125,
            "invalid container name",
        ),
        (
            &["run", "--rm", "-w", "relative", "busybox", "true"],
            125,
            "must be absolute",
        ),
        (
            &["run", "--rm", "localhost:1/nosuch", "true"],
            125,
            "nosuch",
        ),
    ];
    for (args, code, needle) in cases {
        let out = env.berth(args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(*code), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        env.assert_nothing_left();
    }
    for (args, needle) in [
        (&["stop", "nosuch"][..], "no such container"),
        (&["rm", "nosuch"], "no such container"),
        (&["logs", "nosuch"], "no such container"),
    ] {
        let out = env.berth(args);
        assert!(!out.status.success());
        assert!(
            text(&out.stderr).contains(needle),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    // Nothing the runtime keeps state in is left either.
    let leftovers: Vec<_> = fs::read_dir(env.store())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n == "runtime")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_missing_image_is_pulled_first() {
    let env = Env::new();
    let registry = berth_e2e::registry::TestRegistry::start();
    let target = format!("{}/lifecycle/busybox:run", registry.host());
    env.ok(&["push", "busybox", &target]);
    let fresh = tempfile::tempdir().unwrap();
    let mut child = Command::new(bins::berth())
        .arg("--root")
        .arg(fresh.path())
        .args(["run", "--rm", &target, "sh", "-c", "echo pulled; sleep 1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "pulled");
    // No thread the pull started is left to take a signal meant for the
    // container: every thread of berth holds SIGINT and SIGTERM blocked but
    // the forwarder, which waits for them (sigtimedwait shows them unblocked).
    let wanted = (1u64 << (libc::SIGINT - 1)) | (1u64 << (libc::SIGTERM - 1));
    let mut unblocked = Vec::new();
    for task in fs::read_dir(format!("/proc/{}/task", child.id())).unwrap() {
        let status = fs::read_to_string(task.unwrap().path().join("status")).unwrap();
        let blocked = status
            .lines()
            .find_map(|l| l.strip_prefix("SigBlk:"))
            .map(|v| u64::from_str_radix(v.trim(), 16).unwrap())
            .unwrap();
        if blocked & wanted != wanted {
            unblocked.push(status);
        }
    }
    assert!(unblocked.len() <= 1, "{unblocked:#?}");
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("Unable to find image"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_container_whose_berth_was_killed_is_cleaned_up_by_the_next_ps() {
    let env = Env::new();
    for (rm, left) in [(true, 0), (false, 1)] {
        let mut args = vec!["run", "busybox", "sh", "-c", "echo ready; sleep 1"];
        if rm {
            args.insert(1, "--rm");
        }
        let mut child = env.command(&args).stdout(Stdio::piped()).spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        assert_eq!(lines.next().unwrap().unwrap(), "ready");
        // As with Docker's client, the container outlives a killed berth.
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(
            env.ok(&["ps"]).lines().count() == 2,
            "the container stopped with berth"
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while env.ok(&["ps"]).lines().count() > 1 {
            assert!(Instant::now() < deadline, "the container never ended");
            std::thread::sleep(Duration::from_millis(100));
        }
        let all = env.ok(&["ps", "-a"]);
        assert_eq!(all.lines().count(), 1 + left, "{all}");
        if left == 1 {
            assert!(all.contains("Exited (255)"), "{all}");
            let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
            assert!(!mounts.contains(&env.store().to_string_lossy().into_owned()));
            let id = env.container_dirs().remove(0);
            env.ok(&["rm", &id]);
        }
        env.assert_nothing_left();
    }
}

#[test]
fn concurrent_runs_never_share_a_name() {
    let env = Env::new();
    let children: Vec<_> = (0..4)
        .map(|_| {
            env.command(&["run", "-d", "--name", "only", "busybox", "sleep", "30"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let won = outputs.iter().filter(|o| o.status.success()).count();
    assert_eq!(won, 1, "{outputs:#?}");
    for lost in outputs.iter().filter(|o| !o.status.success()) {
        assert!(
            text(&lost.stderr).contains("already in use"),
            "{}",
            text(&lost.stderr)
        );
    }
    assert_eq!(env.container_dirs().len(), 1);
    env.ok(&["rm", "-f", "only"]);
    env.assert_nothing_left();
}

/// `berth exec` runs more commands in a running container as docker's does:
/// the container's environment with `--env-file` and `-e` on top, `-u` and
/// `-w`, stdin only
/// with `-i`, `-d`, the command's exit code, docker's 127 for a missing
/// command, and 125 for a stopped container.
#[test]
fn exec_runs_commands_in_a_running_container() {
    let env = Env::new();
    let id = env
        .ok(&[
            "run",
            "-d",
            "--name",
            "box",
            "-e",
            "FROM_RUN=1",
            "busybox",
            "sleep",
            "60",
        ])
        .trim()
        .to_string();

    let out = env.ok(&[
        "exec",
        "box",
        "sh",
        "-c",
        "echo $FROM_RUN $HOME; id -u; pwd",
    ]);
    assert_eq!(out, "1 /root\n0\n/\n");
    let out = env.ok(&[
        "exec",
        "-e",
        "X=2",
        "-u",
        "nobody",
        "-w",
        "/tmp",
        &id[..12],
        "sh",
        "-c",
        "echo $X $FROM_RUN $HOME; id -un; pwd",
    ]);
    assert_eq!(out, "2 1 /nonexistent\nnobody\n/tmp\n");

    let piped = |args: &[&str]| {
        let mut child = env
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(b"typed\n").unwrap();
        }
        text(&child.wait_with_output().unwrap().stdout)
    };
    assert_eq!(piped(&["exec", "-i", "box", "cat"]), "typed\n");
    assert_eq!(piped(&["exec", "box", "cat"]), "", "stdin without -i");

    env.ok(&[
        "exec",
        "-d",
        "box",
        "sh",
        "-c",
        "sleep 0.2; echo later > /tmp/bg",
    ]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while env.berth(&["exec", "box", "cat", "/tmp/bg"]).stdout != b"later\n" {
        assert!(Instant::now() < deadline, "the detached exec did not run");
        std::thread::sleep(Duration::from_millis(50));
    }

    for (args, code, needle) in [
        (&["exec", "box", "sh", "-c", "exit 3"][..], 3, ""),
        (
            &["exec", "box", "nosuch"][..],
            127,
            "executable file not found",
        ),
        (
            &["exec", "-u", "nosuchuser", "box", "true"][..],
            125,
            "nosuchuser",
        ),
        (
            &["exec", "-w", "relative", "box", "true"][..],
            125,
            "must be absolute",
        ),
        (&["exec", "nosuchbox", "true"][..], 125, "no such container"),
    ] {
        let out = env.berth(args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }

    // --env-file, for exec and run alike; an -e flag overrides the file.
    let file = env.store().join("env-file");
    fs::write(&file, "# settings\nA=from file\nB=file\n").unwrap();
    let file = file.to_str().unwrap();
    let out = env.ok(&[
        "exec",
        "--env-file",
        file,
        "-e",
        "B=flag",
        "box",
        "sh",
        "-c",
        "echo $A/$B",
    ]);
    assert_eq!(out, "from file/flag\n");
    let out = env.ok(&[
        "run",
        "--rm",
        "--env-file",
        file,
        "busybox",
        "sh",
        "-c",
        "echo $A/$B",
    ]);
    assert_eq!(out, "from file/file\n");

    env.ok(&["stop", "-t", "1", "box"]);
    let out = env.berth(&["exec", "box", "true"]);
    assert_eq!(out.status.code(), Some(125));
    assert!(
        text(&out.stderr).contains("is not running"),
        "{}",
        text(&out.stderr)
    );
    env.ok(&["rm", "box"]);
    env.assert_nothing_left();
}
