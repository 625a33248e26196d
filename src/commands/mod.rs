//! One module per `berth` subcommand; this one holds the argument tree and the
//! dispatch.

mod attach;
mod build;
mod commit;
mod container;
mod container_flags;
mod container_monitor;
mod cp;
mod create;
mod exec;
mod history;
mod image;
mod images;
mod import;
mod inspect;
mod kill;
mod load;
mod login;
mod logout;
mod logs;
mod network;
mod pause;
mod port;
mod ps;
mod pull;
mod push;
mod rename;
mod restart;
mod rm;
mod rmi;
mod run;
mod save;
mod start;
mod stats;
mod stop;
mod system;
mod tag;
mod top;
mod transfer_progress;
mod unpause;
mod update;
mod version;
mod wait;

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
    /// Where CNI plugins are (colon-separated; default: /usr/lib/cni).
    #[arg(long, global = true, value_name = "DIR[:DIR…]", env = "BERTH_CNI_PATH")]
    pub cni_path: Option<String>,
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
    /// Show containers' and images' descriptions as JSON, with docker's keys.
    Inspect(inspect::InspectArgs),
    /// Show the layers of an image and the steps that made them.
    History(history::HistoryArgs),
    /// Remove stopped containers, dangling images and unreferenced content, as
    /// `system prune -f` (-a: also the build cache; tagged images stay).
    Prune(system::PruneArgs),
    /// Manage images: ls, rm, prune, inspect, history, tag, save, load, import, push, pull.
    Image(image::ImageArgs),
    /// Show what uses the space (df), remove what is unused (prune).
    System(system::SystemArgs),
    /// Write images to an OCI layout or docker-archive tar.
    Save(save::SaveArgs),
    /// Read images from an OCI layout or docker-archive tar.
    Load(load::LoadArgs),
    /// Create a new image from a container's changes.
    Commit(commit::CommitArgs),
    /// Run a command in a new container from an image.
    // Boxed: its flags make it much larger than the other variants.
    Run(Box<run::RunArgs>),
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
    /// Show the host ports a container publishes.
    Port(port::PortArgs),
    /// Manage networks.
    #[command(subcommand)]
    Network(network::NetworkCommand),
    /// Manage containers (docker's `container` group).
    Container(container::ContainerArgs),
    /// Create a container from an image without starting it.
    Create(create::CreateArgs),
    /// Start created or stopped containers.
    Start(start::StartArgs),
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
    /// Rename a container.
    Rename(rename::RenameArgs),
    /// Show a running container's output from now on.
    Attach(attach::AttachArgs),
    /// Show containers' resource use (CPU, memory, network, block I/O, pids).
    Stats(stats::StatsArgs),
    /// Show the processes of a running container.
    Top(top::TopArgs),
    /// Change the resource limits and restart policy of containers.
    Update(update::UpdateArgs),
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
        Command::Prune(args) => system::run_prune(&args, &cli.global, printer),
        Command::Image(args) => image::run(&args, &cli.global, printer),
        Command::System(args) => system::run(&args, &cli.global, printer),
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
        Command::Port(args) => port::run(&args, &cli.global, printer),
        Command::Network(command) => network::run(&command, &cli.global, printer),
        Command::Container(args) => container::run(&args, &cli.global, printer),
        Command::Create(args) => create::run(&args, &cli.global, printer),
        Command::Start(args) => start::run(&args, &cli.global, printer),
        Command::Restart(args) => restart::run(&args, &cli.global, printer),
        Command::Kill(args) => kill::run(&args, &cli.global, printer),
        Command::Pause(args) => pause::run(&args, &cli.global, printer),
        Command::Unpause(args) => unpause::run(&args, &cli.global, printer),
        Command::Wait(args) => wait::run(&args, &cli.global, printer),
        Command::Rename(args) => rename::run(&args, &cli.global, printer),
        Command::Attach(args) => attach::run(&args, &cli.global, printer),
        Command::Stats(args) => stats::run(&args, &cli.global, printer),
        Command::Top(args) => top::run(&args, &cli.global, printer),
        Command::Update(args) => update::run(&args, &cli.global, printer),
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
