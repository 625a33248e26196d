//! `berth rename`: give a container another name.

use super::GlobalArgs;
use super::container::FAILED;
use crate::printer::Printer;
use berth_containers::control;
use clap::Args;
use std::process::ExitCode;

/// Arguments of `berth rename`.
#[derive(Debug, Args)]
pub struct RenameArgs {
    /// The container: an id, a unique id prefix or a name.
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// Its new name.
    #[arg(value_name = "NEW_NAME")]
    pub new_name: String,
}

/// Renames the container; prints nothing, as docker.
pub fn run(args: &RenameArgs, global: &GlobalArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    match control::rename(&store, &args.container, &args.new_name) {
        Ok(_) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            printer.error(&e);
            Ok(ExitCode::from(FAILED))
        }
    }
}
