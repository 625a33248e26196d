//! `berth stop`: stop running containers.

use super::GlobalArgs;
use berth_containers::control;
use clap::Args;
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
pub fn run(args: &StopArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let mut code = ExitCode::SUCCESS;
    for wanted in &args.containers {
        match control::stop(&store, wanted, Duration::from_secs(args.time)) {
            Ok(_) => println!("{wanted}"),
            Err(e) => {
                eprintln!("berth: stopping {wanted}: {e}");
                code = ExitCode::FAILURE;
            }
        }
    }
    Ok(code)
}
