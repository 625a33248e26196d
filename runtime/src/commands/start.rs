//! `start`: run the process of a created container.

use crate::GlobalOptions;

/// Flags of `start`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The container id.
    pub id: String,
}

/// Runs `start`.
pub fn run(global: &GlobalOptions, args: Args) -> anyhow::Result<i32> {
    super::runtime(global).start(&args.id)?;
    Ok(0)
}
