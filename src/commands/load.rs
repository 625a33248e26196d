//! `berth load`: read images from an OCI layout or docker-archive tar.

use super::GlobalArgs;
use clap::Args;
use std::process::ExitCode;

/// Arguments of `berth load`.
#[derive(Debug, Args)]
pub struct LoadArgs {}

/// Runs `berth load`.
pub fn run(_args: &LoadArgs, _global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("berth load is being written")
}
