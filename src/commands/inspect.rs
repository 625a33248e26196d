//! `berth inspect`: describe containers and images as JSON, an array with one
//! object per name, with docker's keys; `-f` prints each through a template.

mod container;
mod image;

use super::GlobalArgs;
use crate::format::render_document;
use crate::printer::Printer;
use berth_containers::{self as containers, ContainerError, control};
use berth_store::{Store, images};
use clap::{Args, ValueEnum};
use serde_json::Value;
use std::io::Write as _;
use std::process::ExitCode;

/// Arguments of `berth inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The containers or images: names, IDs or ID prefixes (images also by
    /// name:tag, name@digest).
    #[arg(value_name = "NAME|ID", required = true)]
    pub names: Vec<String>,
    /// Print each object through a Go template instead, e.g. '{{.Id}}',
    /// '{{.State.Status}}' or '{{json .Config.Env}}'.
    #[arg(short, long, value_name = "TEMPLATE")]
    pub format: Option<String>,
    /// Only look for this kind of object (default: a container, else an image).
    #[arg(long = "type", value_enum, value_name = "TYPE")]
    pub kind: Option<Kind>,
}

/// What `inspect` looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// A container.
    Container,
    /// An image.
    Image,
}

/// Prints the descriptions of the objects that exist; fails if any does not.
pub fn run(args: &InspectArgs, global: &GlobalArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let mut described = Vec::new();
    let mut failed = false;
    for name in &args.names {
        match describe(&store, name, args.kind) {
            Ok(value) => described.push(value),
            Err(e) => {
                printer.error(e.as_ref());
                failed = true;
            }
        }
    }
    let mut out = printer.stdout();
    match &args.format {
        Some(template) => {
            let template = template.replace("\\t", "\t").replace("\\n", "\n");
            for value in &described {
                writeln!(out, "{}", render_document(&template, value)?)?;
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

/// The document of the container or image `name` names: a container wins,
/// as in docker.
fn describe(
    store: &Store,
    name: &str,
    kind: Option<Kind>,
) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
    if kind != Some(Kind::Image) {
        match containers::find(store, name) {
            Ok(record) => {
                // A container whose owner died is settled first, so its
                // state is the one `ps` shows.
                let record = control::reconcile(store, record.clone())?.unwrap_or(record);
                return Ok(container::document(store, &record));
            }
            Err(ContainerError::NotFound(_)) if kind.is_none() => {}
            Err(e) => return Err(e.into()),
        }
    }
    let selected = images::resolve(store, name)?;
    Ok(image::document(images::inspect(store, &selected)?))
}
