//! `berth rm`: remove containers.

use super::GlobalArgs;
use crate::printer::Printer;
use berth_containers::control;
use clap::Args;
use std::io::Write as _;
use std::process::ExitCode;

/// Arguments of `berth rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Kill and remove a running container.
    #[arg(short, long)]
    pub force: bool,
    /// Remove the container's anonymous volumes (berth makes none: its
    /// volumes are bind mounts, which stay).
    #[arg(short, long)]
    pub volumes: bool,
    /// The containers: ids, unique id prefixes or names.
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

/// Removes each container, printing what it was given as Docker does; exits
/// non-zero if any failed.
pub fn run(args: &RmArgs, global: &GlobalArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let mut code = ExitCode::SUCCESS;
    let mut out = printer.stdout();
    for wanted in &args.containers {
        match control::remove(&store, wanted, args.force) {
            Ok(_) => writeln!(out, "{wanted}")?,
            Err(e) => {
                let e = anyhow::Error::new(e).context(format!("removing {wanted}"));
                printer.error(e.as_ref());
                code = ExitCode::FAILURE;
            }
        }
    }
    Ok(code)
}
