//! `features`: print what the runtime supports.

use crate::GlobalOptions;

/// `features` takes no flags.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `features`.
pub fn run(_global: &GlobalOptions, _args: Args) -> anyhow::Result<i32> {
    super::print_json(&berth_runtime::features::features())?;
    Ok(0)
}
