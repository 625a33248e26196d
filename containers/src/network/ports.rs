//! Published ports: what `-p` and `-P` ask for, and what a container got.

use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// A transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP, the default.
    #[default]
    Tcp,
    /// UDP.
    Udp,
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
