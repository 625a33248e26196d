//! `berth commit`: a new image from a container's changes, as `docker commit`.

use super::GlobalArgs;
use crate::printer::Printer;
use anyhow::Context as _;
use berth_builder::change;
use berth_containers::commit::{self, CommitOptions};
use clap::{ArgAction, Args};
use std::io::Write as _;
use std::process::ExitCode;

/// Arguments of `berth commit`.
#[derive(Debug, Args)]
pub struct CommitArgs {
    /// A Dockerfile instruction to apply to the image (CMD, ENTRYPOINT, ENV,
    /// EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR, STOPSIGNAL).
    #[arg(short = 'c', long = "change", value_name = "INSTRUCTION")]
    pub changes: Vec<String>,
    /// The commit message.
    #[arg(short = 'm', long = "message")]
    pub message: Option<String>,
    /// The author (e.g. "Jane Doe <jane@example.com>").
    #[arg(short = 'a', long = "author")]
    pub author: Option<String>,
    /// Pause the container while it is committed.
    #[arg(
        short = 'p',
        long = "pause",
        action = ArgAction::Set,
        default_value_t = true,
        num_args = 0..=1,
        default_missing_value = "true",
        value_name = "BOOL"
    )]
    pub pause: bool,
    /// The container: id, unique id prefix or name.
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// The new image's name.
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub name: Option<String>,
}

/// Commits the container and prints the new image's id.
pub fn run(args: &CommitArgs, global: &GlobalArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let record = berth_containers::find(&store, &args.container)?;
    let created = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let options = CommitOptions {
        pause: args.pause,
        comment: args.message.as_deref(),
        author: args.author.as_deref(),
        name: args.name.as_deref(),
        created,
    };
    let committed = commit::commit(&store, &record, &options, &mut |config| {
        Ok(change::apply_all(config, &args.changes)?)
    })
    .with_context(|| format!("committing container {}", args.container))?;
    writeln!(printer.stdout(), "{}", committed.id)?;
    Ok(ExitCode::SUCCESS)
}
