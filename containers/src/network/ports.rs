//! Published ports: what `-p` and `-P` ask for, and what a container got.
//!
//! [`parse_publish`] reads docker's `-p` grammar, [`requests`] adds the
//! image's `EXPOSE`d ports for `-P`, [`allocate`] turns the requests into
//! host ports that are free, and [`ps_column`] and [`port_lines`] print them
//! as `docker ps` and `docker port` do.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};

/// A transport protocol of a published port.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP, the default.
    #[default]
    Tcp,
    /// UDP.
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

/// One port a user asked to publish (`-p`, or an `EXPOSE`d port with `-P`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRequest {
    /// The host address to listen on; `None` for every address.
    pub host_ip: Option<IpAddr>,
    /// The host port; `None` for any free one.
    pub host_port: Option<u16>,
    /// The container's port.
    pub container_port: u16,
    /// The protocol.
    pub protocol: Protocol,
}

/// One port a container has published: kept in its record, shown by
/// `berth port` and the PORTS column of `berth ps`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    /// The host address it listens on (`0.0.0.0` for every address).
    pub host_ip: IpAddr,
    /// The host port.
    pub host_port: u16,
    /// The container's port.
    pub container_port: u16,
    /// The protocol.
    pub protocol: Protocol,
}

impl PortMapping {
    /// The host side as docker prints it: `0.0.0.0:8080`, `[::1]:8080`.
    pub fn host_address(&self) -> String {
        SocketAddr::new(self.host_ip, self.host_port).to_string()
    }
}

/// The most ports one `-p` range may publish: each is a NAT rule, and a
/// typo such as `1-65535` should not make 65535 of them.
pub const MAX_PORTS_PER_SPEC: usize = 1024;

/// Where Linux keeps the range it hands out ephemeral ports from.
pub const LOCAL_PORT_RANGE: &str = "/proc/sys/net/ipv4/ip_local_port_range";

/// Errors of reading `-p` values and allocating host ports. The messages of
/// bad `-p` values are docker's.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    /// The host address of a `-p` value is not an IP address.
    #[error("invalid IP address: {0}")]
    InvalidIp(String),
    /// A `-p` value has no container port.
    #[error("no port specified: {0}<empty>")]
    NoPort(String),
    /// The container port (or range) of a `-p` value does not parse.
    #[error("invalid containerPort: {0}")]
    InvalidContainerPort(String),
    /// The host port (or range) of a `-p` value does not parse.
    #[error("invalid hostPort: {0}")]
    InvalidHostPort(String),
    /// A host range and a container range of different lengths.
    #[error("invalid ranges specified for container and host Ports: {container} and {host}")]
    RangeMismatch {
        /// The container range.
        container: String,
        /// The host range.
        host: String,
    },
    /// A protocol other than tcp and udp.
    #[error("invalid proto: {0}\nhint: berth publishes tcp and udp ports")]
    InvalidProto(String),
    /// One `-p` range holds too many ports.
    #[error(
        "the port range {range} holds {count} ports; berth publishes at most {MAX_PORTS_PER_SPEC} from one -p"
    )]
    TooManyPorts {
        /// The range as written.
        range: String,
        /// How many ports it holds.
        count: usize,
    },
    /// An `ExposedPorts` key of the image does not parse.
    #[error("invalid exposed port '{0}' in the image configuration")]
    InvalidExposed(String),
    /// The host port is taken: by a process, another container or another
    /// `-p` of this one.
    #[error(
        "bind for {address}/{protocol} failed: port is already allocated\nhint: publish another host port, or -p {container_port} for a free one"
    )]
    PortInUse {
        /// The host address and port.
        address: String,
        /// The protocol.
        protocol: Protocol,
        /// The container port it was asked for.
        container_port: u16,
    },
    /// The host address of a `-p` value is none of this host's addresses.
    #[error("bind for {address}/{protocol} failed: {ip} is not an address of this host")]
    AddressNotAvailable {
        /// The host address and port.
        address: String,
        /// The address.
        ip: IpAddr,
        /// The protocol.
        protocol: Protocol,
    },
    /// Every port of the local port range is taken.
    #[error(
        "no free host port for {container_port}/{protocol} in {start}-{end} (the range of {LOCAL_PORT_RANGE})"
    )]
    Exhausted {
        /// The container port.
        container_port: u16,
        /// The protocol.
        protocol: Protocol,
        /// The first port of the range.
        start: u16,
        /// The last port of the range.
        end: u16,
    },
    /// Trying a host port failed for another reason than its being taken.
    #[error("checking host port {address}/{protocol}")]
    Probe {
        /// The host address and port.
        address: String,
        /// The protocol.
        protocol: Protocol,
        /// The error.
        source: io::Error,
    },
    /// The local port range cannot be read.
    #[error("reading the local port range {}", path.display())]
    PortRange {
        /// The file.
        path: PathBuf,
        /// The error, or why its text does not parse.
        source: io::Error,
    },
}

/// Reads one `-p` value, docker's
/// `[HOST_IP:][HOST_PORT[-END]:]CONTAINER_PORT[-END][/tcp|udp]`, into one
/// request per container port. A missing or `0` host port asks for any free
/// one; an IPv6 host address is written in brackets (`[::1]:80:80`).
pub fn parse_publish(spec: &str) -> Result<Vec<PortRequest>, PortError> {
    let (ip, host, container) = split_parts(spec);
    let (container, proto) = container.split_once('/').unwrap_or((container, "tcp"));
    let host_ip = parse_host_ip(ip)?;
    if container.is_empty() {
        return Err(PortError::NoPort(spec.to_string()));
    }
    let (start, end) = parse_range(container)
        .filter(|(start, _)| *start != 0)
        .ok_or_else(|| PortError::InvalidContainerPort(container.to_string()))?;
    let host_range = if host.is_empty() {
        None
    } else {
        Some(parse_range(host).ok_or_else(|| PortError::InvalidHostPort(host.to_string()))?)
    };
    let protocol = match proto.to_ascii_lowercase().as_str() {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        _ => return Err(PortError::InvalidProto(proto.to_string())),
    };
    let count = usize::from(end - start) + 1;
    if count > MAX_PORTS_PER_SPEC {
        return Err(PortError::TooManyPorts {
            range: container.to_string(),
            count,
        });
    }
    let host_start = match host_range {
        // `0` and no host port both mean any free port.
        None | Some((0, 0)) => None,
        Some((host_start, host_end)) if host_end - host_start == end - start => Some(host_start),
        // Docker takes a host range for one container port as a pool to
        // pick from; berth asks for equal lengths.
        Some(_) => {
            return Err(PortError::RangeMismatch {
                container: container.to_string(),
                host: host.to_string(),
            });
        }
    };
    if host_start == Some(0) {
        return Err(PortError::InvalidHostPort(host.to_string()));
    }
    Ok((start..=end)
        .map(|container_port| PortRequest {
            host_ip,
            host_port: host_start.map(|h| h + (container_port - start)),
            container_port,
            protocol,
        })
        .collect())
}

/// Splits a `-p` value into host address, host port and container port as
/// docker does: the last two `:`-separated parts are the ports, anything
/// before them the address (so an IPv6 address needs no more than brackets).
fn split_parts(spec: &str) -> (&str, &str, &str) {
    match spec.rsplit_once(':') {
        None => ("", "", spec),
        Some((rest, container)) => match rest.rsplit_once(':') {
            None => ("", rest, container),
            Some((ip, host)) => (ip, host, container),
        },
    }
}

fn parse_host_ip(ip: &str) -> Result<Option<IpAddr>, PortError> {
    if ip.is_empty() {
        return Ok(None);
    }
    let bare = match ip.strip_prefix('[') {
        Some(inner) => inner
            .strip_suffix(']')
            .ok_or_else(|| PortError::InvalidIp(ip.to_string()))?,
        None => ip,
    };
    bare.parse()
        .map(Some)
        .map_err(|_| PortError::InvalidIp(ip.to_string()))
}

/// `PORT` or `START-END` with `START <= END`, each a decimal `u16`.
fn parse_range(text: &str) -> Option<(u16, u16)> {
    let port = |t: &str| {
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        t.parse::<u16>().ok()
    };
    let (start, end) = match text.split_once('-') {
        Some((start, end)) => (port(start)?, port(end)?),
        None => (port(text)?, port(text)?),
    };
    (start <= end).then_some((start, end))
}

/// The ports a container asks for: its `-p` requests, then with `-P` every
/// port of the image's `ExposedPorts` (`80/tcp`, `53/udp`, `8000-8002/tcp`)
/// not already published by a `-p`, on any free host port.
pub fn requests<'a>(
    publish: &[PortRequest],
    publish_all: bool,
    exposed: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<PortRequest>, PortError> {
    let mut all = publish.to_vec();
    if !publish_all {
        return Ok(all);
    }
    for key in exposed {
        let (ports, proto) = key.split_once('/').unwrap_or((key, "tcp"));
        let invalid = || PortError::InvalidExposed(key.to_string());
        let (start, end) = parse_range(ports)
            .filter(|(start, _)| *start != 0)
            .ok_or_else(invalid)?;
        if usize::from(end - start) >= MAX_PORTS_PER_SPEC {
            return Err(invalid());
        }
        let protocol = match proto.to_ascii_lowercase().as_str() {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            _ => return Err(invalid()),
        };
        for container_port in start..=end {
            let published = all
                .iter()
                .any(|r| r.container_port == container_port && r.protocol == protocol);
            if !published {
                all.push(PortRequest {
                    host_ip: None,
                    host_port: None,
                    container_port,
                    protocol,
                });
            }
        }
    }
    Ok(all)
}

/// The host ports a new container gets: its `-p` requests and with `-P`
/// the image's `exposed` ports, allocated around the ports the containers
/// in `existing` that are not exited hold. Called under the store's names
/// lock, so that two containers starting at once never get one port.
pub fn publish<'a>(
    publish: &[PortRequest],
    publish_all: bool,
    exposed: impl IntoIterator<Item = &'a str>,
    existing: &[crate::ContainerRecord],
) -> Result<Vec<PortMapping>, PortError> {
    let wanted = requests(publish, publish_all, exposed)?;
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let taken: Vec<PortMapping> = existing
        .iter()
        .filter(|r| !matches!(r.state, crate::State::Exited { .. }))
        .flat_map(|r| r.ports.iter().cloned())
        .collect();
    allocate(&wanted, &taken)
}

/// Gives every request a host port: the one it names after checking that
/// nothing holds it (a process bound to it, a live container in `taken`, or
/// an earlier request), or a free one from the kernel's local port range.
/// Fails, naming the port, before anything is started.
pub fn allocate(
    requests: &[PortRequest],
    taken: &[PortMapping],
) -> Result<Vec<PortMapping>, PortError> {
    let needs_free_port = requests.iter().any(|r| r.host_port.is_none());
    let range = if needs_free_port {
        local_port_range(Path::new(LOCAL_PORT_RANGE))?
    } else {
        (0, 0)
    };
    allocate_in(requests, taken, range, &probe)
}

/// Whether a host port can be had: `Ok(false)` when something holds it.
type Probe<'a> = dyn Fn(IpAddr, u16, Protocol) -> io::Result<bool> + 'a;

/// [`allocate`] with the free-port range and the probe given.
fn allocate_in(
    requests: &[PortRequest],
    taken: &[PortMapping],
    (start, end): (u16, u16),
    probe: &Probe,
) -> Result<Vec<PortMapping>, PortError> {
    let mut got: Vec<PortMapping> = Vec::with_capacity(requests.len());
    for request in requests {
        let host_ip = request.host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let held = |port: u16, got: &[PortMapping]| {
            taken.iter().chain(got).any(|m| {
                m.protocol == request.protocol && m.host_port == port && overlap(m.host_ip, host_ip)
            })
        };
        let host_port = match request.host_port {
            Some(port) => {
                let mapping = PortMapping {
                    host_ip,
                    host_port: port,
                    container_port: request.container_port,
                    protocol: request.protocol,
                };
                // The same `-p` twice is one port, as docker has it.
                if got.contains(&mapping) {
                    continue;
                }
                let in_use = || PortError::PortInUse {
                    address: mapping.host_address(),
                    protocol: request.protocol,
                    container_port: request.container_port,
                };
                if held(port, &got) {
                    return Err(in_use());
                }
                match probe(host_ip, port, request.protocol) {
                    Ok(true) => port,
                    Ok(false) => return Err(in_use()),
                    Err(e) if e.kind() == io::ErrorKind::AddrNotAvailable => {
                        return Err(PortError::AddressNotAvailable {
                            address: mapping.host_address(),
                            ip: host_ip,
                            protocol: request.protocol,
                        });
                    }
                    Err(source) => {
                        return Err(PortError::Probe {
                            address: mapping.host_address(),
                            protocol: request.protocol,
                            source,
                        });
                    }
                }
            }
            None => free_port(request, host_ip, (start, end), probe, |p| held(p, &got))?,
        };
        got.push(PortMapping {
            host_ip,
            host_port,
            container_port: request.container_port,
            protocol: request.protocol,
        });
    }
    Ok(got)
}

/// A port of `start..=end` that nothing holds, trying them in order from a
/// point that differs between calls, so that berth processes starting at
/// once rarely pick the same one.
fn free_port(
    request: &PortRequest,
    host_ip: IpAddr,
    (start, end): (u16, u16),
    probe: &Probe,
    held: impl Fn(u16) -> bool,
) -> Result<u16, PortError> {
    let exhausted = || PortError::Exhausted {
        container_port: request.container_port,
        protocol: request.protocol,
        start,
        end,
    };
    if start == 0 || start > end {
        return Err(exhausted());
    }
    let count = u32::from(end - start) + 1;
    let offset = spread() % count;
    for step in 0..count {
        let port = start + ((offset + step) % count) as u16;
        if held(port) {
            continue;
        }
        match probe(host_ip, port, request.protocol) {
            Ok(true) => return Ok(port),
            Ok(false) => continue,
            Err(e) if e.kind() == io::ErrorKind::AddrNotAvailable => {
                return Err(PortError::AddressNotAvailable {
                    address: SocketAddr::new(host_ip, port).to_string(),
                    ip: host_ip,
                    protocol: request.protocol,
                });
            }
            // A port the probe cannot judge is skipped, not taken.
            Err(_) => continue,
        }
    }
    Err(exhausted())
}

/// A number that differs between processes and calls.
fn spread() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    nanos ^ std::process::id().wrapping_mul(2_654_435_761)
}

/// Whether two host addresses share a port: the same family, and equal or
/// one of them every address.
fn overlap(a: IpAddr, b: IpAddr) -> bool {
    a.is_ipv4() == b.is_ipv4() && (a == b || a.is_unspecified() || b.is_unspecified())
}

/// Tries to bind the port: `Ok(false)` when it is in use. Binding a TCP
/// port conflicts with a listener, binding a UDP port with any socket on it.
fn probe(ip: IpAddr, port: u16, protocol: Protocol) -> io::Result<bool> {
    let address = SocketAddr::new(ip, port);
    let bound = match protocol {
        Protocol::Tcp => TcpListener::bind(address).map(drop),
        Protocol::Udp => UdpSocket::bind(address).map(drop),
    };
    match bound {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => Ok(false),
        // Without the right to bind low ports berth cannot tell; the
        // runtime will.
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Ok(true),
        Err(e) => Err(e),
    }
}

/// The kernel's local port range, `START END` in the file.
pub fn local_port_range(path: &Path) -> Result<(u16, u16), PortError> {
    let error = |source| PortError::PortRange {
        path: path.to_owned(),
        source,
    };
    let text = std::fs::read_to_string(path).map_err(error)?;
    let mut numbers = text.split_whitespace().map(str::parse::<u16>);
    match (numbers.next(), numbers.next(), numbers.next()) {
        (Some(Ok(start)), Some(Ok(end)), None) if 0 < start && start <= end => Ok((start, end)),
        _ => Err(error(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("expected two ports, got '{}'", text.trim()),
        ))),
    }
}

/// The PORTS column of `docker ps`: `0.0.0.0:8080->80/tcp`, with runs of
/// ports published on the same numbers collapsed
/// (`0.0.0.0:8000-8002->8000-8002/tcp`) and other mappings listed one by one
/// after them, as docker's `DisplayablePorts` does.
pub fn ps_column(ports: &[PortMapping]) -> String {
    let mut sorted: Vec<&PortMapping> = ports.iter().collect();
    sorted.sort_by(|a, b| {
        (
            a.container_port,
            a.host_ip.to_string(),
            a.host_port,
            a.protocol,
        )
            .cmp(&(
                b.container_port,
                b.host_ip.to_string(),
                b.host_port,
                b.protocol,
            ))
    });
    // Groups of equal host and container ports, keyed by address and
    // protocol, in the order their keys first appear.
    let mut groups: Vec<((IpAddr, Protocol), u16, u16)> = Vec::new();
    let mut result = Vec::new();
    let mut singles = Vec::new();
    for m in sorted {
        if m.host_port != m.container_port {
            singles.push(format!(
                "{}->{}/{}",
                m.host_address(),
                m.container_port,
                m.protocol
            ));
            continue;
        }
        let key = (m.host_ip, m.protocol);
        match groups.iter_mut().find(|(k, _, _)| *k == key) {
            None => groups.push((key, m.container_port, m.container_port)),
            Some((_, _, last)) if m.container_port == last.wrapping_add(1) => {
                *last = m.container_port
            }
            Some(group) => {
                result.push(form_group(group.0, group.1, group.2));
                *group = (key, m.container_port, m.container_port);
            }
        }
    }
    result.extend(groups.iter().map(|(k, f, l)| form_group(*k, *f, *l)));
    result.extend(singles);
    result.join(", ")
}

fn form_group((ip, protocol): (IpAddr, Protocol), first: u16, last: u16) -> String {
    let ports = if first == last {
        first.to_string()
    } else {
        format!("{first}-{last}")
    };
    let host = match ip {
        IpAddr::V4(v4) => format!("{v4}:{ports}"),
        IpAddr::V6(v6) => format!("[{v6}]:{ports}"),
    };
    format!("{host}->{ports}/{protocol}")
}

/// Reads the `PRIVATE_PORT[/PROTO]` argument of `berth port`.
pub fn parse_private_port(text: &str) -> Result<(u16, Protocol), PortError> {
    let (port, proto) = text.split_once('/').unwrap_or((text, "tcp"));
    let port = parse_range(port)
        .filter(|(start, end)| start == end)
        .map(|(start, _)| start)
        .ok_or_else(|| PortError::InvalidContainerPort(port.to_string()))?;
    let protocol = match proto.to_ascii_lowercase().as_str() {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        _ => return Err(PortError::InvalidProto(proto.to_string())),
    };
    Ok((port, protocol))
}

/// The lines of `docker port`: `80/tcp -> 0.0.0.0:8080` for every mapping,
/// or with a private port only the host sides of its mappings
/// (`0.0.0.0:8080`); sorted as docker sorts them.
pub fn port_lines(ports: &[PortMapping], private: Option<(u16, Protocol)>) -> Vec<String> {
    let mut sorted: Vec<&PortMapping> = ports
        .iter()
        .filter(|m| {
            private.is_none_or(|(port, proto)| m.container_port == port && m.protocol == proto)
        })
        .collect();
    sorted.sort_by(|a, b| {
        (
            a.container_port,
            a.protocol,
            a.host_ip.to_string(),
            a.host_port,
        )
            .cmp(&(
                b.container_port,
                b.protocol,
                b.host_ip.to_string(),
                b.host_port,
            ))
    });
    sorted
        .into_iter()
        .map(|m| match private {
            Some(_) => m.host_address(),
            None => format!(
                "{}/{} -> {}",
                m.container_port,
                m.protocol,
                m.host_address()
            ),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    fn req(ip: Option<&str>, host: Option<u16>, container: u16, protocol: Protocol) -> PortRequest {
        PortRequest {
            host_ip: ip.map(|i| i.parse().unwrap()),
            host_port: host,
            container_port: container,
            protocol,
        }
    }

    fn map(ip: &str, host: u16, container: u16, protocol: Protocol) -> PortMapping {
        PortMapping {
            host_ip: ip.parse().unwrap(),
            host_port: host,
            container_port: container,
            protocol,
        }
    }

    use Protocol::{Tcp, Udp};

    #[test]
    fn publish_specs_parse_as_docker_reads_them() {
        let cases: &[(&str, Vec<PortRequest>)] = &[
            ("80", vec![req(None, None, 80, Tcp)]),
            ("8080:80", vec![req(None, Some(8080), 80, Tcp)]),
            ("0:80", vec![req(None, None, 80, Tcp)]),
            (":80", vec![req(None, None, 80, Tcp)]),
            ("53/udp", vec![req(None, None, 53, Udp)]),
            ("5353:53/UDP", vec![req(None, Some(5353), 53, Udp)]),
            (
                "127.0.0.1:8080:80/tcp",
                vec![req(Some("127.0.0.1"), Some(8080), 80, Tcp)],
            ),
            ("127.0.0.1::80", vec![req(Some("127.0.0.1"), None, 80, Tcp)]),
            ("[::1]:8080:80", vec![req(Some("::1"), Some(8080), 80, Tcp)]),
            ("::1:8080:80", vec![req(Some("::1"), Some(8080), 80, Tcp)]),
            (
                "8000-8002:80-82",
                vec![
                    req(None, Some(8000), 80, Tcp),
                    req(None, Some(8001), 81, Tcp),
                    req(None, Some(8002), 82, Tcp),
                ],
            ),
            (
                "7000-7001/udp",
                vec![req(None, None, 7000, Udp), req(None, None, 7001, Udp)],
            ),
            ("65535:65535", vec![req(None, Some(65535), 65535, Tcp)]),
        ];
        for (spec, want) in cases {
            assert_eq!(&parse_publish(spec).unwrap(), want, "{spec}");
        }
    }

    #[test]
    fn bad_publish_specs_fail_with_dockers_messages() {
        let huge = format!("{}:80", "9".repeat(100_000));
        let cases: &[(&str, &str)] = &[
            ("", "no port specified: <empty>"),
            ("8080:", "no port specified: 8080:<empty>"),
            ("abc", "invalid containerPort: abc"),
            ("0", "invalid containerPort: 0"),
            ("65536", "invalid containerPort: 65536"),
            ("-1", "invalid containerPort: -1"),
            ("+80", "invalid containerPort: +80"),
            ("82-80", "invalid containerPort: 82-80"),
            ("80-", "invalid containerPort: 80-"),
            ("65536:80", "invalid hostPort: 65536"),
            ("x:80", "invalid hostPort: x"),
            (&huge, "invalid hostPort: 999"),
            ("1.2.3:8080:80", "invalid IP address: 1.2.3"),
            ("[::1:8080:80", "invalid IP address: [::1"),
            ("localhost:8080:80", "invalid IP address: localhost"),
            ("80/sctp", "invalid proto: sctp"),
            ("80/", "invalid proto: "),
            (
                "8000-8001:80-82",
                "invalid ranges specified for container and host Ports: 80-82 and 8000-8001",
            ),
            (
                "8000-8010:80",
                "invalid ranges specified for container and host Ports: 80 and 8000-8010",
            ),
            ("1-65535", "the port range 1-65535 holds 65535 ports"),
            ("0-1023:0-1023", "invalid containerPort: 0-1023"),
        ];
        for (spec, want) in cases {
            let got = parse_publish(spec).unwrap_err().to_string();
            assert!(got.starts_with(want), "{spec}: got {got:?}, want {want:?}");
        }
    }

    #[test]
    fn publish_all_adds_the_exposed_ports_not_published_already() {
        let explicit = vec![req(None, Some(8080), 80, Tcp)];
        let got = requests(
            &explicit,
            true,
            ["80/tcp", "53/udp", "443", "9000-9001/tcp"],
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                req(None, Some(8080), 80, Tcp),
                req(None, None, 53, Udp),
                req(None, None, 443, Tcp),
                req(None, None, 9000, Tcp),
                req(None, None, 9001, Tcp),
            ]
        );
        assert_eq!(requests(&explicit, false, ["53/udp"]).unwrap(), explicit);
        for bad in ["x/tcp", "0/tcp", "80/sctp", "1-65535/tcp", "70000"] {
            assert!(
                matches!(
                    requests(&[], true, [bad]),
                    Err(PortError::InvalidExposed(_))
                ),
                "{bad}"
            );
        }
    }

    /// A probe that says the ports in `busy` are in use and records what it
    /// was asked.
    struct FakeHost {
        busy: Vec<(u16, Protocol)>,
        asked: RefCell<Vec<u16>>,
    }

    impl FakeHost {
        fn new(busy: &[(u16, Protocol)]) -> FakeHost {
            FakeHost {
                busy: busy.to_vec(),
                asked: RefCell::new(Vec::new()),
            }
        }
        fn probe(&self, _: IpAddr, port: u16, proto: Protocol) -> io::Result<bool> {
            self.asked.borrow_mut().push(port);
            Ok(!self.busy.contains(&(port, proto)))
        }
    }

    #[test]
    fn requested_ports_are_checked_against_processes_containers_and_each_other() {
        let taken = [
            map("0.0.0.0", 9000, 80, Tcp),
            map("127.0.0.1", 9001, 80, Tcp),
        ];
        let host = FakeHost::new(&[(7000, Tcp)]);
        let probe = |ip, port, proto| host.probe(ip, port, proto);
        type Case<'a> = (Vec<PortRequest>, Result<Vec<PortMapping>, &'a str>);
        let cases: Vec<Case> = vec![
            (
                vec![req(None, Some(8080), 80, Tcp)],
                Ok(vec![map("0.0.0.0", 8080, 80, Tcp)]),
            ),
            // A process listens on it.
            (
                vec![req(None, Some(7000), 80, Tcp)],
                Err("bind for 0.0.0.0:7000/tcp failed: port is already allocated"),
            ),
            // UDP and TCP ports are different ports.
            (
                vec![req(None, Some(7000), 80, Udp)],
                Ok(vec![map("0.0.0.0", 7000, 80, Udp)]),
            ),
            // Another container holds it on every address.
            (
                vec![req(Some("127.0.0.1"), Some(9000), 80, Tcp)],
                Err("bind for 127.0.0.1:9000/tcp failed"),
            ),
            // Another container holds it on one address.
            (
                vec![req(None, Some(9001), 80, Tcp)],
                Err("bind for 0.0.0.0:9001/tcp failed"),
            ),
            (
                vec![req(Some("127.0.0.2"), Some(9001), 80, Tcp)],
                Ok(vec![map("127.0.0.2", 9001, 80, Tcp)]),
            ),
            (
                vec![req(Some("::1"), Some(9000), 80, Tcp)],
                Ok(vec![map("::1", 9000, 80, Tcp)]),
            ),
            // Two -p of this container on one host port.
            (
                vec![
                    req(None, Some(8080), 80, Tcp),
                    req(None, Some(8080), 81, Tcp),
                ],
                Err("bind for 0.0.0.0:8080/tcp failed"),
            ),
            // The same -p twice is one port.
            (
                vec![
                    req(None, Some(8080), 80, Tcp),
                    req(None, Some(8080), 80, Tcp),
                ],
                Ok(vec![map("0.0.0.0", 8080, 80, Tcp)]),
            ),
        ];
        for (requests, want) in cases {
            let got = allocate_in(&requests, &taken, (40000, 40010), &probe);
            match (got, want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{requests:?}"),
                (Err(got), Err(want)) => {
                    assert!(got.to_string().starts_with(want), "{requests:?}: {got}")
                }
                (got, want) => panic!("{requests:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn free_ports_skip_what_is_held_and_run_out_with_a_message() {
        // Of 40000-40003, a process holds 40000 and 40002, a container 40001.
        let host = FakeHost::new(&[(40000, Tcp), (40002, Tcp)]);
        let probe = |ip, port, proto| host.probe(ip, port, proto);
        let taken = [map("0.0.0.0", 40001, 80, Tcp)];
        let got = allocate_in(&[req(None, None, 80, Tcp)], &taken, (40000, 40003), &probe).unwrap();
        assert_eq!(got, vec![map("0.0.0.0", 40003, 80, Tcp)]);
        // Two free ports for two requests are two different ports.
        let two = allocate_in(
            &[req(None, None, 80, Udp), req(None, None, 81, Udp)],
            &[],
            (40000, 40001),
            &probe,
        )
        .unwrap();
        assert_ne!(two[0].host_port, two[1].host_port);
        let none = allocate_in(
            &[req(None, None, 80, Tcp), req(None, None, 81, Tcp)],
            &taken,
            (40000, 40003),
            &probe,
        )
        .unwrap_err();
        assert_eq!(
            none.to_string(),
            "no free host port for 81/tcp in 40000-40003 (the range of /proc/sys/net/ipv4/ip_local_port_range)"
        );
        // The whole range is tried once, no more.
        host.asked.borrow_mut().clear();
        let _ = allocate_in(&[req(None, None, 80, Tcp)], &[], (40000, 40000), &probe);
        assert_eq!(*host.asked.borrow(), vec![40000]);
    }

    #[test]
    fn the_real_probe_sees_a_listener_and_a_bound_udp_socket() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let err = allocate(&[req(Some("127.0.0.1"), Some(port), 80, Tcp)], &[]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("bind for 127.0.0.1:{port}/tcp failed")),
            "{err}"
        );
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        assert!(allocate(&[req(Some("127.0.0.1"), Some(port), 53, Udp)], &[]).is_err());
        // A free one from the kernel's range.
        let (start, end) = local_port_range(Path::new(LOCAL_PORT_RANGE)).unwrap();
        let got = allocate(&[req(Some("127.0.0.1"), None, 80, Tcp)], &[]).unwrap();
        assert!((start..=end).contains(&got[0].host_port), "{got:?}");
        // An address this host does not have.
        let err = allocate(&[req(Some("203.0.113.254"), Some(8080), 80, Tcp)], &[]).unwrap_err();
        assert!(
            matches!(err, PortError::AddressNotAvailable { .. }),
            "{err}"
        );
    }

    /// A record as `container.json` holds it, so that fields added later
    /// take their defaults.
    fn record(
        name: &str,
        state: serde_json::Value,
        ports: &[PortMapping],
    ) -> crate::ContainerRecord {
        serde_json::from_value(serde_json::json!({
            "id": format!("{name:0>64}"),
            "image": "busybox",
            "image_digest": format!("sha256:{}", "0".repeat(64)),
            "name": name,
            "state": state,
            "ports": ports,
        }))
        .unwrap()
    }

    #[test]
    fn containers_not_exited_hold_their_ports() {
        let port = {
            let probe = TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let held = [map("127.0.0.1", port, 80, Tcp)];
        let running =
            serde_json::json!({"status": "running", "pid": 1, "pid_start": 1, "started": 1});
        let exited =
            serde_json::json!({"status": "exited", "code": 0, "started": 1, "finished": 2});
        let created = serde_json::json!({"status": "created"});
        let wanted = [req(Some("127.0.0.1"), Some(port), 80, Tcp)];
        for (state, free) in [(running, false), (created, false), (exited, true)] {
            let existing = [record("other", state.clone(), &held)];
            let got = publish(&wanted, false, [], &existing);
            assert_eq!(got.is_ok(), free, "{state}: {got:?}");
        }
        // Nothing asked, nothing probed.
        assert_eq!(publish(&[], false, ["80/tcp"], &[]).unwrap(), vec![]);
    }

    #[test]
    fn port_ranges_are_read_or_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("range");
        for (text, want) in [
            ("32768\t60999\n", Some((32768, 60999))),
            ("1024 1024", Some((1024, 1024))),
            ("60999 32768", None),
            ("0 10", None),
            ("32768", None),
            ("1 2 3", None),
            ("a b", None),
            ("", None),
        ] {
            std::fs::write(&path, text).unwrap();
            assert_eq!(local_port_range(&path).ok(), want, "{text:?}");
        }
        assert!(local_port_range(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn the_ps_column_collapses_ranges_as_docker_does() {
        let cases: &[(&[PortMapping], &str)] = &[
            (&[], ""),
            (&[map("0.0.0.0", 8080, 80, Tcp)], "0.0.0.0:8080->80/tcp"),
            (&[map("::1", 8080, 80, Tcp)], "[::1]:8080->80/tcp"),
            (
                &[
                    map("0.0.0.0", 8002, 8002, Tcp),
                    map("0.0.0.0", 8000, 8000, Tcp),
                    map("0.0.0.0", 8001, 8001, Tcp),
                ],
                "0.0.0.0:8000-8002->8000-8002/tcp",
            ),
            (
                &[map("0.0.0.0", 9000, 80, Tcp), map("0.0.0.0", 9001, 81, Tcp)],
                "0.0.0.0:9000->80/tcp, 0.0.0.0:9001->81/tcp",
            ),
            // A broken run is closed when the next port of its key comes,
            // and open runs follow in the order their keys appeared.
            (
                &[
                    map("0.0.0.0", 53, 53, Udp),
                    map("0.0.0.0", 53, 53, Tcp),
                    map("0.0.0.0", 55, 55, Tcp),
                    map("0.0.0.0", 8080, 80, Tcp),
                ],
                "0.0.0.0:53->53/tcp, 0.0.0.0:55->55/tcp, 0.0.0.0:53->53/udp, 0.0.0.0:8080->80/tcp",
            ),
            (
                &[map("::", 80, 80, Tcp), map("::", 81, 81, Tcp)],
                "[::]:80-81->80-81/tcp",
            ),
        ];
        for (ports, want) in cases {
            assert_eq!(ps_column(ports), *want, "{ports:?}");
        }
    }

    #[test]
    fn port_lines_are_dockers() {
        let ports = [
            map("0.0.0.0", 5353, 53, Udp),
            map("0.0.0.0", 8080, 80, Tcp),
            map("127.0.0.1", 8443, 443, Tcp),
            map("::1", 8081, 80, Tcp),
        ];
        assert_eq!(
            port_lines(&ports, None),
            vec![
                "53/udp -> 0.0.0.0:5353",
                "80/tcp -> 0.0.0.0:8080",
                "80/tcp -> [::1]:8081",
                "443/tcp -> 127.0.0.1:8443",
            ]
        );
        assert_eq!(
            port_lines(&ports, Some((80, Tcp))),
            vec!["0.0.0.0:8080", "[::1]:8081"]
        );
        assert!(port_lines(&ports, Some((80, Udp))).is_empty());
        assert_eq!(parse_private_port("80").unwrap(), (80, Tcp));
        assert_eq!(parse_private_port("53/udp").unwrap(), (53, Udp));
        for bad in ["", "x", "80-81", "70000", "80/sctp"] {
            assert!(parse_private_port(bad).is_err(), "{bad}");
        }
    }
}
