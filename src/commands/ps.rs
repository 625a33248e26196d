//! `berth ps`: list the containers berth started.

use super::GlobalArgs;
use berth_builder::container::{self, ContainerRecord, State, control};
use clap::{Args, ValueEnum};
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
pub fn run(args: &PsArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
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
    if args.quiet {
        for r in &records {
            println!("{}", r.short_id());
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
                    "RunningFor": format!("{} ago", human_duration(now - r.created)),
                    "State": state_name(r),
                    "ExitCode": exit_code(r),
                    "Status": status(r, now),
                    "Names": r.name,
                });
                println!("{line}");
            }
        }
        Format::Table => {
            let rows: Vec<[String; 6]> = records
                .iter()
                .map(|r| {
                    [
                        r.short_id().to_string(),
                        r.image.clone(),
                        quoted_command(r, 20),
                        format!("{} ago", human_duration(now - r.created)),
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
            ]
            .map(String::from);
            print!("{}", table(&header, &rows));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Columns padded to their widest cell with three spaces between, as Docker's.
fn table(header: &[String; 6], rows: &[[String; 6]]) -> String {
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}   ", width = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The command in quotes, cut to `max` characters with an ellipsis.
fn quoted_command(r: &ContainerRecord, max: usize) -> String {
    let text = r.command.join(" ");
    if text.chars().count() > max {
        let cut: String = text.chars().take(max.saturating_sub(1)).collect();
        format!("\"{cut}…\"")
    } else {
        format!("\"{text}\"")
    }
}

fn state_name(r: &ContainerRecord) -> &'static str {
    match r.state {
        State::Created => "created",
        State::Running { .. } if r.is_running() => "running",
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
            format!("Up {}", human_duration(now - started))
        }
        // The process is gone and its owner is recording the exit.
        State::Running { .. } => "Exiting".into(),
        State::Exited { code, finished, .. } => {
            format!("Exited ({code}) {} ago", human_duration(now - finished))
        }
    }
}

/// A duration as Docker words it ("Less than a second", "About a minute", "3 hours").
fn human_duration(secs: i64) -> String {
    let secs = secs.max(0);
    let plural = |n: i64, unit: &str| {
        if n == 1 {
            format!("1 {unit}")
        } else {
            format!("{n} {unit}s")
        }
    };
    match secs {
        0 => "Less than a second".into(),
        s if s < 60 => plural(s, "second"),
        s if s < 120 => "About a minute".into(),
        s if s < 3600 => plural(s / 60, "minute"),
        s if s < 2 * 3600 => "About an hour".into(),
        s if s < 48 * 3600 => plural(s / 3600, "hour"),
        s if s < 14 * 86_400 => plural(s / 86_400, "day"),
        s if s < 60 * 86_400 => plural(s / (7 * 86_400), "week"),
        s if s < 2 * 365 * 86_400 => plural(s / (30 * 86_400), "month"),
        s => plural(s / (365 * 86_400), "year"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_dockers() {
        let cases = [
            (0, "Less than a second"),
            (1, "1 second"),
            (3, "3 seconds"),
            (59, "59 seconds"),
            (61, "About a minute"),
            (600, "10 minutes"),
            (3700, "About an hour"),
            (5 * 3600, "5 hours"),
            (3 * 86_400, "3 days"),
            (21 * 86_400, "3 weeks"),
            (90 * 86_400, "3 months"),
            (800 * 86_400, "2 years"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration(secs), want, "{secs}");
        }
    }

    #[test]
    fn table_aligns_columns() {
        let header = ["A", "BB", "C", "D", "E", "F"].map(String::from);
        let rows = [[
            "long".to_string(),
            "x".into(),
            "y".into(),
            "z".into(),
            "w".into(),
            "n".into(),
        ]];
        assert_eq!(
            table(&header, &rows),
            "A      BB   C   D   E   F\nlong   x    y   z   w   n\n"
        );
    }
}
