//! `berth update`: change the resource limits and restart policy of
//! containers, running or not.

use super::GlobalArgs;
use super::container_flags::resources::{CgroupFlags, restart};
use crate::printer::Printer;
use berth_containers::resources::{RestartPolicy, Update};
use berth_containers::restart;
use clap::Args;
use std::io::Write as _;
use std::process::ExitCode;

/// Arguments of `berth update`.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The cgroup limits to change.
    #[command(flatten)]
    pub limits: CgroupFlags,
    /// Restart policy: no, always, on-failure[:max-retries] or unless-stopped.
    #[arg(long, value_name = "POLICY", value_parser = restart)]
    pub restart: Option<RestartPolicy>,
    /// The containers: ids, unique id prefixes or names.
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

/// Updates each container, printing what it was given as docker does;
/// exits non-zero if any failed.
pub fn run(args: &UpdateArgs, global: &GlobalArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let update = args.limits.update(args.restart);
    if update == Update::default() {
        printer.error_message(
            "you must provide one or more flags when using this command\n\
             hint: e.g. berth update --memory 256m CONTAINER",
        );
        return Ok(ExitCode::FAILURE);
    }
    let store = global.open_store()?;
    let mut code = ExitCode::SUCCESS;
    for wanted in &args.containers {
        match restart::update(&store, wanted, &update) {
            Ok(_) => writeln!(printer.stdout(), "{wanted}")?,
            Err(e) => {
                let e = anyhow::Error::new(e).context(format!("cannot update container {wanted}"));
                printer.error(e.as_ref());
                code = ExitCode::FAILURE;
            }
        }
    }
    Ok(code)
}
