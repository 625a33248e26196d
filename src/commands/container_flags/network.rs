//! Networking flags of `berth run` and `berth create`.

use berth_containers::executor::Network;
use berth_containers::network::ports::{self, PortError, PortRequest};
use clap::Args;

/// How a container is connected.
#[derive(Debug, Args)]
pub struct NetworkFlags {
    /// The network: host (the default: berth has no bridge networking) or none
    /// (only loopback).
    #[arg(long, default_value = "host", value_parser = parse_network)]
    pub network: Network,
    /// Publish a container's port on the host (repeatable):
    /// [HOST_IP:][HOST_PORT[-END]:]CONTAINER_PORT[-END][/tcp|udp]; without a
    /// host port, on any free one.
    #[arg(
        short = 'p',
        long = "publish",
        value_name = "[HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]"
    )]
    pub publish: Vec<String>,
    /// Publish every port the image EXPOSEs on a free host port.
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
}

impl NetworkFlags {
    /// The `-p` values as port requests, in order.
    pub fn publish_requests(&self) -> Result<Vec<PortRequest>, PortError> {
        let mut requests = Vec::new();
        for spec in &self.publish {
            requests.extend(ports::parse_publish(spec)?);
        }
        Ok(requests)
    }
}

fn parse_network(text: &str) -> Result<Network, String> {
    match text {
        "host" => Ok(Network::Host),
        "none" => Ok(Network::None),
        other => Err(format!(
            "unknown network '{other}': berth runs containers on the host network (host) \
             or without one (none)"
        )),
    }
}
