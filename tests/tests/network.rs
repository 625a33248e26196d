//! End to end: container networking through the real CNI plugins of
//! Debian's containernetworking-plugins, real iptables and real bridges.
//! Containers on a user network talk by name; `--network none` and `host`;
//! unknown networks, missing plugins, overlapping subnets and used
//! networks fail clearly; and after a kill -9 of the monitor, or of berth
//! during start, the next command leaves no veth, rule, lease or namespace.
//!
//! Traffic goes only to addresses inside the bridges these tests create.
//! Network names and subnets (10.89.21x.0/24) are unique to these tests,
//! since bridges and leases are host-wide.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod build_common;

use berth_e2e::{bins, require};
use build_common::BuildEnv;
use sha2::{Digest, Sha256};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A store holding `busybox`, and the networks a test made, removed with
/// everything on them when the test ends, also when it fails.
struct Env {
    build: BuildEnv,
    networks: Vec<String>,
}

impl Env {
    fn new() -> Env {
        require::program("iptables-save", "iptables");
        require::program("ip", "iproute2");
        assert!(
            Path::new("/usr/lib/cni/bridge").is_file(),
            "these tests need the CNI plugins; install the Debian package containernetworking-plugins"
        );
        Env {
            build: BuildEnv::new(),
            networks: Vec::new(),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bins::berth());
        cmd.arg("--root")
            .arg(self.build.store.path())
            .args(args)
            .env_remove("BERTH_CNI_PATH")
            .stdin(Stdio::null());
        cmd
    }

    fn berth(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

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

    /// Creates the network `name` on `subnet`, removed at the end.
    fn network(&mut self, name: &str, subnet: &str) {
        self.networks.push(name.to_owned());
        self.ok(&["network", "create", "--subnet", subnet, name]);
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let root = self.build.store.path().to_owned();
        let berth = |args: &[&str]| {
            let _ = Command::new(bins::berth())
                .arg("--root")
                .arg(&root)
                .args(args)
                .output();
        };
        if let Ok(entries) = fs::read_dir(root.join("containers")) {
            for entry in entries.flatten() {
                berth(&["rm", "-f", &entry.file_name().to_string_lossy()]);
            }
        }
        for name in &self.networks {
            berth(&["network", "rm", name]);
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The bridge device berth gives the user network `name`.
fn bridge_of(name: &str) -> String {
    let id = format!("{:x}", Sha256::digest(name.as_bytes()));
    format!("br-{}", &id[..12])
}

/// The host's links enslaved to `bridge` (the containers' veths).
fn veths_on(bridge: &str) -> Vec<String> {
    let out = Command::new("ip").args(["-o", "link"]).output().unwrap();
    text(&out.stdout)
        .lines()
        .filter(|l| l.contains(&format!("master {bridge} ")))
        .map(str::to_owned)
        .collect()
}

/// The iptables rules (all tables) that mention `needle`.
fn rules_with(needle: &str) -> Vec<String> {
    let out = Command::new("iptables-save").output().unwrap();
    text(&out.stdout)
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_owned)
        .collect()
}

/// The address leases host-local holds on the network `name`.
fn leases_of(name: &str) -> Vec<String> {
    match fs::read_dir(Path::new("/var/lib/cni/networks").join(name)) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n != "lock" && !n.starts_with("last_reserved_ip"))
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn netns_of(id: &str) -> PathBuf {
    Path::new("/run/berth/netns").join(id)
}

/// Fails unless nothing of the network `name` (subnet prefix `prefix`,
/// e.g. "10.89.213.") and the container `id` is left on the host.
fn assert_no_trace(name: &str, prefix: &str, id: &str) {
    assert_eq!(
        veths_on(&bridge_of(name)),
        Vec::<String>::new(),
        "veths left"
    );
    assert_eq!(rules_with(prefix), Vec::<String>::new(), "rules left");
    assert_eq!(rules_with(id), Vec::<String>::new(), "rules left");
    assert_eq!(leases_of(name), Vec::<String>::new(), "leases left");
    assert!(!netns_of(id).exists(), "namespace left");
}

fn wait_for(limit: Duration, what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn two_containers_on_a_user_network_talk_by_name_and_leave_nothing() {
    let mut env = Env::new();
    let net = "berth-nettest-talk";
    env.network(net, "10.89.211.0/24");
    let id = env
        .ok(&[
            "run",
            "-d",
            "--name",
            "nt-server",
            "--network",
            net,
            "busybox",
            "httpd",
            "-f",
            "-p",
            "80",
        ])
        .trim()
        .to_owned();
    let inspect: serde_json::Value =
        serde_json::from_str(&env.ok(&["network", "inspect", net])).unwrap();
    let address = inspect[0]["Containers"][&id]["IPv4Address"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(address.starts_with("10.89.211."), "{inspect}");
    assert_eq!(inspect[0]["IPAM"]["Config"][0]["Subnet"], "10.89.211.0/24");

    let out = env.ok(&[
        "run",
        "--rm",
        "--network",
        net,
        "busybox",
        "sh",
        "-c",
        "ping -c1 -W2 nt-server >/dev/null && printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 nt-server 80 | head -1",
    ]);
    assert!(out.starts_with("HTTP/1.1 "), "{out}");

    // The network is in use: docker's message, and it stays.
    let used = env.berth(&["network", "rm", net]);
    assert_eq!(used.status.code(), Some(1));
    let message = text(&used.stderr);
    assert!(
        message.contains("has active endpoints") && message.contains("nt-server"),
        "{message}"
    );

    // A client that stays sees the server's name come and go.
    let client = env
        .ok(&[
            "run",
            "-d",
            "--name",
            "nt-client",
            "--network",
            net,
            "busybox",
            "sleep",
            "300",
        ])
        .trim()
        .to_owned();
    let hosts = || env.ok(&["exec", "nt-client", "cat", "/etc/hosts"]);
    assert!(hosts().contains("\tnt-server\n"), "{}", hosts());
    env.ok(&["stop", "-t", "1", "nt-server"]);
    env.ok(&["rm", "nt-server"]);
    assert!(!hosts().contains("nt-server"), "{}", hosts());
    env.ok(&["rm", "-f", "nt-client"]);
    assert_no_trace(net, "10.89.211.", &id);
    assert_no_trace(net, "10.89.211.", &client);
    env.ok(&["network", "rm", net]);
    let left = Command::new("ip")
        .args(["link", "show", &bridge_of(net)])
        .output()
        .unwrap();
    assert!(!left.status.success(), "the bridge is left");
}

#[test]
fn none_has_only_loopback_host_sees_the_hosts_interfaces_and_bridge_is_the_default() {
    let env = Env::new();
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
    let mut host_links: Vec<String> = fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    host_links.sort();
    let host = env.ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        "busybox",
        "ls",
        "/sys/class/net",
    ]);
    // Other tests add and remove links meanwhile; eth0 and lo stay.
    for link in ["lo", "eth0"] {
        assert!(host.split_whitespace().any(|l| l == link), "{host}");
    }

    // The default: an address on berth's bridge, its gateway reachable,
    // loopback up, and the host's (non-loopback) nameservers.
    let out = env.ok(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "ip -4 -o addr show eth0; ip -o link show lo; gw=$(ip route | awk '/default/ {print $3}'); ping -c1 -W2 $gw >/dev/null && echo gateway-ok; cat /etc/resolv.conf",
    ]);
    assert!(out.contains("inet "), "{out}");
    assert!(out.contains("LOOPBACK,UP"), "{out}");
    assert!(out.contains("gateway-ok"), "{out}");
    let host_resolv = fs::read_to_string("/etc/resolv.conf").unwrap();
    for server in host_resolv
        .lines()
        .filter_map(|l| l.strip_prefix("nameserver "))
        .filter(|s| !s.starts_with("127.") && *s != "::1")
    {
        assert!(out.contains(server), "{out}");
    }
    let ls = env.ok(&["network", "ls"]);
    assert!(ls.starts_with("NETWORK ID"), "{ls}");
    for name in ["bridge", "host", "none"] {
        assert!(
            ls.lines()
                .any(|l| l.split_whitespace().nth(1) == Some(name)),
            "{ls}"
        );
    }
}

#[test]
fn bad_networks_plugins_and_subnets_fail_clearly() {
    let mut env = Env::new();
    let unknown = env.berth(&[
        "run",
        "--rm",
        "--network",
        "berth-nettest-nope",
        "busybox",
        "true",
    ]);
    assert_eq!(unknown.status.code(), Some(125));
    assert!(
        text(&unknown.stderr).contains("network berth-nettest-nope not found"),
        "{}",
        text(&unknown.stderr)
    );

    // A CNI path with every plugin but bridge.
    let cni = tempfile::tempdir().unwrap();
    for entry in fs::read_dir("/usr/lib/cni").unwrap().flatten() {
        if entry.file_name() != "bridge" {
            std::os::unix::fs::symlink(entry.path(), cni.path().join(entry.file_name())).unwrap();
        }
    }
    let cni_path = cni.path().to_string_lossy().into_owned();
    let missing = env.berth(&["--cni-path", &cni_path, "run", "--rm", "busybox", "true"]);
    assert_eq!(missing.status.code(), Some(125));
    let message = text(&missing.stderr);
    assert!(
        message.contains("'bridge'") && message.contains("containernetworking-plugins"),
        "{message}"
    );
    assert!(
        fs::read_dir(env.build.store.path().join("containers"))
            .map(|d| d.count())
            .unwrap_or(0)
            == 0,
        "a container was left"
    );

    env.network("berth-nettest-overlap", "10.89.212.0/24");
    let overlap = env.berth(&[
        "network",
        "create",
        "--subnet",
        "10.89.0.0/16",
        "berth-nettest-overlap2",
    ]);
    assert_eq!(overlap.status.code(), Some(1));
    let message = text(&overlap.stderr);
    assert!(
        message.contains("overlaps") && message.contains("berth-nettest-overlap"),
        "{message}"
    );
    for reserved in ["bridge", "host", "none"] {
        let out = env.berth(&["network", "create", reserved]);
        assert_eq!(out.status.code(), Some(1), "{reserved}");
    }
    let predefined = env.berth(&["network", "rm", "bridge"]);
    assert!(
        text(&predefined.stderr).contains("pre-defined network"),
        "{}",
        text(&predefined.stderr)
    );

    // prune removes the unused user network and keeps the predefined ones.
    let pruned = env.ok(&["network", "prune", "-f"]);
    assert!(pruned.contains("berth-nettest-overlap"), "{pruned}");
    let ls = env.ok(&["network", "ls"]);
    assert!(!ls.contains("berth-nettest-overlap"), "{ls}");
    assert!(ls.contains(" bridge "), "{ls}");
}

#[test]
fn killing_the_monitor_then_ps_and_rm_leave_no_veth_rule_or_lease() {
    let mut env = Env::new();
    let net = "berth-nettest-kill";
    env.network(net, "10.89.213.0/24");
    let id = env
        .ok(&["run", "-d", "--network", net, "busybox", "sleep", "300"])
        .trim()
        .to_owned();
    assert_eq!(veths_on(&bridge_of(net)).len(), 1);
    let record: serde_json::Value = serde_json::from_slice(
        &fs::read(
            env.build
                .store
                .path()
                .join("containers")
                .join(&id)
                .join("container.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let monitor = record["state"]["owner"][0].as_i64().unwrap() as i32;
    let container = record["state"]["pid"].as_i64().unwrap() as i32;
    assert!(
        record["network"]["ip"]
            .as_str()
            .unwrap()
            .starts_with("10.89.213.")
    );
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(monitor, libc::SIGKILL) };
    // The container outlives its monitor; once it is gone too, ps cleans up.
    unsafe { libc::kill(container, libc::SIGKILL) };
    wait_for(Duration::from_secs(10), "the container to die", || {
        !Path::new(&format!("/proc/{container}")).exists()
            || fs::read_to_string(format!("/proc/{container}/stat"))
                .map(|s| s.contains(") Z "))
                .unwrap_or(true)
    });
    env.ok(&["ps", "-a"]);
    assert_no_trace(net, "10.89.213.", &id);
    env.ok(&["rm", &id]);
    assert_no_trace(net, "10.89.213.", &id);
}

#[test]
fn killing_berth_during_start_then_ps_cleans_up() {
    let mut env = Env::new();
    let net = "berth-nettest-start";
    env.network(net, "10.89.214.0/24");
    // The last plugin of the chain waits in ADD, so berth is killed after
    // the bridge plugin attached the container and before the runtime runs.
    let cni = tempfile::tempdir().unwrap();
    for entry in fs::read_dir("/usr/lib/cni").unwrap().flatten() {
        if entry.file_name() != "tuning" {
            std::os::unix::fs::symlink(entry.path(), cni.path().join(entry.file_name())).unwrap();
        }
    }
    let marker = cni.path().join("tuning-started");
    let slow = cni.path().join("tuning");
    fs::write(
        &slow,
        format!(
            "#!/bin/sh\nif [ \"$CNI_COMMAND\" = ADD ]; then echo $$ > {}; sleep 30; fi\nexec /usr/lib/cni/tuning\n",
            marker.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&slow, fs::Permissions::from_mode(0o755)).unwrap();
    let cni_path = cni.path().to_string_lossy().into_owned();
    let mut run = env
        .command(&[
            "--cni-path",
            &cni_path,
            "run",
            "--rm",
            "--network",
            net,
            "busybox",
            "true",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for(Duration::from_secs(20), "the slow plugin", || {
        fs::read_to_string(&marker).is_ok_and(|t| t.ends_with('\n'))
    });
    assert_eq!(veths_on(&bridge_of(net)).len(), 1, "the bridge plugin ran");
    run.kill().unwrap();
    run.wait().unwrap();
    // The waiting plugin is an orphan now; end it so it adds nothing late.
    let plugin: i32 = fs::read_to_string(&marker).unwrap().trim().parse().unwrap();
    // SAFETY: kill has no memory-safety preconditions; the pid is the
    // script's, which is still waiting.
    unsafe { libc::kill(plugin, libc::SIGKILL) };
    let ids: Vec<String> = fs::read_dir(env.build.store.path().join("containers"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(ids.len(), 1);
    env.ok(&["ps", "-a"]);
    assert_no_trace(net, "10.89.214.", &ids[0]);
    env.ok(&["rm", &ids[0]]);
}
