//! `berth kill`: send a signal to running containers.

use super::GlobalArgs;
use super::container::each;
use crate::printer::Printer;
use berth_containers::control;
use clap::Args;
use std::process::ExitCode;

/// Arguments of `berth kill`.
#[derive(Debug, Args)]
pub struct KillArgs {
    /// The signal: a name (KILL, SIGKILL) or a number.
    #[arg(short, long, default_value = "KILL", value_name = "SIGNAL")]
    pub signal: String,
    /// The containers: ids, unique id prefixes or names.
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

/// Signals each container, printing its name as given.
pub fn run(args: &KillArgs, global: &GlobalArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    each(&args.containers, printer, |wanted| {
        control::kill(&store, wanted, &args.signal).map(drop)
    })
}
