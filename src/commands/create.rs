//! `berth create`: create a container from an image without starting it.
//! It takes every option of `run`: they are `run`'s own flags.

use super::GlobalArgs;
use super::run::{self, RunArgs};
use crate::printer::Printer;
use clap::Args;
use std::io::Write as _;
use std::process::ExitCode;

/// Arguments of `berth create`: those of `berth run`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub run: RunArgs,
}

/// Creates the container and prints its id, as docker does.
pub fn run(args: &CreateArgs, global: &GlobalArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    match run::create_from(&store, &args.run, global, printer) {
        Ok(record) => {
            writeln!(printer.stdout(), "{}", record.id)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(code) => Ok(code),
    }
}
