//! `berth logout`: remove a stored registry credential.

use super::GlobalArgs;
use crate::printer::Printer;
use berth_builder::registry;
use clap::Args;
use std::io::Write as _;
use std::process::ExitCode;

/// Arguments of `berth logout`.
#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// The registry (`host[:port]`; Docker Hub when left out).
    #[arg(value_name = "REGISTRY", default_value = "docker.io")]
    pub registry: String,
}

/// Runs `berth logout`.
pub fn run(args: &LogoutArgs, _global: &GlobalArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let mut out = printer.stdout();
    match registry::logout(&args.registry)? {
        Some(stored) => writeln!(
            out,
            "Removed login credentials for {} from {stored}",
            args.registry
        )?,
        // As docker does: not being logged in is no failure.
        None => writeln!(out, "Not logged in to {}", args.registry)?,
    }
    Ok(ExitCode::SUCCESS)
}
