//! Attaching a container to a CNI network and detaching it, never skipped.
//!
//! Before anything is set up, `network.json` in the container's directory
//! records what is being attached (the network's configuration as it was,
//! the namespace, the CNI path, the process doing it), so whoever comes next
//! after a crash — the owner's own cleanup, `rm`, or `ps` reconciling a
//! container whose owner died — runs CNI DEL and removes the namespace.
//! DEL is idempotent, so running it twice is harmless.
//!
//! Containers on one user network find each other by name through their
//! `/etc/hosts`, rewritten in place (it is bind-mounted) for every attached
//! container on each attach and detach, under a lock.

use super::cni::{self, Op};
use super::ports::{PortMapping, Protocol};
use super::{NetworkError, netns, networks};
use crate::{ContainerRecord, container_dir, containers_dir, process_start};
use berth_store::lock::{FileLock, LockMode};
use berth_store::{Store, atomic};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::fs;
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The file in a container's directory that records its attachment.
pub const ATTACHMENT_FILE: &str = "network.json";

/// The interface the container gets.
pub const IFNAME: &str = "eth0";

/// The line that starts the network's names in a hosts file.
const PEERS_MARKER: &str = "# berth: containers on network ";

/// Docker's nameservers for a container whose host only has a loopback one.
const FALLBACK_NAMESERVERS: &[&str] = &["8.8.8.8", "8.8.4.4"];

/// The configuration that brings the namespace's loopback up.
fn loopback_conflist() -> Value {
    json!({"cniVersion": "1.0.0", "name": "berth-loopback", "plugins": [{"type": "loopback"}]})
}

/// The network a container joins, as its record keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The network's name.
    pub network: String,
    /// The CNI path given when it was created (empty: the default).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cni_path: Vec<PathBuf>,
    /// The address it got, once attached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
}

/// What was attached: enough to detach without the network's file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attachment {
    /// The network's name.
    pub network: String,
    /// The container's name, for the others' hosts files.
    pub name: String,
    /// The network namespace.
    pub netns: PathBuf,
    /// The CNI path.
    pub cni_path: Vec<PathBuf>,
    /// The network's configuration as it was attached with.
    pub conflist: Value,
    /// The `runtimeConfig` values (published ports).
    pub capabilities: Map<String, Value>,
    /// The process attaching it and its start time.
    pub owner: (i32, u64),
    /// The ADD's result, once there is one.
    #[serde(default)]
    pub result: Option<Value>,
    /// The container's address, once attached.
    #[serde(default)]
    pub ip: Option<IpAddr>,
}

impl Attachment {
    fn owner_alive(&self) -> bool {
        self.owner.0 > 0 && process_start(self.owner.0) == Some(self.owner.1)
    }
}

fn read_attachment(dir: &Path) -> Result<Option<Attachment>, NetworkError> {
    let path = dir.join(ATTACHMENT_FILE);
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| NetworkError::io("reading", &path)(io::Error::other(e))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(NetworkError::io("reading", &path)(e)),
    }
}

fn write_attachment(dir: &Path, attachment: &Attachment) -> Result<(), NetworkError> {
    let path = dir.join(ATTACHMENT_FILE);
    let bytes = serde_json::to_vec_pretty(attachment)
        .map_err(|e| NetworkError::io("rendering", &path)(io::Error::other(e)))?;
    atomic::write(&path, &bytes).map_err(NetworkError::io("writing", &path))
}

/// The portmap plugin's `portMappings` for the published ports.
pub fn port_mappings(ports: &[PortMapping]) -> Value {
    Value::Array(
        ports
            .iter()
            .map(|p| {
                let mut m = json!({
                    "hostPort": p.host_port,
                    "containerPort": p.container_port,
                    "protocol": match p.protocol { Protocol::Tcp => "tcp", Protocol::Udp => "udp" },
                });
                if !p.host_ip.is_unspecified() {
                    m["hostIP"] = p.host_ip.to_string().into();
                }
                m
            })
            .collect(),
    )
}

/// Checks, before a container is created, that its network exists (the
/// default one is made) and that every plugin it needs is installed.
pub fn preflight(store: &Store, endpoint: &Endpoint) -> Result<(), NetworkError> {
    let network = networks::find(store, &endpoint.network)?;
    let cni_path = if endpoint.cni_path.is_empty() {
        cni::cni_path(None)
    } else {
        endpoint.cni_path.clone()
    };
    cni::check_plugins(&network.conflist, &cni_path)?;
    cni::check_plugins(&loopback_conflist(), &cni_path)?;
    Ok(())
}

/// Attaches the container of `record` to the network its record names, in
/// a new namespace at [`netns::path_of`], publishing `ports`; sets the
/// address in `record` and writes its hosts and resolv.conf files. On an
/// error nothing stays attached.
pub fn attach(
    store: &Store,
    record: &mut ContainerRecord,
    ports: &[PortMapping],
) -> Result<(), NetworkError> {
    let Some(endpoint) = record.network.clone() else {
        return Ok(());
    };
    let network = networks::find(store, &endpoint.network)?;
    let cni_path = if endpoint.cni_path.is_empty() {
        cni::cni_path(None)
    } else {
        endpoint.cni_path.clone()
    };
    cni::check_plugins(&network.conflist, &cni_path)?;
    cni::check_plugins(&loopback_conflist(), &cni_path)?;
    let dir = container_dir(store, &record.id);
    let me = std::process::id() as i32;
    let mut capabilities = Map::new();
    capabilities.insert("portMappings".into(), port_mappings(ports));
    let mut attachment = Attachment {
        network: network.name.clone(),
        name: record.name.clone(),
        netns: netns::path_of(&record.id),
        cni_path,
        conflist: network.conflist.clone(),
        capabilities,
        owner: (me, process_start(me).unwrap_or(0)),
        result: None,
        ip: None,
    };
    write_attachment(&dir, &attachment)?;
    let attached = netns::create(&attachment.netns).and_then(|()| {
        let loopback = cni::Runtime {
            ifname: "lo",
            ..runtime(record, &attachment)
        };
        cni::exec(Op::Add, &loopback_conflist(), &loopback, None, &mut |_| {})?;
        let mut recorded = attachment.clone();
        let mut record_progress = |result: &Value| {
            recorded.result = Some(result.clone());
            if let Err(e) = write_attachment(&dir, &recorded) {
                tracing::warn!(error = %e, "recording a CNI result");
            }
        };
        cni::exec(
            Op::Add,
            &attachment.conflist,
            &runtime(record, &attachment),
            None,
            &mut record_progress,
        )
        .map_err(NetworkError::from)
    });
    let result = match attached {
        Ok(result) => result,
        Err(e) => {
            if let Err(cleanup) = detach(store, &record.id) {
                tracing::warn!(error = %cleanup, container = %record.id, "detaching after a failed attach");
            }
            return Err(e);
        }
    };
    attachment.ip = result
        .as_ref()
        .and_then(|r| cni::result_addresses(r).first().map(|(ip, _)| *ip));
    attachment.result = result;
    write_attachment(&dir, &attachment)?;
    if let Some(e) = record.network.as_mut() {
        e.ip = attachment.ip;
    }
    if let Err(e) = write_files(&dir, &attachment) {
        tracing::warn!(error = %e, container = %record.id, "writing the container's hosts and resolv.conf");
    }
    refresh_peers(store, &attachment.network)
}

fn runtime<'a>(record: &'a ContainerRecord, attachment: &'a Attachment) -> cni::Runtime<'a> {
    cni::Runtime {
        container_id: &record.id,
        netns: &attachment.netns,
        ifname: IFNAME,
        cni_path: &attachment.cni_path,
        capabilities: &attachment.capabilities,
        timeout: cni::PLUGIN_TIMEOUT,
    }
}

/// Detaches the container `id` if it is attached: CNI DEL with the ADD's
/// result, then the namespace goes and the others' hosts files forget it.
/// Detaching what is not attached is no error.
pub fn detach(store: &Store, id: &str) -> Result<(), NetworkError> {
    let dir = container_dir(store, id);
    let Some(attachment) = read_attachment(&dir)? else {
        return Ok(());
    };
    let runtime = cni::Runtime {
        container_id: id,
        netns: &attachment.netns,
        ifname: IFNAME,
        cni_path: &attachment.cni_path,
        capabilities: &attachment.capabilities,
        timeout: cni::PLUGIN_TIMEOUT,
    };
    let deleted = cni::exec(
        Op::Del,
        &attachment.conflist,
        &runtime,
        attachment.result.as_ref(),
        &mut |_| {},
    );
    let removed = netns::remove(&attachment.netns);
    // The record of the attachment stays until DEL succeeds: it is all a
    // later detach (the next `rm`, `ps` or start) has to release the rules
    // and the address lease with.
    if let Err(e) = deleted {
        return Err(e.into());
    }
    let path = dir.join(ATTACHMENT_FILE);
    match fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(NetworkError::io("removing", &path)(e)),
    }
    let refreshed = refresh_peers(store, &attachment.network);
    removed?;
    refreshed
}

/// Detaches a container whose start was cut short: the process attaching
/// it is gone and never recorded it running. Returns whether it did.
pub fn detach_abandoned(store: &Store, id: &str) -> Result<bool, NetworkError> {
    match read_attachment(&container_dir(store, id))? {
        Some(attachment) if !attachment.owner_alive() => {
            tracing::warn!(container = %id, "cleaning up the network of a container whose start was cut short");
            detach(store, id)?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// Reads at most 1 MiB of a file the container can write.
fn read_bounded(path: &Path) -> io::Result<String> {
    let mut text = String::new();
    fs::File::open(path)?
        .take(1024 * 1024)
        .read_to_string(&mut text)?;
    Ok(text)
}

/// Writes `text` into `path` in place: the file is bind-mounted into the
/// container, so it must keep its inode.
fn rewrite_in_place(path: &Path, text: &str) -> io::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)?;
    file.write_all(text.as_bytes())
}

/// The container's own address in its hosts file, and a resolv.conf
/// whose nameservers are reachable from the network.
fn write_files(dir: &Path, attachment: &Attachment) -> io::Result<()> {
    let hostname = read_bounded(&dir.join("hostname"))?.trim().to_owned();
    if let Some(ip) = attachment.ip {
        let hosts = dir.join("hosts");
        let text = read_bounded(&hosts)?;
        rewrite_in_place(&hosts, &own_address(&text, &hostname, ip))?;
    }
    let host_resolv = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let upstream = fs::read_to_string(SYSTEMD_RESOLVED_UPSTREAM).ok();
    rewrite_in_place(
        &dir.join("resolv.conf"),
        &resolv_conf(&choose_resolv(&host_resolv, upstream.as_deref())),
    )
}

/// Where systemd-resolved lists the servers behind its loopback stub.
const SYSTEMD_RESOLVED_UPSTREAM: &str = "/run/systemd/resolve/resolv.conf";

/// The host's resolv.conf, or, when it names only loopback resolvers (a
/// local stub such as systemd-resolved's 127.0.0.53, unreachable from the
/// container's namespace) and the stub's upstream list exists, that list,
/// as docker does.
fn choose_resolv(host: &str, upstream: Option<&str>) -> String {
    let only_loopback = host
        .lines()
        .filter_map(|l| l.strip_prefix("nameserver"))
        .filter_map(|a| a.trim().parse::<IpAddr>().ok())
        .all(|a| a.is_loopback());
    match upstream {
        Some(upstream) if only_loopback && upstream.contains("nameserver") => upstream.to_owned(),
        _ => host.to_owned(),
    }
}

/// The hosts file with the container's hostname on its address instead of
/// the loopback one.
fn own_address(hosts: &str, hostname: &str, ip: IpAddr) -> String {
    let loopback = format!("127.0.1.1\t{hostname}");
    hosts
        .lines()
        .map(|line| {
            if line == loopback {
                format!("{ip}\t{hostname}\n")
            } else {
                format!("{line}\n")
            }
        })
        .collect()
}

/// The host's resolv.conf without loopback nameservers, which the
/// container cannot reach; docker's public ones if none is left.
pub fn resolv_conf(host: &str) -> String {
    let mut out = String::new();
    let mut servers = 0;
    for line in host.lines() {
        let mut words = line.split_whitespace();
        if words.next() == Some("nameserver") {
            let loopback = words
                .next()
                .and_then(|a| a.parse::<IpAddr>().ok())
                .is_none_or(|a| a.is_loopback());
            if loopback {
                continue;
            }
            servers += 1;
        }
        out.push_str(line);
        out.push('\n');
    }
    if servers == 0 {
        for server in FALLBACK_NAMESERVERS {
            out.push_str(&format!("nameserver {server}\n"));
        }
    }
    out
}

/// The hosts file with its network section replaced by `peers`.
fn with_peers(hosts: &str, network: &str, peers: &[(IpAddr, &str)]) -> String {
    let mut text: String = hosts
        .lines()
        .take_while(|l| !l.starts_with(PEERS_MARKER))
        .map(|l| format!("{l}\n"))
        .collect();
    if !peers.is_empty() {
        text.push_str(&format!("{PEERS_MARKER}{network}\n"));
        for (ip, name) in peers {
            text.push_str(&format!("{ip}\t{name}\n"));
        }
    }
    text
}

/// Rewrites the hosts file of every container attached to the user network
/// `network` so that each names all the others. The default bridge has no
/// name resolution, as docker's has none.
fn refresh_peers(store: &Store, network: &str) -> Result<(), NetworkError> {
    if network == networks::DEFAULT_NETWORK {
        return Ok(());
    }
    let lock_path = store.lock_path("network-hosts");
    let _lock = FileLock::acquire(&lock_path, LockMode::Exclusive)
        .map_err(NetworkError::io("locking", &lock_path))?;
    let dir = containers_dir(store);
    let mut attached = Vec::new();
    for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
        if let Ok(Some(a)) = read_attachment(&entry.path())
            && a.network == network
            && let Some(ip) = a.ip
        {
            attached.push((entry.path(), ip, a.name));
        }
    }
    for (path, _, name) in &attached {
        let peers: Vec<(IpAddr, &str)> = attached
            .iter()
            .filter(|(_, _, n)| n != name)
            .map(|(_, ip, n)| (*ip, n.as_str()))
            .collect();
        let hosts = path.join("hosts");
        let updated = read_bounded(&hosts)
            .and_then(|text| rewrite_in_place(&hosts, &with_peers(&text, network, &peers)));
        if let Err(e) = updated {
            tracing::warn!(error = %e, path = %hosts.display(), "updating a container's hosts file");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_drops_loopback_nameservers() {
        for (host, want) in [
            (
                "nameserver 10.255.255.53\nsearch lan\n",
                "nameserver 10.255.255.53\nsearch lan\n",
            ),
            (
                "nameserver 127.0.0.53\noptions edns0\n",
                "options edns0\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n",
            ),
            (
                "nameserver ::1\nnameserver 192.0.2.9\n",
                "nameserver 192.0.2.9\n",
            ),
            ("", "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"),
        ] {
            assert_eq!(resolv_conf(host), want, "{host:?}");
        }
    }

    #[test]
    fn a_loopback_stub_gives_way_to_its_upstream_servers() {
        let stub = "nameserver 127.0.0.53\noptions edns0\n";
        let upstream = "nameserver 192.0.2.53\n";
        for (host, upstream, want) in [
            (stub, Some(upstream), upstream),
            (stub, None, stub),
            (stub, Some("# no servers\n"), stub),
            (
                "nameserver 192.0.2.9\n",
                Some(upstream),
                "nameserver 192.0.2.9\n",
            ),
        ] {
            assert_eq!(choose_resolv(host, upstream), want, "{host:?} {upstream:?}");
        }
    }

    #[test]
    fn hosts_get_the_own_address_and_the_peers_section_is_replaced() {
        let base = "127.0.0.1\tlocalhost\n127.0.1.1\tbox\n";
        let ip: IpAddr = "10.89.3.2".parse().unwrap();
        let own = own_address(base, "box", ip);
        assert_eq!(own, "127.0.0.1\tlocalhost\n10.89.3.2\tbox\n");
        let peer: IpAddr = "10.89.3.3".parse().unwrap();
        let one = with_peers(&own, "n1", &[(peer, "web")]);
        assert_eq!(one, format!("{own}{PEERS_MARKER}n1\n10.89.3.3\tweb\n"));
        assert_eq!(with_peers(&one, "n1", &[]), own);
        let twice = with_peers(&one, "n1", &[(peer, "db")]);
        assert!(!twice.contains("web") && twice.contains("db"), "{twice}");
    }

    #[test]
    fn published_ports_become_portmap_mappings() {
        let ports = [
            PortMapping {
                host_ip: "0.0.0.0".parse().unwrap(),
                host_port: 8080,
                container_port: 80,
                protocol: Protocol::Tcp,
            },
            PortMapping {
                host_ip: "127.0.0.1".parse().unwrap(),
                host_port: 5353,
                container_port: 53,
                protocol: Protocol::Udp,
            },
        ];
        assert_eq!(
            port_mappings(&ports),
            json!([
                {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
                {"hostPort": 5353, "containerPort": 53, "protocol": "udp", "hostIP": "127.0.0.1"},
            ])
        );
    }
}
