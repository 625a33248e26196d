//! berth-runtime: a runc-compatible OCI runtime built on youki's `libcontainer`.
//!
//! The library holds what the `berth-runtime` binary does for each runc
//! subcommand, so that an orchestrator (containerd, podman, CRI-O) can use the
//! binary wherever it uses runc. The runtime never touches the network and knows
//! nothing of images: its whole input is an OCI bundle (a `config.json` and a
//! root filesystem) and the command line. It never prints; the binary owns
//! output and exit codes.
//!
//! [`Runtime`] is the entry point: one value per state root (`--root`), with a
//! method per lifecycle operation. [`features`] and [`spec`] need no state.

pub mod cgroup;
pub mod error;
pub mod exe;
pub mod exec;
mod executor;
pub mod features;
mod foreground;
mod idlock;
pub mod lifecycle;
pub mod migration;
mod pidfd;
mod precheck;
mod remount;
pub mod signal;
pub mod spec;
pub mod state;
pub mod stats;
mod teardown;
mod terminal;

pub use error::{Error, Result};
pub use exec::ExecOptions;
pub use lifecycle::{CreateOptions, Runtime};
pub use state::State;

/// The OCI runtime-spec version this runtime implements, as `--version` and
/// `features` report it.
pub const OCI_SPEC_VERSION: &str = "1.2.0";

/// The oldest OCI runtime-spec version whose bundles this runtime accepts.
pub const OCI_SPEC_VERSION_MIN: &str = "1.0.0";

/// The state root used when `--root` is not given.
pub const DEFAULT_ROOT: &str = "/run/berth-runtime";
