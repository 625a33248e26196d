//! Resource-limit and restart-policy flags of `berth run` and `berth create`.

use clap::Args;

/// What a container may use, and what happens when it exits.
#[derive(Debug, Args)]
pub struct ResourceFlags {}
