//! `berth run`: run a command in a new container from an image.
//!
//! In the foreground berth owns the container until it exits and exits with
//! its code; with `-d` a detached monitor process (`berth container-monitor`)
//! owns it and berth prints the id once it runs.

use super::GlobalArgs;
use super::container_flags::network::NetworkFlags;
use super::container_flags::resources::ResourceFlags;
use crate::printer::Printer;
use berth_containers::create::{ImageFetcher, create};
use berth_containers::executor::Runtime;
use berth_containers::executor::seccomp::{Profile, SeccompPolicy};
use berth_containers::monitor::{self, Outcome};
use berth_containers::options::{RunOptions, env_file_entries};
use berth_containers::supervise::{self, Io, Supervision};
use berth_containers::{self as container, ContainerError, ContainerRecord, control};
use berth_store::Store;
use clap::Args;
use std::io::Write as _;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

/// Arguments of `berth run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Run in the background and print the container id.
    #[arg(short, long)]
    pub detach: bool,
    /// The container's name (default: a made-up one).
    #[arg(long)]
    pub name: Option<String>,
    /// Set an environment variable (KEY=value, or KEY to copy berth's own).
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Read environment variables from a file of KEY=value lines (before -e).
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Bind-mount a host path: HOST:CONTAINER[:ro].
    #[arg(short, long = "volume", value_name = "HOST:CONTAINER[:ro]")]
    pub volume: Vec<String>,
    /// The working directory in the container (created if missing).
    #[arg(short, long = "workdir", value_name = "DIR")]
    pub workdir: Option<String>,
    /// The user: name or uid, optionally :group or :gid.
    #[arg(short, long, value_name = "USER[:GROUP]")]
    pub user: Option<String>,
    /// Replace the image's entrypoint (and drop its default command).
    #[arg(long, value_name = "CMD")]
    pub entrypoint: Option<String>,
    /// The container's hostname (default: the short id).
    #[arg(long)]
    pub hostname: Option<String>,
    /// Give the container a pseudo-terminal.
    #[arg(short, long)]
    pub tty: bool,
    /// Keep the container's standard input open.
    #[arg(short, long)]
    pub interactive: bool,
    /// How the container is connected.
    #[command(flatten)]
    pub network: NetworkFlags,
    /// What the container may use, and what happens when it exits.
    #[command(flatten)]
    pub resources: ResourceFlags,
    /// seccomp=unconfined (no filter) or seccomp=FILE (a profile in Docker's
    /// JSON format); the default is Docker's default profile.
    #[arg(long = "security-opt", value_name = "seccomp=unconfined|FILE", value_parser = parse_security_opt)]
    pub security_opt: Vec<SeccompOption>,
    /// A runc-compatible runtime (default: berth-runtime beside berth).
    #[arg(long, value_name = "PATH")]
    pub runtime: Option<PathBuf>,
    /// The image.
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// The command and its arguments (replace the image's Cmd).
    #[arg(
        value_name = "CMD",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<String>,
}

/// A `--security-opt` value: berth supports Docker's seccomp options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeccompOption {
    /// `seccomp=builtin`: Docker's default profile.
    Builtin,
    /// `seccomp=unconfined`: no filter.
    Unconfined,
    /// `seccomp=FILE`: the profile in that file.
    Profile(PathBuf),
}

fn parse_security_opt(text: &str) -> Result<SeccompOption, String> {
    // Docker still accepts the older `seccomp:VALUE` form.
    let value = text
        .strip_prefix("seccomp=")
        .or_else(|| text.strip_prefix("seccomp:"))
        .ok_or_else(|| {
            format!(
                "unsupported security option '{text}': berth supports seccomp=unconfined \
                 and seccomp=FILE"
            )
        })?;
    Ok(match value {
        "" => return Err("seccomp= needs unconfined, builtin or a profile file".into()),
        "unconfined" => SeccompOption::Unconfined,
        "builtin" => SeccompOption::Builtin,
        file => SeccompOption::Profile(PathBuf::from(file)),
    })
}

/// The seccomp policy of the last `--security-opt seccomp=…`, its profile
/// file read.
fn seccomp_policy(
    options: &[SeccompOption],
) -> Result<SeccompPolicy, berth_containers::executor::seccomp::SeccompError> {
    Ok(match options.last() {
        None | Some(SeccompOption::Builtin) => SeccompPolicy::Default,
        Some(SeccompOption::Unconfined) => SeccompPolicy::Unconfined,
        Some(SeccompOption::Profile(path)) => {
            SeccompPolicy::Profile(Box::new(Profile::load(path)?))
        }
    })
}

/// Docker's exit code for an error of berth itself (not the container's).
pub(super) const BERTH_FAILED: u8 = 125;

/// Prints a container error with its causes and gives Docker's exit code for it.
pub(super) fn fail(printer: Printer, error: &ContainerError) -> ExitCode {
    printer.error(error);
    match error {
        ContainerError::Start { code, .. } => ExitCode::from(*code as u8),
        _ => ExitCode::from(BERTH_FAILED),
    }
}

/// The `-e` values of the `--env-file`s, in order, then the `-e` flags, so
/// that a flag overrides a file as with docker.
pub(super) fn env_values(
    files: &[PathBuf],
    flags: &[String],
) -> Result<Vec<String>, ContainerError> {
    let mut values = Vec::new();
    for file in files {
        values.extend(env_file_entries(file)?);
    }
    values.extend(flags.iter().cloned());
    Ok(values)
}

/// Runs `berth run`.
pub fn run(args: &RunArgs, global: &GlobalArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let env = match env_values(&args.env_file, &args.env) {
        Ok(env) => env,
        Err(e) => return Ok(fail(printer, &e)),
    };
    let seccomp = match seccomp_policy(&args.security_opt) {
        Ok(policy) => policy,
        Err(e) => {
            printer.error(&e);
            return Ok(ExitCode::from(BERTH_FAILED));
        }
    };
    let mut limits = args.resources.limits();
    match limits.validate(args.rm, berth_containers::resources::Host::detect()) {
        Ok(warnings) => warnings.into_iter().for_each(|w| printer.warn(w)),
        Err(e) => {
            printer.error(&e);
            return Ok(ExitCode::from(BERTH_FAILED));
        }
    }
    let options = RunOptions {
        image: args.image.clone(),
        command: args.command.clone(),
        entrypoint: args.entrypoint.clone(),
        env,
        volumes: args.volume.clone(),
        workdir: args.workdir.clone(),
        user: args.user.clone(),
        hostname: args.hostname.clone(),
        name: args.name.clone(),
        tty: args.tty,
        auto_remove: args.rm,
        detached: args.detach,
        network: args.network.network,
        runtime: args.runtime.clone().unwrap_or_else(Runtime::default_binary),
        seccomp,
        resources: limits,
    };
    let record = match create(&store, &options, &RegistryFetcher { printer }) {
        Ok(record) => record,
        Err(e) => return Ok(fail(printer, &e)),
    };
    if args.detach {
        return detach(&store, &record, args.tty, global, printer);
    }
    // Blocked before the supervisor starts its threads (creating the
    // container, a pull included, leaves none running), so they all leave
    // these signals to the one that passes them to the container; until
    // then Ctrl-C still stops berth.
    supervise::block_signals(supervise::FORWARDED)?;
    let dup = |fd: std::os::fd::BorrowedFd<'_>| fd.try_clone_to_owned();
    let io = Io::Attached {
        stdin: if args.interactive {
            Some(dup(std::io::stdin().as_fd())?)
        } else {
            None
        },
        stdout: dup(std::io::stdout().as_fd())?,
        stderr: dup(std::io::stderr().as_fd())?,
    };
    let supervision = Supervision {
        store: &store,
        record,
        io,
        tty: args.tty,
        forward_signals: true,
    };
    match supervise::run(supervision, &mut |_| {}) {
        Ok(code) => Ok(ExitCode::from(code as u8)),
        Err(e) => Ok(fail(printer, &e)),
    }
}

/// Starts the monitor of a detached container and prints the id once the
/// container runs.
fn detach(
    store: &Store,
    record: &ContainerRecord,
    tty: bool,
    global: &GlobalArgs,
    printer: Printer,
) -> anyhow::Result<ExitCode> {
    let mut command = Command::new(std::env::current_exe()?);
    command
        .arg("--root")
        .arg(global.store_root())
        .args(["container-monitor", &record.id]);
    if tty {
        command.arg("--tty");
    }
    let log = container::container_dir(store, &record.id).join(monitor::MONITOR_LOG);
    match monitor::spawn(command, &log)? {
        Some(Outcome::Started) => {
            writeln!(printer.stdout(), "{}", record.id)?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Outcome::Failed { message, code }) => {
            printer.error_message(message);
            Ok(ExitCode::from(code as u8))
        }
        None => {
            // The monitor died before it could say; make sure nothing is left.
            let _ = control::remove(store, &record.id, true);
            let message = format!(
                "the monitor of container {} exited before the container started",
                record.short_id()
            );
            printer.error_message(message);
            Ok(ExitCode::from(BERTH_FAILED))
        }
    }
}

/// Pulls an image `run` needs from its registry, telling the user first as
/// docker does.
struct RegistryFetcher {
    printer: Printer,
}

impl ImageFetcher for RegistryFetcher {
    fn fetch(
        &self,
        store: &Store,
        name: &str,
        local: &str,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let _ = writeln!(
            self.printer.stderr(),
            "Unable to find image '{name}' locally; pulling it"
        );
        let (sender, _receiver) = std::sync::mpsc::channel();
        berth_builder::registry::pull(store, name, local, sender)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_options_parse_as_docker_spells_them() {
        for (text, want) in [
            ("seccomp=unconfined", Ok(SeccompOption::Unconfined)),
            ("seccomp:unconfined", Ok(SeccompOption::Unconfined)),
            ("seccomp=builtin", Ok(SeccompOption::Builtin)),
            (
                "seccomp=/etc/p.json",
                Ok(SeccompOption::Profile(PathBuf::from("/etc/p.json"))),
            ),
            ("seccomp=", Err("needs unconfined")),
            ("apparmor=unconfined", Err("unsupported security option")),
            ("no-new-privileges", Err("unsupported security option")),
        ] {
            match (parse_security_opt(text), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{text}"),
                (Err(got), Err(want)) => assert!(got.contains(want), "{text}: {got}"),
                (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn the_last_seccomp_option_wins_and_none_means_the_default() {
        assert!(matches!(seccomp_policy(&[]), Ok(SeccompPolicy::Default)));
        let options = [SeccompOption::Builtin, SeccompOption::Unconfined];
        assert!(matches!(
            seccomp_policy(&options),
            Ok(SeccompPolicy::Unconfined)
        ));
        let missing = [SeccompOption::Profile(PathBuf::from("/nonexistent.json"))];
        let err = seccomp_policy(&missing).unwrap_err();
        assert!(err.to_string().contains("/nonexistent.json"), "{err}");
    }
}
