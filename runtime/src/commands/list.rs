//! `list`: the containers under the root.

use crate::GlobalOptions;
use std::io::Write;

/// Flags of `list`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output format: table or json.
    #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// Print only the ids.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Runs `list`.
pub fn run(global: &GlobalOptions, args: Args) -> anyhow::Result<i32> {
    let states = super::runtime(global).list()?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.quiet {
        for state in &states {
            writeln!(out, "{}", state.id)?;
        }
        return Ok(0);
    }
    if args.format == "json" {
        serde_json::to_writer(&mut out, &states)?;
        writeln!(out)?;
        return Ok(0);
    }
    let rows: Vec<[String; 6]> = states
        .iter()
        .map(|s| {
            [
                s.id.clone(),
                s.pid.to_string(),
                s.status.clone(),
                s.bundle.display().to_string(),
                s.created.clone(),
                s.owner.clone(),
            ]
        })
        .collect();
    let header = ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from);
    let mut widths = [0usize; 6];
    for row in std::iter::once(&header).chain(&rows) {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, (cell, width)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}", w = width + 3));
            }
        }
        writeln!(out, "{line}")?;
    }
    Ok(0)
}
