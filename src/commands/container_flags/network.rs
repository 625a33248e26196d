//! Networking flags of `berth run` and `berth create`.

use berth_containers::network::NetworkMode;
use clap::Args;

/// How a container is connected.
#[derive(Debug, Args)]
pub struct NetworkFlags {
    /// The network: bridge (the default: berth's bridge with masquerading),
    /// host (the host's network), none (only loopback) or a network's name.
    #[arg(long, default_value = "bridge", value_parser = NetworkMode::parse)]
    pub network: NetworkMode,
}
