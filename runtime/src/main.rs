//! The `berth-runtime` binary: runc's command line over the berth-runtime library.
//!
//! This file only parses arguments and dispatches; each subcommand lives in
//! `commands/`, and the log format runc's callers read is in `logging.rs`.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod commands;
mod logging;

use berth_runtime::migration;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// A runc-compatible OCI runtime.
#[derive(Debug, Parser)]
#[command(name = "berth-runtime", disable_version_flag = true)]
struct Cli {
    /// Print the version, the commit and the OCI runtime-spec version, as runc does.
    #[arg(short = 'v', long = "version")]
    version: bool,

    #[command(flatten)]
    global: GlobalOptions,

    #[command(subcommand)]
    command: Option<Command>,
}

/// runc's global flags.
#[derive(Debug, clap::Args)]
pub struct GlobalOptions {
    /// Root directory for container state (should be on tmpfs).
    #[arg(long, global = true, default_value = berth_runtime::DEFAULT_ROOT)]
    pub root: PathBuf,
    /// Write log messages to this file instead of stderr.
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Log format: text or json ({"level","msg","time"} lines).
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// Log debug messages too.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Manage cgroups through systemd (where systemd runs and the host is cgroup v2).
    #[arg(long, global = true)]
    pub systemd_cgroup: bool,
    /// Ignore cgroup permission errors (true, false or auto); accepted for runc compatibility.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub rootless: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a container from a bundle; its process waits for `start`.
    Create(commands::create::Args),
    /// Start the process of a created container.
    Start(commands::start::Args),
    /// Create and start a container, and by default wait for it.
    Run(commands::run::Args),
    /// Print the state of a container as JSON.
    State(commands::state::Args),
    /// Send a signal to a container's process.
    Kill(commands::kill::Args),
    /// Delete a container's state, cgroup and (with --force) processes.
    Delete(commands::delete::Args),
    /// Run a new process inside a running container.
    Exec(commands::exec::Args),
    /// List the processes in a container.
    Ps(commands::ps::Args),
    /// List containers.
    #[command(alias = "ls")]
    List(commands::list::Args),
    /// Freeze every process of a container.
    Pause(commands::pause::Args),
    /// Thaw a paused container.
    Resume(commands::resume::Args),
    /// Print container statistics as JSON events.
    Events(commands::events::Args),
    /// Change the resource limits of a container.
    Update(commands::update::Args),
    /// Print the features this runtime supports as JSON.
    Features(commands::features::Args),
    /// Write a default config.json into a bundle.
    Spec(commands::spec::Args),
}

fn version_text() -> String {
    format!(
        "berth-runtime version {}\ncommit: {}\nspec: {}\n",
        env!("CARGO_PKG_VERSION"),
        env!("BERTH_GIT_COMMIT"),
        berth_runtime::OCI_SPEC_VERSION,
    )
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.version {
        print!("{}", version_text());
        return ExitCode::SUCCESS;
    }
    let Some(command) = cli.command else {
        eprintln!("berth-runtime: error: no command given; see 'berth-runtime --help'");
        return ExitCode::FAILURE;
    };
    // Commands that put processes into a container run from a sealed copy of
    // this binary, so the container can never write to the host's file
    // (CVE-2019-5736). They also move processes into a cgroup, whose wait
    // for the kernel starts before the re-exec (see the migration module).
    let creates_processes = matches!(
        command,
        Command::Create(_) | Command::Run(_) | Command::Exec(_)
    );
    if let Some(pid) = std::env::var_os(migration::HELPER_PID_ENV) {
        // SAFETY: the process is single-threaded here.
        unsafe { std::env::remove_var(migration::HELPER_PID_ENV) };
        if let Some(pid) = pid.to_str().and_then(|p| p.parse().ok()) {
            migration::adopt_helper(pid);
        }
    }
    if creates_processes && !berth_runtime::exe::running_sealed() {
        if migration::helps(cli.global.systemd_cgroup)
            && let Some(pid) = migration::fork_helper()
        {
            // SAFETY: the process is single-threaded here.
            unsafe { std::env::set_var(migration::HELPER_PID_ENV, pid.to_string()) };
        }
        if let Err(err) = berth_runtime::exe::reexec_sealed() {
            eprintln!(
                "berth-runtime: error: {}",
                berth_runtime::error::chain(&err)
            );
            return ExitCode::FAILURE;
        }
    }
    let log = logging::init(&cli.global);
    let global = &cli.global;
    let result = match command {
        Command::Create(args) => commands::create::run(global, args),
        Command::Start(args) => commands::start::run(global, args),
        Command::Run(args) => commands::run::run(global, args),
        Command::State(args) => commands::state::run(global, args),
        Command::Kill(args) => commands::kill::run(global, args),
        Command::Delete(args) => commands::delete::run(global, args),
        Command::Exec(args) => commands::exec::run(global, args),
        Command::Ps(args) => commands::ps::run(global, args),
        Command::List(args) => commands::list::run(global, args),
        Command::Pause(args) => commands::pause::run(global, args),
        Command::Resume(args) => commands::resume::run(global, args),
        Command::Events(args) => commands::events::run(global, args),
        Command::Update(args) => commands::update::run(global, args),
        Command::Features(args) => commands::features::run(global, args),
        Command::Spec(args) => commands::spec::run(global, args),
    };
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(u8::MAX)),
        Err(err) => {
            log.fatal(&err);
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_runc_style_invocations() {
        let cases: &[&[&str]] = &[
            &[
                "berth-runtime",
                "--root",
                "/r",
                "--log",
                "/l",
                "--log-format",
                "json",
                "create",
                "--bundle",
                "/b",
                "--pid-file",
                "/p",
                "c1",
            ],
            &["berth-runtime", "run", "-d", "--keep", "-b", "/b", "c1"],
            &[
                "berth-runtime",
                "exec",
                "--detach",
                "--pid-file",
                "/p",
                "--process",
                "/p.json",
                "c1",
            ],
            &[
                "berth-runtime",
                "exec",
                "-t",
                "-e",
                "A=1",
                "--cwd",
                "/",
                "c1",
                "sh",
                "-c",
                "echo",
            ],
            &["berth-runtime", "kill", "--all", "c1", "KILL"],
            &["berth-runtime", "delete", "--force", "c1"],
            &[
                "berth-runtime",
                "--systemd-cgroup",
                "--rootless",
                "false",
                "state",
                "c1",
            ],
            &["berth-runtime", "ps", "--format", "json", "c1"],
            &["berth-runtime", "events", "--stats", "c1"],
            &["berth-runtime", "update", "--resources", "-", "c1"],
            &[
                "berth-runtime",
                "update",
                "--memory",
                "64m",
                "--cpu-quota",
                "-1",
                "--pids-limit",
                "10",
                "c1",
            ],
        ];
        for argv in cases {
            assert!(Cli::try_parse_from(*argv).is_ok(), "{argv:?}");
        }
    }
}
