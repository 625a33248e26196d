//! Container networking through CNI: the networks berth knows, attaching a
//! container's network namespace to one, and published ports.
//!
//! - [`cni`]: the client of the CNI exec protocol;
//! - [`networks`]: the `.conflist` networks (berth's and `/etc/cni/net.d`'s),
//!   the default `bridge` and its subnet choice;
//! - [`netns`]: network namespaces bound under `/run/berth/netns`;
//! - [`attach`]: attaching and detaching a container, hosts and resolv.conf;
//! - [`ports`]: published ports.

pub mod attach;
pub mod cni;
pub mod netns;
pub mod networks;
pub mod ports;

use networks::Subnet;
use std::io;
use std::path::{Path, PathBuf};

/// How a container is connected (`--network`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum NetworkMode {
    /// The default bridge network.
    #[default]
    Bridge,
    /// The host's network.
    Host,
    /// Its own namespace with only loopback.
    None,
    /// A user network, by name.
    Named(String),
}

impl NetworkMode {
    /// Parses docker's `--network` values.
    pub fn parse(text: &str) -> Result<NetworkMode, String> {
        Ok(match text {
            "" => return Err("the network name must not be empty".into()),
            "bridge" | "default" => NetworkMode::Bridge,
            "host" => NetworkMode::Host,
            "none" => NetworkMode::None,
            name => NetworkMode::Named(name.to_owned()),
        })
    }

    /// The CNI network it joins, if any.
    pub fn cni_network(&self) -> Option<&str> {
        match self {
            NetworkMode::Bridge => Some(networks::DEFAULT_NETWORK),
            NetworkMode::Named(name) => Some(name),
            NetworkMode::Host | NetworkMode::None => None,
        }
    }
}

/// Errors of networks and attachments.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// Running a CNI plugin failed.
    #[error(transparent)]
    Cni(#[from] cni::CniError),
    /// A filesystem or system operation failed.
    #[error("{action} {}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// No network has this name.
    #[error("network {0} not found\nhint: list the networks with berth network ls")]
    NotFound(String),
    /// The name is taken.
    #[error("network with name {0} already exists")]
    Exists(String),
    /// The name is one of docker's predefined networks.
    #[error("network name {0} is reserved: bridge, host and none are predefined networks")]
    Reserved(String),
    /// A predefined network cannot be removed.
    #[error("{0} is a pre-defined network and cannot be removed")]
    Predefined(String),
    /// The name has characters docker does not allow.
    #[error("invalid network name '{0}': only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    InvalidName(String),
    /// `--subnet` does not parse.
    #[error("invalid subnet: {0}")]
    InvalidSubnet(String),
    /// `--gateway` does not parse or is outside the subnet.
    #[error("invalid gateway '{0}': it must be an IPv4 address in the subnet {1}")]
    InvalidGateway(String, Subnet),
    /// `--subnet` overlaps another network or a host route.
    #[error(
        "the subnet {subnet} overlaps the subnet {theirs} of {other}\nhint: choose a subnet that no network and no route of the host uses"
    )]
    Overlap {
        /// The subnet asked for.
        subnet: Subnet,
        /// What it overlaps.
        other: String,
        /// That one's subnet.
        theirs: Subnet,
    },
    /// Every subnet of docker's pools is taken.
    #[error(
        "no free subnet is left in 172.17.0.0/16-172.31.0.0/16 or 192.168.0.0/16\nhint: give one with --subnet"
    )]
    NoFreeSubnet,
    /// A network with containers on it cannot be removed.
    #[error(
        "error while removing network: network {name} id {id} has active endpoints (containers: {containers})\nhint: remove those containers first"
    )]
    InUse {
        /// The network.
        name: String,
        /// Its id.
        id: String,
        /// The containers on it.
        containers: String,
    },
    /// A network of `/etc/cni/net.d` is not berth's to remove.
    #[error("network {name} is defined in {} and berth does not remove it", path.display())]
    ReadOnly {
        /// The network.
        name: String,
        /// Its file.
        path: PathBuf,
    },
}

impl NetworkError {
    /// Wraps an io error with the action and path.
    pub(crate) fn io(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> NetworkError {
        let path = path.to_path_buf();
        move |source| NetworkError::Io {
            action,
            path,
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_modes_parse_as_docker_names_them() {
        for (text, want) in [
            ("bridge", NetworkMode::Bridge),
            ("host", NetworkMode::Host),
            ("none", NetworkMode::None),
            ("mynet", NetworkMode::Named("mynet".into())),
        ] {
            assert_eq!(NetworkMode::parse(text).unwrap(), want, "{text}");
        }
        assert!(NetworkMode::parse("").is_err());
        assert_eq!(NetworkMode::Bridge.cni_network(), Some("bridge"));
        assert_eq!(NetworkMode::Host.cni_network(), None);
    }
}
