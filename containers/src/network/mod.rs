//! Container networking through CNI: the networks berth knows, attaching a
//! container's network namespace to one, and published ports.

pub mod ports;
