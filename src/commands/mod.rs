//! One module per `berth` subcommand; this one holds the argument tree and the
//! dispatch.

mod build;
mod import;
mod version;

use clap::{Args, Parser, Subcommand};
use std::process::ExitCode;

/// Build, push, pull and run OCI images and containers.
#[derive(Debug, Parser)]
#[command(name = "berth", version = version::short())]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every subcommand accepts.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Log more (-v: debug, -vv: trace). BERTH_LOG overrides this with a tracing filter.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

impl GlobalArgs {
    /// The tracing level the verbosity flags ask for.
    pub fn log_level(&self) -> tracing::Level {
        match self.verbose {
            0 => tracing::Level::WARN,
            1 => tracing::Level::DEBUG,
            _ => tracing::Level::TRACE,
        }
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build an image from a Dockerfile and a context directory (--check: only validate).
    Build(build::BuildArgs),
    /// Make an image in the local store from a root filesystem directory.
    Import(import::ImportArgs),
    /// Show the version of berth, the commit it was built from and the OCI specs it speaks.
    Version(version::VersionArgs),
}

/// Runs the chosen subcommand and returns the process exit code.
pub fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Build(args) => build::run(&args),
        Command::Import(args) => import::run(&args),
        Command::Version(args) => version::run(&args),
    }
}

/// Sends logs to stderr, filtered by `BERTH_LOG` when it is set.
pub fn init_logging(level: tracing::Level) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level.as_str()));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
