//! `berth history`: the steps that made an image and the layer each added.
//! SIZE is the layer as stored (compressed), 0 for steps that add none.

use super::GlobalArgs;
use super::images::format;
use crate::printer::Printer;
use berth_store::images::{self, short_id};
use clap::Args;
use serde_json::json;
use std::io::Write as _;
use std::process::ExitCode;

/// Arguments of `berth history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The image: a name, name:tag, name@digest or an image ID prefix.
    #[arg(value_name = "IMAGE")]
    pub image: String,
    /// Show the whole instruction and full IDs.
    #[arg(long)]
    pub no_trunc: bool,
    /// Print sizes in bytes and times as stored.
    #[arg(short = 'H', long = "human", default_value_t = true, action = clap::ArgAction::Set)]
    pub human: bool,
    /// Print a JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Prints the image's steps, newest first.
pub fn run(args: &HistoryArgs, global: &GlobalArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let selected = images::resolve(&store, &args.image)?;
    let mut out = printer.stdout();
    let rows = images::history(&selected.image);
    if args.json {
        let list: Vec<_> = rows
            .iter()
            .map(|r| {
                json!({
                    "Created": r.created,
                    "CreatedBy": r.created_by,
                    "Layer": r.layer,
                    "Size": r.size,
                    "Comment": r.comment,
                })
            })
            .collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let id = selected.image.id();
    let now = format::now();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let image = match (i, args.no_trunc) {
                (0, true) => id.to_string(),
                (0, false) => short_id(id).to_string(),
                _ => "<missing>".to_string(),
            };
            let created_by = if args.no_trunc {
                r.created_by.clone()
            } else {
                format::truncate(&r.created_by, 45)
            };
            let (created, size) = if args.human {
                (format::age(r.created.as_deref(), now), format::size(r.size))
            } else {
                (r.created.clone().unwrap_or_default(), r.size.to_string())
            };
            vec![image, created, created_by, size, r.comment.clone()]
        })
        .collect();
    write!(
        out,
        "{}",
        format::table(
            &["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"],
            &cells
        )
    )?;
    Ok(ExitCode::SUCCESS)
}
