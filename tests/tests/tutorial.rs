//! The container half of the tutorial a docker user follows, command by
//! command, in order, checking what each prints as the user reads it:
//! build, run -d, ps, exec -it through a real pty, exec, stop, rm, commit;
//! create, start, pause, unpause, stop, restart and rm with `ps -a` after
//! each; limits and `--restart always` (the main process killed comes back;
//! the limits read from the container's cgroup); stats, logs -f, inspect,
//! history, images --format, container prune and image prune -a.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod build_common;

use berth_e2e::{bins, require};
use build_common::BuildEnv;
use serde_json::Value;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Tutorial {
    build: BuildEnv,
}

impl Tutorial {
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

    /// Runs a step of the tutorial; it must succeed. Returns its stdout.
    fn step(&self, args: &[&str]) -> String {
        let out = self.berth(args);
        assert!(
            out.status.success(),
            "berth {} failed ({}):\n{}",
            args.join(" "),
            out.status,
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// The STATUS column of `ps -a` for the container named `name`.
    fn status_of(&self, name: &str) -> String {
        let table = self.step(&["ps", "-a"]);
        let header = table.lines().next().expect("ps prints a header");
        let status_at = header.find("STATUS").expect("a STATUS column");
        let ports_at = header.find("PORTS").expect("a PORTS column");
        let row = table
            .lines()
            .skip(1)
            .find(|line| line.split_whitespace().last() == Some(name))
            .unwrap_or_else(|| panic!("no row for {name} in:\n{table}"));
        row.get(status_at..ports_at.min(row.len()))
            .unwrap_or_default()
            .trim()
            .to_owned()
    }

    /// Waits until `ps -a` shows `name` with a STATUS starting with `prefix`.
    fn wait_status(&self, name: &str, prefix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let status = self.status_of(name);
            if status.starts_with(prefix) {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{name} never showed '{prefix}…': last '{status}'"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `berth inspect NAME` as JSON: docker prints an array of one.
    fn inspect(&self, name: &str) -> Value {
        let out = self.step(&["inspect", name]);
        let all: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        all[0].clone()
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The cgroup directory of `pid` for a v1 controller, or the v2 one.
fn cgroup_dir(pid: i64, controller: &str) -> PathBuf {
    let lines = fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    for line in lines.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next(), parts.next(), parts.next());
        let (Some(controllers), Some(path)) = (controllers, path) else {
            continue;
        };
        if controllers.split(',').any(|c| c == controller) {
            return PathBuf::from("/sys/fs/cgroup")
                .join(controller)
                .join(path.trim_start_matches('/'));
        }
    }
    // Pure cgroup v2: one hierarchy, "0::/path".
    let path = lines
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .expect("a cgroup line");
    PathBuf::from("/sys/fs/cgroup").join(path.trim_start_matches('/'))
}

#[test]
fn the_container_tutorial_runs_command_by_command() {
    let script = require::program("script", "bsdutils");
    let tutorial = Tutorial {
        build: BuildEnv::new(),
    };

    // Build an app image.
    tutorial.build.write(
        "Dockerfile",
        "FROM busybox\n\
         RUN echo 'hello from the app' > /message\n\
         CMD [\"sh\", \"-c\", \"cat /message; trap 'exit 0' TERM; while true; do echo tick; sleep 1; done\"]\n",
    );
    let (image_id, _) = tutorial.build.build_ok(&["-t", "tutorial-app:1.0"]);
    assert!(!image_id.is_empty());

    // docker run -d --name web tutorial-app:1.0, then docker ps.
    let id = tutorial.step(&["run", "-d", "--name", "web", "tutorial-app:1.0"]);
    let id = id.trim();
    assert_eq!(id.len(), 64, "run -d prints the full id: {id}");
    let ps = tutorial.step(&["ps"]);
    let header: Vec<&str> = ps
        .lines()
        .next()
        .unwrap()
        .split("   ")
        .map(str::trim)
        .collect();
    for column in [
        "CONTAINER ID",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
        "NAMES",
    ] {
        assert!(header.contains(&column), "{column} in {ps}");
    }
    let row = ps.lines().find(|l| l.ends_with("web")).expect("web in ps");
    assert!(row.starts_with(&id[..12]), "{row}");
    assert!(row.contains("tutorial-app:1.0"), "{row}");
    assert!(tutorial.status_of("web").starts_with("Up "), "{ps}");

    // docker exec -it web sh, typing into a real terminal.
    let line = format!(
        "{} --root {} exec -it web sh",
        bins::berth().display(),
        tutorial.store().display()
    );
    let mut child = Command::new(&script)
        .args(["-qfec", &line, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut keys = child.stdin.take().unwrap();
    let typist = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        keys.write_all(b"echo typed-$((6*7)); tty\r").unwrap();
        std::thread::sleep(Duration::from_millis(300));
        keys.write_all(b"exit 4\r").unwrap();
        std::thread::sleep(Duration::from_millis(1000));
    });
    let out = child.wait_with_output().unwrap();
    typist.join().unwrap();
    let typed = text(&out.stdout);
    assert!(typed.contains("typed-42"), "{typed}");
    assert!(
        typed.contains("/dev/pts/"),
        "exec -it has a terminal: {typed}"
    );
    assert_eq!(out.status.code(), Some(4), "{typed}");

    // A plain exec.
    assert_eq!(
        tutorial.step(&["exec", "web", "cat", "/message"]),
        "hello from the app\n"
    );

    // Stop and remove it.
    assert_eq!(tutorial.step(&["stop", "web"]).trim(), "web");
    let status = tutorial.status_of("web");
    assert!(status.starts_with("Exited (0) "), "{status}");
    assert_eq!(tutorial.step(&["rm", "web"]).trim(), "web");
    assert!(!tutorial.step(&["ps", "-a"]).contains("web"));

    // Commit a change made in a running container, and run the new image.
    tutorial.step(&["run", "-d", "--name", "changed", "tutorial-app:1.0"]);
    tutorial.step(&[
        "exec",
        "changed",
        "sh",
        "-c",
        "echo committed > /added; rm /message",
    ]);
    let committed = tutorial.step(&["commit", "changed", "tutorial-app:2.0"]);
    assert!(committed.trim().starts_with("sha256:"), "{committed}");
    let out = tutorial.step(&[
        "run",
        "--rm",
        "tutorial-app:2.0",
        "sh",
        "-c",
        "cat /added; test -e /message || echo gone",
    ]);
    assert_eq!(out, "committed\ngone\n");
    tutorial.step(&["rm", "-f", "changed"]);

    // create, start, pause, unpause, stop, restart, rm, with ps -a after each.
    let created = tutorial.step(&["create", "--name", "life", "tutorial-app:1.0"]);
    assert_eq!(created.trim().len(), 64, "create prints the id: {created}");
    assert_eq!(tutorial.status_of("life"), "Created");
    assert_eq!(tutorial.step(&["start", "life"]).trim(), "life");
    assert!(tutorial.wait_status("life", "Up ").starts_with("Up "));
    assert_eq!(tutorial.step(&["pause", "life"]).trim(), "life");
    assert!(tutorial.status_of("life").ends_with("(Paused)"));
    let refused = tutorial.berth(&["pause", "life"]);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("is already paused"),
        "{}",
        text(&refused.stderr)
    );
    assert_eq!(tutorial.step(&["unpause", "life"]).trim(), "life");
    let status = tutorial.status_of("life");
    assert!(
        status.starts_with("Up ") && !status.contains("Paused"),
        "{status}"
    );
    assert_eq!(tutorial.step(&["stop", "life"]).trim(), "life");
    assert!(tutorial.status_of("life").starts_with("Exited (0) "));
    let refused = tutorial.berth(&["pause", "life"]);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("is not running"),
        "{}",
        text(&refused.stderr)
    );
    assert_eq!(tutorial.step(&["restart", "life"]).trim(), "life");
    tutorial.wait_status("life", "Up ");
    let refused = tutorial.berth(&["rm", "life"]);
    assert!(
        !refused.status.success(),
        "rm of a running container is refused"
    );
    assert_eq!(tutorial.step(&["rm", "-f", "life"]).trim(), "life");
    assert!(!tutorial.step(&["ps", "-a"]).contains("life"));

    // Limits and a restart policy.
    tutorial.step(&[
        "run",
        "-d",
        "--name",
        "limited",
        "--cpus=1.5",
        "--memory=512m",
        "--restart",
        "always",
        "tutorial-app:1.0",
    ]);
    tutorial.wait_status("limited", "Up ");
    let inspected = tutorial.inspect("limited");
    assert_eq!(inspected["Name"], "/limited");
    assert_eq!(inspected["State"]["Status"], "running");
    assert_eq!(inspected["HostConfig"]["Memory"], 536_870_912);
    assert_eq!(inspected["HostConfig"]["NanoCpus"], 1_500_000_000_i64);
    assert_eq!(inspected["HostConfig"]["RestartPolicy"]["Name"], "always");
    let pid = inspected["State"]["Pid"].as_i64().expect("a pid");
    let memory = cgroup_dir(pid, "memory");
    let limit = fs::read_to_string(memory.join("memory.limit_in_bytes"))
        .or_else(|_| fs::read_to_string(memory.join("memory.max")))
        .unwrap();
    assert_eq!(limit.trim(), "536870912");
    let cpu = cgroup_dir(pid, "cpu");
    match fs::read_to_string(cpu.join("cpu.cfs_quota_us")) {
        Ok(quota) => {
            let period = fs::read_to_string(cpu.join("cpu.cfs_period_us")).unwrap();
            assert_eq!((quota.trim(), period.trim()), ("150000", "100000"));
        }
        Err(_) => {
            let max = fs::read_to_string(cpu.join("cpu.max")).unwrap();
            assert_eq!(max.trim(), "150000 100000");
        }
    }
    // Kill the main process: the policy brings it back.
    let status = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = tutorial.inspect("limited");
        if now["RestartCount"].as_i64() >= Some(1)
            && now["State"]["Status"] == "running"
            && now["State"]["Pid"].as_i64() != Some(pid)
        {
            break;
        }
        assert!(Instant::now() < deadline, "never restarted: {now}");
        std::thread::sleep(Duration::from_millis(200));
    }

    // docker stats --no-stream.
    let stats = tutorial.step(&["stats", "--no-stream"]);
    let header = stats.lines().next().unwrap();
    for column in [
        "CONTAINER ID",
        "NAME",
        "CPU %",
        "MEM USAGE / LIMIT",
        "MEM %",
        "NET I/O",
        "BLOCK I/O",
        "PIDS",
    ] {
        assert!(header.contains(column), "{column} in {stats}");
    }
    let row = stats
        .lines()
        .find(|l| l.contains("limited"))
        .expect("limited in stats");
    assert!(row.contains("/ 512MiB"), "{row}");

    // docker logs -f follows the output as it comes.
    let mut follower = tutorial
        .command(&["logs", "-f", "limited"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(follower.stdout.take().unwrap());
    let mut ticks = 0;
    let mut line = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while ticks < 3 {
        line.clear();
        assert!(lines.read_line(&mut line).unwrap() > 0, "logs -f ended");
        if line == "tick\n" {
            ticks += 1;
        }
        assert!(Instant::now() < deadline);
    }
    follower.kill().unwrap();
    follower.wait().unwrap();

    // history and images --format.
    let history = tutorial.step(&["history", "tutorial-app:1.0"]);
    assert!(history.contains("echo 'hello from the app'"), "{history}");
    let images = tutorial.step(&["images", "--format", "{{.Repository}}:{{.Tag}}\\t{{.Size}}"]);
    let app = images
        .lines()
        .find(|l| l.starts_with("tutorial-app:1.0\t"))
        .unwrap_or_else(|| panic!("a tab after the name: {images:?}"));
    assert!(!app.contains("\\t"), "{app}");
    let table = tutorial.step(&["images", "--format", "table {{.Repository}}\t{{.Tag}}"]);
    assert_eq!(
        table.matches("REPOSITORY").count(),
        1,
        "one header: {table}"
    );
    assert!(!table.contains("table"), "{table}");

    // container prune removes the stopped ones only.
    tutorial.step(&["run", "--name", "finished", "tutorial-app:1.0", "true"]);
    let pruned = tutorial.step(&["container", "prune", "-f"]);
    assert!(pruned.contains("Deleted Containers:"), "{pruned}");
    let all = tutorial.step(&["ps", "-a"]);
    assert!(!all.contains("finished"), "{all}");
    assert!(all.contains("limited"), "{all}");

    // image prune -a removes every image no container uses, and frees space.
    tutorial.step(&["rm", "-f", "limited"]);
    let blobs =
        |layout: PathBuf| fs::read_dir(layout.join("blobs/sha256")).map_or(0, |d| d.count());
    let before = blobs(tutorial.build.layout());
    let pruned = tutorial.step(&["image", "prune", "-a", "-f"]);
    assert!(pruned.contains("Total reclaimed space:"), "{pruned}");
    assert!(pruned.contains("tutorial-app:1.0"), "{pruned}");
    assert!(
        blobs(tutorial.build.layout()) < before,
        "blobs were collected"
    );
    let left = tutorial.step(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(!left.contains("tutorial-app"), "{left}");
}
