//! Networking flags of `berth run` and `berth create`.

use berth_containers::network::NetworkMode;
use berth_containers::network::ports::{self, PortError, PortRequest};
use clap::Args;

/// How a container is connected.
#[derive(Debug, Args)]
pub struct NetworkFlags {
    /// The network: bridge (the default: berth's bridge with masquerading),
    /// host (the host's network), none (only loopback) or a network's name.
    #[arg(long, default_value = "bridge", value_parser = NetworkMode::parse)]
    pub network: NetworkMode,
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
