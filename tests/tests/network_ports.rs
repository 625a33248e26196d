//! Published ports end to end, with the real CNI plugins, iptables and curl:
//! the seeds' flow (a server published with `-p`, reached on 127.0.0.1,
//! three replicas of one image on three host ports, `berth port`, the PORTS
//! column of `ps`, nothing left after `stop` and `rm`), `-p CONTAINER_PORT`
//! and `-P`, a host port already taken, and invalid `-p` values.
//!
//! Each test has a user network of its own (so its bridge, leases and rules
//! are its own) and host ports from a range of its own; traffic goes only to
//! 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod build_common;

use berth_e2e::{bins, require};
use build_common::BuildEnv;
use serde_json::Value;
use std::fs;
use std::net::{TcpListener, UdpSocket};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A store holding `busybox`, a user network, and the containers a test
/// started: removed when the test ends, also when it fails.
struct Env {
    build: BuildEnv,
    network: String,
    containers: std::cell::RefCell<Vec<String>>,
}

impl Env {
    /// A store with `busybox` and a fresh network named after `test`, on
    /// a subnet of its own: stores do not see each other's networks, so
    /// two tests left to pick free subnets at once could pick one.
    fn new(test: &str, slot: u32) -> Env {
        let env = Env {
            build: BuildEnv::new(),
            network: format!("ports-{test}-{}", std::process::id()),
            containers: Default::default(),
        };
        let subnet = format!("10.213.{}.0/24", (std::process::id() % 50) * 5 + slot);
        env.ok(&["network", "create", "--subnet", &subnet, &env.network]);
        env
    }

    fn berth(&self, args: &[&str]) -> Output {
        Command::new(bins::berth())
            .arg("--root")
            .arg(self.build.store.path())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
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

    /// `berth run -d --network NET --name NAME ARGS… IMAGE httpd` serving
    /// `/etc` (so `/hostname` answers with the container's hostname).
    fn serve(&self, name: &str, publish: &[&str], image: &str) -> Output {
        self.containers.borrow_mut().push(name.to_string());
        let mut args = vec!["run", "-d", "--network", &self.network, "--name", name];
        args.extend_from_slice(publish);
        args.extend_from_slice(&[image, "httpd", "-f", "-p", "80", "-h", "/etc"]);
        self.berth(&args)
    }

    /// The network's bridge device.
    fn bridge(&self) -> String {
        let inspect: Value =
            serde_json::from_str(&self.ok(&["network", "inspect", &self.network])).unwrap();
        inspect[0]["Options"]["com.docker.network.bridge.name"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        for name in self.containers.borrow().iter() {
            let _ = self.berth(&["rm", "-f", name]);
        }
        let _ = self.berth(&["network", "rm", &self.network]);
    }
}

/// Host ports of this test process: a range of `count` from 47400 up (the
/// network benchmark uses 47100-47399), chosen by the process id so that
/// test processes running at once rarely share one; each is checked free.
fn host_ports(slot: u16, count: u16) -> Vec<u16> {
    let base = 47400 + (std::process::id() % 80) as u16 * 16 + slot * 4;
    let ports: Vec<u16> = (base..base + count).collect();
    for port in &ports {
        assert!(
            TcpListener::bind(("0.0.0.0", *port)).is_ok(),
            "host port {port} is in use; rerun the test"
        );
    }
    ports
}

/// GETs `http://127.0.0.1:PORT/hostname` with curl, retrying while the
/// server starts; returns the body.
fn get_hostname(port: u16) -> String {
    let curl = require::program("curl", "curl");
    let url = format!("http://127.0.0.1:{port}/hostname");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let out = Command::new(&curl)
            .args(["-sf", "-m", "2", &url])
            .output()
            .unwrap();
        if out.status.success() {
            return String::from_utf8(out.stdout).unwrap().trim().to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no answer from {url}: curl {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The host-side veths enslaved to `bridge`.
fn veths_on(bridge: &str) -> Vec<String> {
    let ip = require::program("ip", "iproute2");
    let out = Command::new(ip)
        .args(["-o", "link", "show", "master", bridge])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The iptables rules (nat and filter) that mention any of `words`.
fn rules_mentioning(words: &[String]) -> Vec<String> {
    let iptables_save = require::program("iptables-save", "iptables");
    let out = Command::new(iptables_save).output().unwrap();
    assert!(out.status.success(), "iptables-save failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|line| words.iter().any(|w| line.contains(w.as_str())))
        .map(str::to_string)
        .collect()
}

/// The addresses host-local has leased on `network`.
fn leases(network: &str) -> Vec<String> {
    let dir = Path::new("/var/lib/cni/networks").join(network);
    match fs::read_dir(&dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.parse::<std::net::IpAddr>().is_ok())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// The kernel's range for free ports.
fn local_port_range() -> (u16, u16) {
    let text = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
    let mut it = text.split_whitespace().map(|n| n.parse().unwrap());
    (it.next().unwrap(), it.next().unwrap())
}

/// The host port of a `0.0.0.0:PORT` line of `berth port`.
fn host_port_of(address: &str) -> u16 {
    address
        .trim()
        .strip_prefix("0.0.0.0:")
        .unwrap_or_else(|| panic!("{address:?} is not 0.0.0.0:PORT"))
        .parse()
        .unwrap()
}

#[test]
fn the_seeds_flow_serves_on_published_ports_and_leaves_nothing_behind() {
    let env = Env::new("seeds", 0);
    let bridge = env.bridge();
    let ports = host_ports(0, 4);
    let names = ["myserver", "replica1", "replica2", "replica3"];
    let mut ids = Vec::new();
    for (name, port) in names.iter().zip(&ports) {
        let published = format!("{port}:80");
        let out = env.serve(name, &["-p", &published], "busybox");
        assert!(
            out.status.success(),
            "run {name} -p {published}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        ids.push(String::from_utf8(out.stdout).unwrap().trim().to_string());
    }
    // Each port reaches its own container: the body is its hostname, the
    // short id.
    for (id, port) in ids.iter().zip(&ports) {
        assert_eq!(get_hostname(*port), id[..12], "port {port}");
    }

    assert_eq!(
        env.ok(&["port", "myserver"]),
        format!("80/tcp -> 0.0.0.0:{}\n", ports[0])
    );
    assert_eq!(
        env.ok(&["port", "replica2", "80/tcp"]),
        format!("0.0.0.0:{}\n", ports[2])
    );
    let missing = env.berth(&["port", "replica2", "81"]);
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&missing.stderr),
        "berth: no public port '81' published for replica2\n"
    );

    let ps = env.ok(&["ps"]);
    let header = ps.lines().next().unwrap();
    assert!(header.contains("  PORTS  "), "{header}");
    for (name, port) in names.iter().zip(&ports) {
        let row = ps.lines().find(|l| l.ends_with(name)).unwrap();
        assert!(row.contains(&format!("0.0.0.0:{port}->80/tcp")), "{row}");
    }
    let json: Value =
        serde_json::from_str(env.ok(&["ps", "--format", "json"]).lines().next().unwrap()).unwrap();
    assert!(
        json["Ports"].as_str().unwrap().contains("->80/tcp"),
        "{json}"
    );
    assert_eq!(veths_on(&bridge).len(), 4, "one veth per container");
    let port_words: Vec<String> = ports.iter().map(|p| format!("--dport {p} ")).collect();
    assert!(
        !rules_mentioning(&port_words).is_empty(),
        "no DNAT rule for the published ports"
    );
    assert_eq!(leases(&env.network).len(), 4);

    // stop, then rm: the ports are no longer shown, then nothing is left.
    // httpd as the container's init ignores SIGTERM: -t 1 spares the wait.
    env.ok(&["stop", "-t", "1", "myserver"]);
    assert_eq!(env.ok(&["port", "myserver"]), "");
    let row = env.ok(&["ps", "-a"]);
    let row = row.lines().find(|l| l.ends_with("myserver")).unwrap();
    assert!(!row.contains("->"), "{row}");
    env.ok(&["stop", "-t", "1", "replica1", "replica2", "replica3"]);
    let mut rm = vec!["rm"];
    rm.extend_from_slice(&names);
    env.ok(&rm);
    assert_eq!(veths_on(&bridge), Vec::<String>::new(), "veths left");
    assert_eq!(
        rules_mentioning(&port_words),
        Vec::<String>::new(),
        "rules left"
    );
    assert_eq!(leases(&env.network), Vec::<String>::new(), "leases left");
}

#[test]
fn a_free_port_for_dash_p_port_and_every_exposed_port_for_dash_capital_p() {
    let env = Env::new("free", 1);
    env.build
        .write("Dockerfile", "FROM busybox\nEXPOSE 80 7000/udp\n");
    env.build.build_ok(&["-t", "exposing"]);
    let (start, end) = local_port_range();

    let out = env.serve("any", &["-p", "80"], "busybox");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let port = host_port_of(&env.ok(&["port", "any", "80"]));
    assert!((start..=end).contains(&port), "{port}");
    assert!(!get_hostname(port).is_empty());

    let out = env.serve("all", &["-P"], "exposing");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = env.ok(&["port", "all"]);
    let lines: Vec<&str> = lines.lines().collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    let tcp = lines[0].strip_prefix("80/tcp -> ").unwrap();
    let udp = lines[1].strip_prefix("7000/udp -> ").unwrap();
    let tcp = host_port_of(tcp);
    assert!((start..=end).contains(&host_port_of(udp)), "{udp}");
    assert!(!get_hostname(tcp).is_empty());
    // Without -P the exposed ports stay unpublished.
    let out = env.serve("none-published", &[], "exposing");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(env.ok(&["port", "none-published"]), "");
}

#[test]
fn a_taken_host_port_fails_before_the_container_starts_and_names_the_port() {
    let env = Env::new("taken", 2);
    let ports = host_ports(1, 3);
    // A process listens on the first port, a UDP socket holds the second.
    let listener = TcpListener::bind(("0.0.0.0", ports[0])).unwrap();
    let udp = UdpSocket::bind(("0.0.0.0", ports[1])).unwrap();
    let cases = [
        (
            format!("{}:80", ports[0]),
            format!("0.0.0.0:{}/tcp", ports[0]),
        ),
        (
            format!("{}:53/udp", ports[1]),
            format!("0.0.0.0:{}/udp", ports[1]),
        ),
    ];
    for (spec, named) in &cases {
        let out = env.serve("refused", &["-p", spec], "busybox");
        assert_eq!(out.status.code(), Some(125), "-p {spec}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.starts_with(&format!(
                "berth: bind for {named} failed: port is already allocated"
            )),
            "-p {spec}: {stderr}"
        );
        assert_eq!(env.ok(&["ps", "-aq"]), "", "a container was created");
    }
    drop((listener, udp));

    // A port another live container publishes, which no process binds.
    let spec = format!("{}:80", ports[2]);
    let out = env.serve("holder", &["-p", &spec], "busybox");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = env.serve("second", &["-p", &spec], "busybox");
    assert_eq!(out.status.code(), Some(125));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("0.0.0.0:{}/tcp", ports[2])),
        "{stderr}"
    );
    let ps = env.ok(&["ps", "-a"]);
    assert!(!ps.lines().any(|l| l.ends_with(" second")), "{ps}");
    // Once it is removed the port is free again.
    env.ok(&["rm", "-f", "holder"]);
    let out = env.serve("third", &["-p", &spec], "busybox");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!get_hostname(ports[2]).is_empty());
}

#[test]
fn invalid_publish_values_fail_with_dockers_messages() {
    let env = Env::new("invalid", 3);
    let cases = [
        ("abc", "invalid containerPort: abc"),
        ("0", "invalid containerPort: 0"),
        ("70000:80", "invalid hostPort: 70000"),
        ("8080:", "no port specified: 8080:<empty>"),
        ("1.2.3:8080:80", "invalid IP address: 1.2.3"),
        ("80/sctp", "invalid proto: sctp"),
        (
            "8000-8001:80-82",
            "invalid ranges specified for container and host Ports: 80-82 and 8000-8001",
        ),
        ("1-65535", "the port range 1-65535 holds 65535 ports"),
    ];
    for (spec, want) in cases {
        let out = env.serve("bad", &["-p", spec], "busybox");
        assert_eq!(out.status.code(), Some(125), "-p {spec}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.starts_with(&format!("berth: {want}")),
            "-p {spec}: {stderr}"
        );
    }
    assert_eq!(env.ok(&["ps", "-aq"]), "");
}

/// The lease files of host-local on `network` that name `container_id`.
fn leases_of(network: &str, container_id: &str) -> Vec<String> {
    let dir = Path::new("/var/lib/cni/networks").join(network);
    let Ok(entries) = fs::read_dir(&dir) else {
        return Vec::new();
    };
    entries
        .map(|e| e.unwrap().path())
        .filter(|path| fs::read_to_string(path).is_ok_and(|text| text.contains(container_id)))
        .map(|path| path.display().to_string())
        .collect()
}

#[test]
fn the_default_bridge_publishes_as_written_in_the_readme() {
    let env = Env::new("default", 4);
    let port = host_ports(3, 1)[0];
    let published = format!("{port}:80");
    env.containers.borrow_mut().push("myserver".into());
    // As the README has it: no --network, the default bridge.
    let out = env.berth(&[
        "run", "-d", "-p", &published, "--name", "myserver", "busybox", "httpd", "-f", "-p", "80",
        "-h", "/etc",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(get_hostname(port), id[..12]);
    assert_eq!(
        leases_of("bridge", &id).len(),
        1,
        "one lease on the default bridge"
    );
    let port_rule = vec![format!("--dport {port} ")];
    assert!(!rules_mentioning(&port_rule).is_empty());
    env.ok(&["rm", "-f", "myserver"]);
    assert_eq!(
        rules_mentioning(&port_rule),
        Vec::<String>::new(),
        "rules left"
    );
    assert_eq!(leases_of("bridge", &id), Vec::<String>::new(), "lease left");
}
