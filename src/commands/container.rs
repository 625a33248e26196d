//! `berth container`: docker's command group for containers. Each
//! subcommand is the top-level command of the same name (`container ls` is
//! `ps`), so both spellings run the same code.

use super::{GlobalArgs, attach, create, exec, inspect, kill, logs, pause, ps, rename, restart};
use super::{commit, cp, port, stats, top, update};
use super::{rm, run};
use super::{start, stop, unpause, wait};
use crate::printer::Printer;
use berth_containers::{ContainerError, control};
use clap::{Args, Subcommand};
use std::io::Write as _;
use std::process::ExitCode;

/// Arguments of `berth container`.
#[derive(Debug, Args)]
pub struct ContainerArgs {
    #[command(subcommand)]
    pub command: ContainerCommand,
}

/// The subcommands of `berth container`.
#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// List containers.
    #[command(visible_aliases = ["ps", "list"])]
    Ls(ps::PsArgs),
    /// Create a container from an image without starting it.
    Create(create::CreateArgs),
    /// Run a command in a new container.
    Run(run::RunArgs),
    /// Start created or stopped containers.
    Start(start::StartArgs),
    /// Stop running containers.
    Stop(stop::StopArgs),
    /// Restart containers.
    Restart(restart::RestartArgs),
    /// Send a signal to running containers.
    Kill(kill::KillArgs),
    /// Freeze every process of running containers.
    Pause(pause::PauseArgs),
    /// Thaw paused containers.
    Unpause(unpause::UnpauseArgs),
    /// Wait for containers to stop and print their exit codes.
    Wait(wait::WaitArgs),
    /// Remove containers.
    #[command(visible_alias = "remove")]
    Rm(rm::RmArgs),
    /// Rename a container.
    Rename(rename::RenameArgs),
    /// Show a running container's output from now on.
    Attach(attach::AttachArgs),
    /// Show the output of a container.
    Logs(logs::LogsArgs),
    /// Run a command in a running container.
    Exec(exec::ExecArgs),
    /// Show a container's (or image's) document as docker's `inspect`.
    Inspect(inspect::InspectArgs),
    /// Remove every stopped container.
    Prune(PruneArgs),
    /// Show containers' resource use.
    Stats(stats::StatsArgs),
    /// Show the processes of a running container.
    Top(top::TopArgs),
    /// Change the resource limits and restart policy of containers.
    Update(update::UpdateArgs),
    /// Show the host ports a container publishes.
    Port(port::PortArgs),
    /// Make an image from a container's changes.
    Commit(commit::CommitArgs),
    /// Copy files between a container and the host.
    Cp(cp::CpArgs),
}

/// Runs a `berth container` subcommand.
pub fn run(
    args: &ContainerArgs,
    global: &GlobalArgs,
    printer: Printer,
) -> anyhow::Result<ExitCode> {
    match &args.command {
        ContainerCommand::Ls(args) => ps::run(args, global, printer),
        ContainerCommand::Create(args) => create::run(args, global, printer),
        ContainerCommand::Run(args) => run::run(args, global, printer),
        ContainerCommand::Start(args) => start::run(args, global, printer),
        ContainerCommand::Stop(args) => stop::run(args, global, printer),
        ContainerCommand::Restart(args) => restart::run(args, global, printer),
        ContainerCommand::Kill(args) => kill::run(args, global, printer),
        ContainerCommand::Pause(args) => pause::run(args, global, printer),
        ContainerCommand::Unpause(args) => unpause::run(args, global, printer),
        ContainerCommand::Wait(args) => wait::run(args, global, printer),
        ContainerCommand::Rm(args) => rm::run(args, global, printer),
        ContainerCommand::Rename(args) => rename::run(args, global, printer),
        ContainerCommand::Attach(args) => attach::run(args, global, printer),
        ContainerCommand::Logs(args) => logs::run(args, global, printer),
        ContainerCommand::Exec(args) => exec::run(args, global, printer),
        ContainerCommand::Inspect(args) => inspect::run(args, global, printer),
        ContainerCommand::Prune(args) => prune(args, global, printer),
        ContainerCommand::Stats(args) => stats::run(args, global, printer),
        ContainerCommand::Top(args) => top::run(args, global, printer),
        ContainerCommand::Update(args) => update::run(args, global, printer),
        ContainerCommand::Port(args) => port::run(args, global, printer),
        ContainerCommand::Commit(args) => commit::run(args, global, printer),
        ContainerCommand::Cp(args) => cp::run(args, global, printer),
    }
}

/// Docker's exit code for a lifecycle command that failed on a container.
pub(super) const FAILED: u8 = 1;

/// Runs `op` on each container the user named, printing the name as given
/// when it succeeds (as docker does) and the error when it fails; the exit
/// code is 1 if any failed.
pub(super) fn each(
    containers: &[String],
    printer: Printer,
    op: impl Fn(&str) -> Result<(), ContainerError>,
) -> anyhow::Result<ExitCode> {
    let mut code = ExitCode::SUCCESS;
    for wanted in containers {
        match op(wanted) {
            Ok(()) => writeln!(printer.stdout(), "{wanted}")?,
            Err(e) => {
                printer.error(&e);
                code = ExitCode::from(FAILED);
            }
        }
    }
    Ok(code)
}

/// Arguments of `berth container prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Do not ask for confirmation.
    #[arg(short, long)]
    pub force: bool,
}

/// Removes every stopped container, after asking unless `-f`, and prints
/// docker's summary.
fn prune(args: &PruneArgs, global: &GlobalArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    if !args.force {
        printer.prompt(
            "WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] ",
        )?;
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes" | "Yes") {
            return Ok(ExitCode::SUCCESS);
        }
    }
    let (removed, reclaimed) = control::prune(&store)?;
    let mut out = printer.stdout();
    if !removed.is_empty() {
        writeln!(out, "Deleted Containers:")?;
        for id in &removed {
            writeln!(out, "{id}")?;
        }
        writeln!(out)?;
    }
    writeln!(out, "Total reclaimed space: {}", human_size(reclaimed))?;
    Ok(ExitCode::SUCCESS)
}

/// docker's `units.HumanSize`: decimal units, four significant digits, no
/// space ("0B", "12.3kB", "1.235MB").
pub(super) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    // Go's %.4g: four significant digits, trailing zeros dropped.
    let decimals = match value {
        v if v >= 1000.0 => 0,
        v if v >= 100.0 => 1,
        v if v >= 10.0 => 2,
        _ => 3,
    };
    let mut text = format!("{value:.decimals$}");
    if text.contains('.') {
        text = text.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{text}{}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_dockers_human_size() {
        for (bytes, want) in [
            (0, "0B"),
            (999, "999B"),
            (1000, "1kB"),
            (1234, "1.234kB"),
            (12_346, "12.35kB"),
            (123_456, "123.5kB"),
            (1_000_000, "1MB"),
            (5_500_000_000, "5.5GB"),
        ] {
            assert_eq!(human_size(bytes), want, "{bytes}");
        }
    }
}
