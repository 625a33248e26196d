//! Shared support for berth's end-to-end tests: where the built binaries and the
//! fixtures are, a throwaway registry with a token server and a fault proxy in
//! front of it, loopback HTTP servers, fresh OCI bundles, and strace traces
//! of what a command does to the store's files.
//!
//! Every helper fails loudly when a prerequisite (root, a binary, a fixture) is
//! missing: a test that cannot run its real components must fail, never pass
//! by skipping.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

pub mod bins;
pub mod bundle;
pub mod cgroups;
pub mod fault_proxy;
pub mod hostile;
pub mod http;
pub mod podman;
pub mod registry;
pub mod require;
pub mod strace;
pub mod token_server;
