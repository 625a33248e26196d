//! `pause`: freeze every process of a container.

use crate::GlobalOptions;

/// Flags of `pause`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The container id.
    pub id: String,
}

/// Runs `pause`.
pub fn run(global: &GlobalOptions, args: Args) -> anyhow::Result<i32> {
    super::runtime(global).pause(&args.id)?;
    Ok(0)
}
