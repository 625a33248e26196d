//! `berth update`: change the resource limits and restart policy of
//! containers, running or not.

use super::GlobalArgs;
use super::container_flags::resources::{cpus, int, restart, size, swap};
use crate::printer::Printer;
use berth_containers::resources::{RestartPolicy, Update};
use berth_containers::restart;
use clap::Args;
use std::io::Write as _;
use std::process::ExitCode;

/// Arguments of `berth update`.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Memory limit (e.g. 512m, 1g).
    #[arg(short = 'm', long, value_name = "BYTES", value_parser = size)]
    pub memory: Option<i64>,
    /// Memory plus swap limit; -1 for unlimited swap.
    #[arg(long, value_name = "BYTES", value_parser = swap, allow_hyphen_values = true)]
    pub memory_swap: Option<i64>,
    /// Memory soft limit.
    #[arg(long, value_name = "BYTES", value_parser = size)]
    pub memory_reservation: Option<i64>,
    /// Number of CPUs (e.g. 1.5).
    #[arg(long, value_name = "DECIMAL", value_parser = cpus)]
    pub cpus: Option<i64>,
    /// CPU shares (relative weight).
    #[arg(short = 'c', long, value_name = "INT", value_parser = int("--cpu-shares"))]
    pub cpu_shares: Option<i64>,
    /// Limit the CPU CFS period, in microseconds.
    #[arg(long, value_name = "INT", value_parser = int("--cpu-period"))]
    pub cpu_period: Option<i64>,
    /// Limit the CPU CFS quota, in microseconds per period.
    #[arg(long, value_name = "INT", value_parser = int("--cpu-quota"), allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1).
    #[arg(long, value_name = "LIST")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes in which to allow execution (0-3, 0,1).
    #[arg(long, value_name = "LIST")]
    pub cpuset_mems: Option<String>,
    /// Tune the container's pids limit (-1 for unlimited).
    #[arg(long, value_name = "INT", value_parser = int("--pids-limit"), allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Restart policy: no, always, on-failure[:max-retries] or unless-stopped.
    #[arg(long, value_name = "POLICY", value_parser = restart)]
    pub restart: Option<RestartPolicy>,
    /// The containers: ids, unique id prefixes or names.
    #[arg(value_name = "CONTAINER", required = true)]
    pub containers: Vec<String>,
}

impl UpdateArgs {
    fn update(&self) -> Update {
        Update {
            memory: self.memory,
            memory_swap: self.memory_swap,
            memory_reservation: self.memory_reservation,
            nano_cpus: self.cpus,
            cpu_shares: self.cpu_shares,
            cpu_period: self.cpu_period,
            cpu_quota: self.cpu_quota,
            cpuset_cpus: self.cpuset_cpus.clone(),
            cpuset_mems: self.cpuset_mems.clone(),
            pids_limit: self.pids_limit,
            restart: self.restart,
        }
    }
}

/// Updates each container, printing what it was given as docker does;
/// exits non-zero if any failed.
pub fn run(args: &UpdateArgs, global: &GlobalArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let update = args.update();
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
