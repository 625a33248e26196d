//! `berth wait`: wait for containers to stop and print their exit codes.

use super::GlobalArgs;
use super::container::FAILED;
use crate::printer::Printer;
use berth_containers::control;
use clap::Args;
use std::io::Write as _;
use std::process::ExitCode;

/// Arguments of `berth wait`.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// The containers: ids, unique id prefixes or names.
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

/// Waits for each container in turn and prints its exit code.
pub fn run(args: &WaitArgs, global: &GlobalArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let mut code = ExitCode::SUCCESS;
    for wanted in &args.containers {
        match control::wait(&store, wanted) {
            Ok(exit) => writeln!(printer.stdout(), "{exit}")?,
            Err(e) => {
                printer.error(&e);
                code = ExitCode::from(FAILED);
            }
        }
    }
    Ok(code)
}
