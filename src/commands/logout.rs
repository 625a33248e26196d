//! `berth logout`: remove a stored registry credential.

use super::GlobalArgs;
use berth_builder::registry;
use clap::Args;
use std::process::ExitCode;

/// Arguments of `berth logout`.
#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// The registry (`host[:port]`; Docker Hub when left out).
    #[arg(value_name = "REGISTRY", default_value = "docker.io")]
    pub registry: String,
}

/// Runs `berth logout`.
pub fn run(args: &LogoutArgs, _global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    match registry::logout(&args.registry).map_err(|e| anyhow::anyhow!("{e}"))? {
        Some(stored) => println!(
            "Removed login credentials for {} from {stored}",
            args.registry
        ),
        // As docker does: not being logged in is no failure.
        None => println!("Not logged in to {}", args.registry),
    }
    Ok(ExitCode::SUCCESS)
}
