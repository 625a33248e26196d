//! `berth unpause`: thaw paused containers.

use super::GlobalArgs;
use super::container::each;
use crate::printer::Printer;
use berth_containers::control;
use clap::Args;
use std::process::ExitCode;

/// Arguments of `berth unpause`.
#[derive(Debug, Args)]
pub struct UnpauseArgs {
    /// The containers: ids, unique id prefixes or names.
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

/// Unpauses each container, printing its name as given.
pub fn run(args: &UnpauseArgs, global: &GlobalArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    each(&args.containers, printer, |wanted| {
        control::unpause(&store, wanted).map(drop)
    })
}
