//! The networks berth knows: its own `.conflist` files under
//! `<root>/networks/`, which a user can read and extend, and the read-only
//! ones of `/etc/cni/net.d`. The default `bridge` network is written on
//! first use, on a subnet that collides with no host route and no other
//! network, as docker picks one.

use super::NetworkError;
use berth_store::lock::{FileLock, LockMode};
use berth_store::{Digest, Store, atomic};
use serde_json::{Value, json};
use std::fs;
use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

/// Where the host's own CNI networks are (read-only to berth).
pub const SYSTEM_DIR: &str = "/etc/cni/net.d";

/// The default network's name, and docker's other predefined ones.
pub const DEFAULT_NETWORK: &str = "bridge";

/// The names no user network may take.
pub const RESERVED: &[&str] = &["bridge", "host", "none"];

/// The default network's bridge device.
pub const DEFAULT_BRIDGE: &str = "berth0";

/// An IPv4 subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    /// The network address (host bits zero).
    pub addr: Ipv4Addr,
    /// The prefix length.
    pub prefix: u8,
}

impl Subnet {
    /// Parses `A.B.C.D/N`; host bits must be zero, as docker asks.
    pub fn parse(text: &str) -> Result<Subnet, String> {
        let (addr, prefix) = text
            .split_once('/')
            .ok_or_else(|| format!("'{text}' is not a CIDR subnet (A.B.C.D/N)"))?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| format!("'{text}' is not an IPv4 subnet"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= 30)
            .ok_or_else(|| format!("'{text}' needs a prefix length from 0 to 30"))?;
        let subnet = Subnet { addr, prefix };
        if subnet.network() != addr {
            return Err(format!(
                "'{text}' has host bits set; the subnet is {}",
                Subnet {
                    addr: subnet.network(),
                    prefix
                }
            ));
        }
        Ok(subnet)
    }

    fn mask(self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - self.prefix)
        }
    }

    fn network(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    /// Whether `ip` is in the subnet.
    pub fn contains(self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.addr) & self.mask()
    }

    /// Whether the two subnets share an address.
    pub fn overlaps(self, other: Subnet) -> bool {
        let mask = self.mask() & other.mask();
        u32::from(self.addr) & mask == u32::from(other.addr) & mask
    }

    /// The first host address, docker's default gateway.
    pub fn first_host(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network()) + 1)
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The subnets of the host's IPv4 routes (`/proc/net/route`), the default
/// route left out, as docker checks them.
pub fn host_routes() -> Vec<Subnet> {
    fs::read_to_string("/proc/net/route")
        .map(|text| parse_routes(&text))
        .unwrap_or_default()
}

/// Parses the table of `/proc/net/route`: addresses are printed as the
/// host's integer of their network-order bytes.
pub fn parse_routes(text: &str) -> Vec<Subnet> {
    let addr = |s: &str| {
        u32::from_str_radix(s, 16)
            .ok()
            .map(|v| Ipv4Addr::from(v.to_ne_bytes()))
    };
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let dest = addr(fields.get(1)?)?;
            let prefix = u32::from(addr(fields.get(7)?)?).leading_ones() as u8;
            (prefix > 0).then_some(Subnet { addr: dest, prefix })
        })
        .collect()
}

/// Docker's default address pools, in order: 172.17.0.0/16 to
/// 172.31.0.0/16, then 192.168.0.0/20 to 192.168.240.0/20.
fn candidate_subnets() -> impl Iterator<Item = Subnet> {
    (17..=31)
        .map(|b| Subnet {
            addr: Ipv4Addr::new(172, b, 0, 0),
            prefix: 16,
        })
        .chain((0..16).map(|c| Subnet {
            addr: Ipv4Addr::new(192, 168, c * 16, 0),
            prefix: 20,
        }))
}

/// The first pool subnet that overlaps none of `taken`.
pub fn choose_subnet(taken: &[Subnet]) -> Option<Subnet> {
    candidate_subnets().find(|s| !taken.iter().any(|t| t.overlaps(*s)))
}

/// A network berth can attach containers to.
#[derive(Debug, Clone)]
pub struct Network {
    /// Its name.
    pub name: String,
    /// docker's 64-hex network id (the SHA-256 of the name, as podman's CNI
    /// networks have it).
    pub id: String,
    /// The `.conflist` file.
    pub path: PathBuf,
    /// Whether it is one of `/etc/cni/net.d`'s.
    pub read_only: bool,
    /// The configuration.
    pub conflist: Value,
}

impl Network {
    fn from_conflist(path: &Path, conflist: Value, read_only: bool) -> Option<Network> {
        let name = conflist["name"].as_str()?.to_owned();
        Some(Network {
            id: Digest::of(name.as_bytes()).hex().to_owned(),
            name,
            path: path.to_owned(),
            read_only,
            conflist,
        })
    }

    /// The first plugin's type: docker's DRIVER column.
    pub fn driver(&self) -> &str {
        self.conflist["plugins"][0]["type"]
            .as_str()
            .unwrap_or_default()
    }

    /// The IPAM ranges of its plugins (host-local's `ranges` and `subnet`).
    pub fn subnets(&self) -> Vec<(Subnet, Option<Ipv4Addr>)> {
        let mut found = Vec::new();
        let plugins = self.conflist["plugins"].as_array().cloned();
        for plugin in plugins.unwrap_or_default() {
            let ipam = &plugin["ipam"];
            let mut ranges: Vec<&Value> = ipam["ranges"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_array)
                .flatten()
                .collect();
            ranges.push(ipam);
            for range in ranges {
                if let Some(Ok(subnet)) = range["subnet"].as_str().map(Subnet::parse) {
                    let gateway = range["gateway"].as_str().and_then(|g| g.parse().ok());
                    found.push((subnet, gateway));
                }
            }
        }
        found
    }

    /// The bridge device of its bridge plugin.
    pub fn bridge(&self) -> Option<&str> {
        self.conflist["plugins"]
            .as_array()?
            .iter()
            .find(|p| p["type"] == "bridge")?["bridge"]
            .as_str()
    }
}

/// The `.conflist` of a bridge network, the chain docker's bridge driver
/// amounts to: bridge (gateway, masquerade, host-local addresses), portmap
/// with localhost SNAT, firewall and tuning.
pub fn bridge_conflist(name: &str, bridge: &str, subnet: Subnet, gateway: Ipv4Addr) -> Value {
    json!({
        "cniVersion": "1.0.0",
        "name": name,
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": true,
                "ipMasq": true,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "ranges": [[{"subnet": subnet.to_string(), "gateway": gateway.to_string()}]]
                }
            },
            {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true},
            {"type": "firewall"},
            {"type": "tuning"}
        ]
    })
}

/// The directory of berth's own networks.
pub fn networks_dir(store: &Store) -> PathBuf {
    store.root().join("networks")
}

fn lock(store: &Store) -> Result<FileLock, NetworkError> {
    let path = store.lock_path("networks");
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(NetworkError::io("creating", parent))?;
    }
    FileLock::acquire(&path, LockMode::Exclusive).map_err(NetworkError::io("locking", &path))
}

fn read_dir(dir: &Path, read_only: bool) -> Result<Vec<Network>, NetworkError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(NetworkError::io("listing", dir)(e)),
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "conflist"))
        .collect();
    paths.sort();
    let mut networks = Vec::new();
    for path in paths {
        // A configuration larger than this is no network definition.
        let text = match fs::metadata(&path) {
            Ok(m) if m.len() <= 1024 * 1024 => fs::read(&path),
            Ok(_) => continue,
            Err(e) => Err(e),
        };
        let parsed = text
            .ok()
            .and_then(|t| serde_json::from_slice::<Value>(&t).ok())
            .and_then(|v| Network::from_conflist(&path, v, read_only));
        match parsed {
            Some(network) => networks.push(network),
            None => {
                tracing::warn!(path = %path.display(), "skipping an unreadable network configuration")
            }
        }
    }
    Ok(networks)
}

/// Every network: berth's own first, then `/etc/cni/net.d`'s whose names
/// berth's do not take.
pub fn list(store: &Store) -> Result<Vec<Network>, NetworkError> {
    list_with(store, Path::new(SYSTEM_DIR))
}

fn list_with(store: &Store, system: &Path) -> Result<Vec<Network>, NetworkError> {
    let mut networks = read_dir(&networks_dir(store), false)?;
    for network in read_dir(system, true)? {
        if !networks.iter().any(|n| n.name == network.name) {
            networks.push(network);
        }
    }
    Ok(networks)
}

/// The network `name`; `bridge` is created on first use.
pub fn find(store: &Store, name: &str) -> Result<Network, NetworkError> {
    if name == DEFAULT_NETWORK {
        return ensure_default(store);
    }
    list(store)?
        .into_iter()
        .find(|n| n.name == name || (name.len() >= 12 && n.id.starts_with(name)))
        .ok_or_else(|| NetworkError::NotFound(name.to_owned()))
}

/// The default `bridge` network, written the first time it is needed.
pub fn ensure_default(store: &Store) -> Result<Network, NetworkError> {
    let path = networks_dir(store).join(format!("{DEFAULT_NETWORK}.conflist"));
    if let Some(network) = read_dir(&networks_dir(store), false)?
        .into_iter()
        .find(|n| n.name == DEFAULT_NETWORK)
    {
        return Ok(network);
    }
    let _lock = lock(store)?;
    let taken = taken_subnets(store, None)?;
    let subnet = choose_subnet(&taken).ok_or(NetworkError::NoFreeSubnet)?;
    let conflist = bridge_conflist(DEFAULT_NETWORK, DEFAULT_BRIDGE, subnet, subnet.first_host());
    write_conflist(store, &path, &conflist)?;
    Network::from_conflist(&path, conflist, false)
        .ok_or_else(|| NetworkError::NotFound(DEFAULT_NETWORK.to_owned()))
}

/// The subnets of the host's routes and every network but `except`.
fn taken_subnets(store: &Store, except: Option<&str>) -> Result<Vec<Subnet>, NetworkError> {
    let mut taken = host_routes();
    for network in list(store)? {
        if Some(network.name.as_str()) != except {
            taken.extend(network.subnets().into_iter().map(|(s, _)| s));
        }
    }
    Ok(taken)
}

fn write_conflist(store: &Store, path: &Path, conflist: &Value) -> Result<(), NetworkError> {
    let dir = networks_dir(store);
    fs::create_dir_all(&dir).map_err(NetworkError::io("creating", &dir))?;
    let mut text = serde_json::to_vec_pretty(conflist)
        .map_err(|e| NetworkError::io("rendering", path)(io::Error::other(e)))?;
    text.push(b'\n');
    atomic::write(path, &text).map_err(NetworkError::io("writing", path))
}

/// Checks a network name as docker does.
fn validate_name(name: &str) -> Result<(), NetworkError> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        && name.len() <= 128;
    if ok {
        Ok(())
    } else {
        Err(NetworkError::InvalidName(name.to_owned()))
    }
}

/// What `berth network create` asks for.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// `--subnet` (default: the first free pool subnet).
    pub subnet: Option<String>,
    /// `--gateway` (default: the subnet's first address).
    pub gateway: Option<String>,
}

/// Creates the user network `name`: a bridge `br-<id>` on its subnet.
pub fn create(store: &Store, name: &str, options: &CreateOptions) -> Result<Network, NetworkError> {
    validate_name(name)?;
    if RESERVED.contains(&name) {
        return Err(NetworkError::Reserved(name.to_owned()));
    }
    let _lock = lock(store)?;
    if list(store)?.iter().any(|n| n.name == name) {
        return Err(NetworkError::Exists(name.to_owned()));
    }
    let subnet = match &options.subnet {
        Some(text) => {
            let subnet = Subnet::parse(text).map_err(NetworkError::InvalidSubnet)?;
            if let Some((other, theirs)) = overlapping(store, subnet)? {
                return Err(NetworkError::Overlap {
                    subnet,
                    other,
                    theirs,
                });
            }
            subnet
        }
        None => choose_subnet(&taken_subnets(store, None)?).ok_or(NetworkError::NoFreeSubnet)?,
    };
    let gateway = match &options.gateway {
        Some(text) => {
            let gateway: Ipv4Addr = text
                .parse()
                .map_err(|_| NetworkError::InvalidGateway(text.clone(), subnet))?;
            if !subnet.contains(gateway) {
                return Err(NetworkError::InvalidGateway(text.clone(), subnet));
            }
            gateway
        }
        None => subnet.first_host(),
    };
    let id = Digest::of(name.as_bytes()).hex().to_owned();
    let bridge = format!("br-{}", &id[..12]);
    let path = networks_dir(store).join(format!("{name}.conflist"));
    let conflist = bridge_conflist(name, &bridge, subnet, gateway);
    write_conflist(store, &path, &conflist)?;
    Network::from_conflist(&path, conflist, false)
        .ok_or_else(|| NetworkError::NotFound(name.into()))
}

/// The first network or host route `subnet` overlaps: its name ("the
/// host's routes" for a route) and its subnet.
fn overlapping(store: &Store, subnet: Subnet) -> Result<Option<(String, Subnet)>, NetworkError> {
    for network in list(store)? {
        if let Some((theirs, _)) = network
            .subnets()
            .into_iter()
            .find(|(s, _)| s.overlaps(subnet))
        {
            return Ok(Some((format!("network {}", network.name), theirs)));
        }
    }
    Ok(host_routes()
        .into_iter()
        .find(|r| r.overlaps(subnet))
        .map(|r| ("a route of the host".to_owned(), r)))
}

/// Removes the user network `name`, which `users` (the names of the
/// containers attached to it) must be empty for. Its bridge device and
/// its leases directory go too.
pub fn remove(store: &Store, name: &str, users: &[String]) -> Result<Network, NetworkError> {
    if RESERVED.contains(&name) {
        return Err(NetworkError::Predefined(name.to_owned()));
    }
    let _lock = lock(store)?;
    let network = find(store, name)?;
    if network.read_only {
        return Err(NetworkError::ReadOnly {
            name: network.name,
            path: network.path,
        });
    }
    if !users.is_empty() {
        return Err(NetworkError::InUse {
            name: network.name,
            id: network.id,
            containers: users.join(", "),
        });
    }
    fs::remove_file(&network.path).map_err(NetworkError::io("removing", &network.path))?;
    if let Some(bridge) = network.bridge() {
        super::netns::delete_link(bridge);
    }
    let leases = Path::new("/var/lib/cni/networks").join(&network.name);
    let _ = fs::remove_dir_all(leases);
    Ok(network)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(text: &str) -> Subnet {
        Subnet::parse(text).unwrap()
    }

    #[test]
    fn subnets_parse_and_overlap() {
        assert_eq!(net("10.89.3.0/24").to_string(), "10.89.3.0/24");
        for bad in [
            "10.89.3.1/24",
            "10.89.3.0",
            "10.89.3.0/33",
            "x/8",
            "10.0.0.0/31",
        ] {
            assert!(Subnet::parse(bad).is_err(), "{bad}");
        }
        assert!(net("10.89.0.0/16").overlaps(net("10.89.3.0/24")));
        assert!(net("10.89.3.0/24").overlaps(net("10.89.0.0/16")));
        assert!(!net("10.89.3.0/24").overlaps(net("10.89.4.0/24")));
        assert!(net("10.89.3.0/24").contains("10.89.3.200".parse().unwrap()));
        assert_eq!(net("10.89.3.0/24").first_host().to_string(), "10.89.3.1");
    }

    #[test]
    fn the_subnet_chosen_avoids_routes_and_networks() {
        // This host's /proc/net/route: a default route and eth0's subnet.
        let table = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
            eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
            eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
            docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";
        let routes = parse_routes(table);
        assert_eq!(routes, vec![net("192.0.2.0/24"), net("172.17.0.0/16")]);
        for (taken, want) in [
            (vec![], "172.17.0.0/16"),
            (routes.clone(), "172.18.0.0/16"),
            (vec![net("172.16.0.0/12")], "192.168.0.0/20"),
            (
                vec![net("172.16.0.0/12"), net("192.168.0.0/24")],
                "192.168.16.0/20",
            ),
        ] {
            assert_eq!(
                choose_subnet(&taken).unwrap().to_string(),
                want,
                "{taken:?}"
            );
        }
        assert_eq!(
            choose_subnet(&[net("172.16.0.0/12"), net("192.168.0.0/16")]),
            None
        );
    }

    #[test]
    fn the_bridge_conflist_chains_dockers_bridge_driver() {
        let c = bridge_conflist(
            "n",
            "br-x",
            net("10.89.3.0/24"),
            "10.89.3.1".parse().unwrap(),
        );
        let types: Vec<&str> = c["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, ["bridge", "portmap", "firewall", "tuning"]);
        assert_eq!(c["plugins"][0]["ipMasq"], true);
        assert_eq!(c["plugins"][1]["snat"], true);
        let network = Network::from_conflist(Path::new("/x"), c, false).unwrap();
        assert_eq!(
            network.subnets(),
            vec![(net("10.89.3.0/24"), Some("10.89.3.1".parse().unwrap()))]
        );
        assert_eq!(network.bridge(), Some("br-x"));
        assert_eq!(network.driver(), "bridge");
    }

    #[test]
    fn create_refuses_overlaps_reserved_names_and_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let options = |subnet: &str| CreateOptions {
            subnet: Some(subnet.into()),
            gateway: None,
        };
        let first = create(&store, "unit-a", &options("10.89.200.0/24")).unwrap();
        assert!(first.path.starts_with(networks_dir(&store)));
        let e = create(&store, "unit-b", &options("10.89.0.0/16")).unwrap_err();
        assert!(matches!(e, NetworkError::Overlap { .. }), "{e}");
        assert!(e.to_string().contains("unit-a"), "{e}");
        for name in RESERVED {
            assert!(matches!(
                create(&store, name, &CreateOptions::default()),
                Err(NetworkError::Reserved(_))
            ));
        }
        assert!(matches!(
            create(&store, "unit-a", &options("10.89.201.0/24")),
            Err(NetworkError::Exists(_))
        ));
        assert!(matches!(
            create(&store, "../evil", &CreateOptions::default()),
            Err(NetworkError::InvalidName(_))
        ));
        let gw = CreateOptions {
            subnet: Some("10.89.202.0/24".into()),
            gateway: Some("10.89.9.1".into()),
        };
        assert!(matches!(
            create(&store, "unit-c", &gw),
            Err(NetworkError::InvalidGateway(..))
        ));
        assert!(matches!(
            remove(&store, "unit-a", &["web".into()]),
            Err(NetworkError::InUse { .. })
        ));
        remove(&store, "unit-a", &[]).unwrap();
        assert!(matches!(
            find(&store, "unit-a"),
            Err(NetworkError::NotFound(_))
        ));
    }
}
