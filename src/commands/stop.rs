//! `berth stop`: stop running containers.

use super::GlobalArgs;
use crate::printer::Printer;
use berth_containers::control;
use clap::Args;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

/// Arguments of `berth stop`.
#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait after the stop signal before killing.
    #[arg(short = 't', long = "time", default_value_t = 10, value_name = "SECS")]
    pub time: u64,
    /// The containers: ids, unique id prefixes or names.
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

/// Stops each container, printing what it was given as Docker does; exits
/// non-zero if any failed.
pub fn run(args: &StopArgs, global: &GlobalArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let mut code = ExitCode::SUCCESS;
    let mut out = printer.stdout();
    for wanted in &args.containers {
        match control::stop(&store, wanted, Duration::from_secs(args.time)) {
            Ok(_) => writeln!(out, "{wanted}")?,
            Err(e) => {
                let e = anyhow::Error::new(e).context(format!("stopping {wanted}"));
                printer.error(e.as_ref());
                code = ExitCode::FAILURE;
            }
        }
    }
    Ok(code)
}
