//! One module per `berth` subcommand; this one holds the argument tree and the
//! dispatch.

mod build;
mod commit;
mod container_flags;
mod container_monitor;
mod cp;
mod exec;
mod history;
mod images;
mod import;
mod inspect;
mod load;
mod login;
mod logout;
mod logs;
mod prune;
mod ps;
mod pull;
mod push;
mod rm;
mod rmi;
mod run;
mod save;
mod stop;
mod tag;
mod transfer_progress;
mod version;

use crate::printer::Printer;
use anyhow::Context as _;
use berth_store::Store;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
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
    /// Log more (--verbose: debug, twice: trace). BERTH_LOG overrides this with a tracing filter.
    // No -v: that is `berth run -v HOST:CONTAINER`, as in Docker.
    #[arg(long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// The local store (default: $BERTH_ROOT, /var/lib/berth as root, else $XDG_DATA_HOME/berth).
    #[arg(long, global = true, value_name = "DIR", env = "BERTH_ROOT")]
    pub root: Option<PathBuf>,
}

impl GlobalArgs {
    /// The local store's root directory.
    pub fn store_root(&self) -> PathBuf {
        self.root.clone().unwrap_or_else(Store::default_root)
    }

    /// Opens the local store.
    pub fn open_store(&self) -> anyhow::Result<Store> {
        let root = self.store_root();
        Store::open(&root).with_context(|| format!("opening the local store {}", root.display()))
    }

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
    /// Make an image from a tarball (file, - or URL) or a root filesystem directory.
    Import(import::ImportArgs),
    /// Pull an image from a registry into the local store.
    Pull(pull::PullArgs),
    /// Push an image from the local store to a registry.
    Push(push::PushArgs),
    /// Log in to a registry and store the credential.
    Login(login::LoginArgs),
    /// Remove a stored registry credential.
    Logout(logout::LogoutArgs),
    /// Give an image in the local store another name.
    Tag(tag::TagArgs),
    /// Remove images from the local store.
    Rmi(rmi::RmiArgs),
    /// List the images in the local store.
    Images(images::ImagesArgs),
    /// Show an image's manifest and configuration as JSON.
    Inspect(inspect::InspectArgs),
    /// Show the layers of an image and the steps that made them.
    History(history::HistoryArgs),
    /// Remove unreferenced blobs, snapshots and build cache records.
    Prune(prune::PruneArgs),
    /// Write images to an OCI layout or docker-archive tar.
    Save(save::SaveArgs),
    /// Read images from an OCI layout or docker-archive tar.
    Load(load::LoadArgs),
    /// Create a new image from a container's changes.
    Commit(commit::CommitArgs),
    /// Run a command in a new container from an image.
    Run(run::RunArgs),
    /// List the containers berth started.
    Ps(ps::PsArgs),
    /// Run a command in a running container.
    Exec(exec::ExecArgs),
    /// Copy files between a container and the host.
    Cp(cp::CpArgs),
    /// Stop running containers.
    Stop(stop::StopArgs),
    /// Remove containers.
    Rm(rm::RmArgs),
    /// Show the output of a container.
    Logs(logs::LogsArgs),
    /// Own a detached container (internal: started by `berth run -d`).
    #[command(hide = true)]
    ContainerMonitor(container_monitor::ContainerMonitorArgs),
    /// Show the version of berth, the commit it was built from and the OCI specs it speaks.
    Version(version::VersionArgs),
}

/// Runs the chosen subcommand, writing through `printer`, and returns the
/// process exit code.
pub fn dispatch(cli: Cli, printer: Printer) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Build(args) => build::run(&args, &cli.global, printer),
        Command::Import(args) => import::run(&args, &cli.global, printer),
        Command::Pull(args) => pull::run(&args, &cli.global, printer),
        Command::Push(args) => push::run(&args, &cli.global, printer),
        Command::Login(args) => login::run(&args, &cli.global, printer),
        Command::Logout(args) => logout::run(&args, &cli.global, printer),
        Command::Tag(args) => tag::run(&args, &cli.global, printer),
        Command::Rmi(args) => rmi::run(&args, &cli.global, printer),
        Command::Images(args) => images::run(&args, &cli.global, printer),
        Command::Inspect(args) => inspect::run(&args, &cli.global, printer),
        Command::History(args) => history::run(&args, &cli.global, printer),
        Command::Prune(args) => prune::run(&args, &cli.global, printer),
        Command::Save(args) => save::run(&args, &cli.global, printer),
        Command::Load(args) => load::run(&args, &cli.global, printer),
        Command::Commit(args) => commit::run(&args, &cli.global, printer),
        Command::Run(args) => run::run(&args, &cli.global, printer),
        Command::Ps(args) => ps::run(&args, &cli.global, printer),
        Command::Exec(args) => exec::run(&args, &cli.global, printer),
        Command::Cp(args) => cp::run(&args, &cli.global, printer),
        Command::Stop(args) => stop::run(&args, &cli.global, printer),
        Command::Rm(args) => rm::run(&args, &cli.global, printer),
        Command::Logs(args) => logs::run(&args, &cli.global, printer),
        Command::ContainerMonitor(args) => container_monitor::run(&args, &cli.global, printer),
        Command::Version(args) => version::run(&args, printer),
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
