//! `berth rm`: remove containers.

use super::GlobalArgs;
use berth_containers::control;
use clap::Args;
use std::process::ExitCode;

/// Arguments of `berth rm`.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Kill and remove a running container.
    #[arg(short, long)]
    pub force: bool,
    /// The containers: ids, unique id prefixes or names.
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

/// Removes each container, printing what it was given as Docker does; exits
/// non-zero if any failed.
pub fn run(args: &RmArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let mut code = ExitCode::SUCCESS;
    for wanted in &args.containers {
        match control::remove(&store, wanted, args.force) {
            Ok(_) => println!("{wanted}"),
            Err(e) => {
                eprintln!("berth: removing {wanted}: {e}");
                code = ExitCode::FAILURE;
            }
        }
    }
    Ok(code)
}
