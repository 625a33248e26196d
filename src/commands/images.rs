//! `berth images`: list the images in the local store.

use super::GlobalArgs;
use clap::Args;
use std::process::ExitCode;

/// Arguments of `berth images`.
#[derive(Debug, Args)]
pub struct ImagesArgs {}

/// Runs `berth images`.
pub fn run(_args: &ImagesArgs, _global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("berth images is being written")
}
