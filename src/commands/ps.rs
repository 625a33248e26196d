//! `berth ps`: list the containers berth started.

use super::GlobalArgs;
use super::images::format::{duration, table, truncate};
use crate::printer::Printer;
use berth_containers::{self as container, ContainerRecord, State, control};
use clap::{Args, ValueEnum};
use std::io::Write as _;
use std::process::ExitCode;

/// Arguments of `berth ps`.
#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show every container (default: only running ones).
    #[arg(short, long)]
    pub all: bool,
    /// Print only the ids.
    #[arg(short, long)]
    pub quiet: bool,
    /// The output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

/// How `ps` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns.
    Table,
    /// One JSON object per line, as `docker ps --format json`.
    Json,
}

/// Lists the containers, newest first.
pub fn run(args: &PsArgs, global: &GlobalArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let mut records = Vec::new();
    for record in container::list(&store)? {
        // A container whose owner died is cleaned up now, as its owner would have.
        if let Some(record) = control::reconcile(&store, record)?
            && (args.all || record.is_running() || matches!(record.state, State::Restarting { .. }))
        {
            records.push(record);
        }
    }
    records.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
    let now = container::now();
    let mut out = printer.stdout();
    if args.quiet {
        for r in &records {
            writeln!(out, "{}", r.short_id())?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    match args.format {
        Format::Json => {
            for r in &records {
                let line = serde_json::json!({
                    "ID": r.id,
                    "Image": r.image,
                    "ImageDigest": r.image_digest.to_string(),
                    "Command": quoted_command(r, usize::MAX),
                    "CreatedAt": r.created,
                    "RunningFor": format!("{} ago", duration(now - r.created)),
                    "State": state_name(r),
                    "ExitCode": exit_code(r),
                    "Status": status(r, now),
                    "Names": r.name,
                });
                writeln!(out, "{line}")?;
            }
        }
        Format::Table => {
            let rows: Vec<Vec<String>> = records
                .iter()
                .map(|r| {
                    vec![
                        r.short_id().to_string(),
                        r.image.clone(),
                        quoted_command(r, 20),
                        format!("{} ago", duration(now - r.created)),
                        status(r, now),
                        r.name.clone(),
                    ]
                })
                .collect();
            let header = [
                "CONTAINER ID",
                "IMAGE",
                "COMMAND",
                "CREATED",
                "STATUS",
                "NAMES",
            ];
            write!(out, "{}", table(&header, &rows))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The command in quotes, cut to `max` characters with an ellipsis.
fn quoted_command(r: &ContainerRecord, max: usize) -> String {
    format!("\"{}\"", truncate(&r.command.join(" "), max))
}

fn state_name(r: &ContainerRecord) -> &'static str {
    match r.state {
        State::Created => "created",
        State::Running { .. } if r.is_running() => "running",
        State::Restarting { .. } => "restarting",
        _ => "exited",
    }
}

fn exit_code(r: &ContainerRecord) -> Option<i32> {
    match r.state {
        State::Exited { code, .. } => Some(code),
        _ => None,
    }
}

/// Docker's status text: "Up 3 seconds", "Exited (0) 2 minutes ago", "Created".
fn status(r: &ContainerRecord, now: i64) -> String {
    match r.state {
        State::Created => "Created".into(),
        State::Running { started, .. } if r.is_running() => {
            format!("Up {}", duration(now - started))
        }
        // The process is gone and its owner is recording the exit.
        State::Running { .. } => "Exiting".into(),
        State::Exited { code, finished, .. } => {
            format!("Exited ({code}) {} ago", duration(now - finished))
        }
        State::Restarting { code, finished, .. } => {
            format!("Restarting ({code}) {} ago", duration(now - finished))
        }
    }
}
