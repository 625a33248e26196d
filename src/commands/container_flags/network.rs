//! Networking flags of `berth run` and `berth create`.

use berth_containers::executor::Network;
use clap::Args;

/// How a container is connected.
#[derive(Debug, Args)]
pub struct NetworkFlags {
    /// The network: host (the default: berth has no bridge networking) or none
    /// (only loopback).
    #[arg(long, default_value = "host", value_parser = parse_network)]
    pub network: Network,
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
