//! `berth pause`: freeze every process of running containers.

use super::GlobalArgs;
use super::container::each;
use crate::printer::Printer;
use berth_containers::control;
use clap::Args;
use std::process::ExitCode;

/// Arguments of `berth pause`.
#[derive(Debug, Args)]
pub struct PauseArgs {
    /// The containers: ids, unique id prefixes or names.
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

/// Pauses each container, printing its name as given.
pub fn run(args: &PauseArgs, global: &GlobalArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    each(&args.containers, printer, |wanted| {
        control::pause(&store, wanted).map(drop)
    })
}
