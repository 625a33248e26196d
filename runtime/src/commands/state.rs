//! `state`: print a container's state as runc's JSON.

use crate::GlobalOptions;

/// Flags of `state`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The container id.
    pub id: String,
}

/// Runs `state`.
pub fn run(global: &GlobalOptions, args: Args) -> anyhow::Result<i32> {
    let state = super::runtime(global).state(&args.id)?;
    super::print_json(&state)?;
    Ok(0)
}
