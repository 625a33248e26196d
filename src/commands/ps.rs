//! `berth ps`: list the containers berth started.

use super::GlobalArgs;
use super::images::created_at;
use super::images::format::{duration, truncate};
use crate::format::{OutputFormat, write_rows};
use crate::printer::Printer;
use berth_containers::{self as container, ContainerRecord, State, control};
use clap::Args;
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
    /// Do not cut IDs and commands short.
    #[arg(long)]
    pub no_trunc: bool,
    /// The output format: table, `table TEMPLATE`, json (one object per
    /// line), or a Go template per row with docker's fields (.ID, .Image,
    /// .Command, .CreatedAt, .RunningFor, .State, .Status, .Names, …).
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
}

/// Lists the containers, newest first.
pub fn run(args: &PsArgs, global: &GlobalArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let output = OutputFormat::parse(args.format.as_deref())?;
    let store = global.open_store()?;
    let mut records = Vec::new();
    for record in container::list(&store)? {
        // A container whose owner died is cleaned up now, as its owner would have.
        if let Some(record) = control::reconcile(&store, record)?
            && (args.all || record.is_running())
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
    let rows: Vec<_> = records.iter().map(|r| row(r, now, args.no_trunc)).collect();
    write_rows(&mut out, &output, &COLUMNS, &rows)?;
    Ok(ExitCode::SUCCESS)
}

/// The default table's columns: (docker's header, row field).
const COLUMNS: [(&str, &str); 6] = [
    ("CONTAINER ID", "ID"),
    ("IMAGE", "Image"),
    ("COMMAND", "Command"),
    ("CREATED", "RunningFor"),
    ("STATUS", "Status"),
    ("NAMES", "Names"),
];

/// One container as `docker ps` describes it to `--format`: docker's field
/// names, and berth's `ImageDigest` and `ExitCode` beside them.
fn row(r: &ContainerRecord, now: i64, no_trunc: bool) -> serde_json::Value {
    serde_json::json!({
        "ID": if no_trunc { r.id.as_str() } else { r.short_id() },
        "Image": r.image,
        "ImageDigest": r.image_digest.to_string(),
        "Command": quoted_command(r, if no_trunc { usize::MAX } else { 20 }),
        "CreatedAt": created_at(Some(&berth_store::oci::rfc3339(r.created))),
        "RunningFor": format!("{} ago", duration(now - r.created)),
        "State": state_name(r),
        "ExitCode": exit_code(r),
        "Status": status(r, now),
        "Names": r.name,
        "Labels": "",
        "LocalVolumes": "0",
        "Mounts": "",
        "Networks": "",
        "Ports": "",
        "Size": "0B",
    })
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
