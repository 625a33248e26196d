//! `berth inspect`: show images' manifests and configurations as JSON, an
//! array with one object per image, like `docker inspect`.

use super::GlobalArgs;
use crate::format::render_document;
use crate::printer::Printer;
use berth_store::images;
use clap::Args;
use std::io::Write as _;
use std::process::ExitCode;

/// Arguments of `berth inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The images: names, name:tag, name@digest or image ID prefixes.
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,
    /// Print each image through a template instead, e.g. '{{.Id}}' or
    /// '{{json .Config.Env}}' (field paths and json, as docker users write).
    #[arg(short, long, value_name = "TEMPLATE")]
    pub format: Option<String>,
}

/// Prints the descriptions of the images that exist; fails if any does not.
pub fn run(args: &InspectArgs, global: &GlobalArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let mut described = Vec::new();
    let mut failed = false;
    for reference in &args.images {
        match images::resolve(&store, reference).and_then(|s| images::inspect(&store, &s)) {
            Ok(value) => described.push(value),
            Err(e) => {
                printer.error(&e);
                failed = true;
            }
        }
    }
    let mut out = printer.stdout();
    match &args.format {
        Some(template) => {
            for value in &described {
                writeln!(out, "{}", render_document(template, value)?)?;
            }
        }
        None => writeln!(out, "{}", serde_json::to_string_pretty(&described)?)?,
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
