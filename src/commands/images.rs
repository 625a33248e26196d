//! `berth images`: list the images in the local store. SIZE is what the
//! image's blobs take in the store (compressed layers, config, manifest).

pub mod format;
pub mod template;

use super::GlobalArgs;
use crate::printer::Printer;
use berth_store::images::{self, repository_of, short_id};
use clap::Args;
use serde_json::json;
use std::io::Write as _;
use std::process::ExitCode;

/// Output formats of `berth images`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListFormat {
    /// Aligned columns.
    Table,
    /// A JSON array, one object per name (as the table has one row per name).
    Json,
    /// A docker-style template per row, e.g. `{{.Repository}}:{{.Tag}}`.
    Template(String),
}

impl std::str::FromStr for ListFormat {
    type Err = std::convert::Infallible;
    fn from_str(text: &str) -> Result<ListFormat, Self::Err> {
        Ok(match text {
            "table" => ListFormat::Table,
            "json" => ListFormat::Json,
            template => ListFormat::Template(template.to_string()),
        })
    }
}

/// Arguments of `berth images`.
#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Only images of this repository (optionally REPOSITORY:TAG).
    #[arg(value_name = "REPOSITORY[:TAG]")]
    pub filter: Option<String>,
    /// Only the image IDs, one per image.
    #[arg(short, long)]
    pub quiet: bool,
    /// Show the full image IDs.
    #[arg(long)]
    pub no_trunc: bool,
    /// Show the manifest digests (what tells apart two manifests of one image
    /// ID, e.g. the same image loaded with compressed and plain layers).
    #[arg(long)]
    pub digests: bool,
    /// The output format: table, json, or a template per row with docker's
    /// fields (.Repository, .Tag, .ID, .Digest, .CreatedSince, .CreatedAt, .Size).
    #[arg(long, default_value = "table", value_name = "FORMAT")]
    pub format: ListFormat,
}

/// One row: an image under one of its names (or none).
struct Row<'a> {
    repository: &'a str,
    tag: &'a str,
    image: &'a images::LocalImage,
}

/// Lists the images.
pub fn run(args: &ImagesArgs, global: &GlobalArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let all = images::local_images(&store)?;
    let mut out = printer.stdout();
    let mut rows = Vec::new();
    for image in &all {
        if image.names.is_empty() {
            rows.push(Row {
                repository: "<none>",
                tag: "<none>",
                image,
            });
        }
        for name in &image.names {
            let repository = repository_of(name);
            let tag = name
                .get(repository.len() + 1..)
                .filter(|t| !t.is_empty())
                .unwrap_or("<none>");
            rows.push(Row {
                repository,
                tag,
                image,
            });
        }
    }
    rows.sort_by_key(|r| (r.repository == "<none>", r.repository, r.tag));
    if let Some(filter) = &args.filter {
        rows.retain(
            |r| match filter.rsplit_once(':').filter(|(_, t)| !t.contains('/')) {
                Some((repo, tag)) => r.repository == repo && r.tag == tag,
                None => r.repository == filter,
            },
        );
    }
    let id = |image: &images::LocalImage| {
        if args.no_trunc {
            image.id().to_string()
        } else {
            short_id(image.id()).to_string()
        }
    };
    if args.quiet {
        let mut seen = std::collections::BTreeSet::new();
        for row in &rows {
            if seen.insert(row.image.id()) {
                writeln!(out, "{}", id(row.image))?;
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    match &args.format {
        ListFormat::Template(text) => {
            let now = format::now();
            for r in &rows {
                let created = r.image.image.config.created.as_deref();
                let row = json!({
                    "Repository": r.repository,
                    "Tag": r.tag,
                    "ID": id(r.image),
                    "Digest": r.image.top.digest,
                    "CreatedSince": format::age(created, now),
                    "CreatedAt": created,
                    "Size": format::size(r.image.size()),
                });
                writeln!(out, "{}", template::render(text, &row)?)?;
            }
        }
        ListFormat::Json => {
            let list: Vec<_> = rows
                .iter()
                .map(|r| {
                    json!({
                        "Repository": r.repository,
                        "Tag": r.tag,
                        "Id": r.image.id(),
                        "Digest": r.image.top.digest,
                        "Names": r.image.names,
                        "Created": r.image.image.config.created,
                        "Size": r.image.size(),
                    })
                })
                .collect();
            writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
        }
        ListFormat::Table => {
            let now = format::now();
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    let mut row = vec![r.repository.to_string(), r.tag.to_string()];
                    if args.digests {
                        row.push(r.image.top.digest.to_string());
                    }
                    row.extend([
                        id(r.image),
                        format::age(r.image.image.config.created.as_deref(), now),
                        format::size(r.image.size()),
                    ]);
                    row
                })
                .collect();
            let mut header = vec!["REPOSITORY", "TAG"];
            if args.digests {
                header.push("DIGEST");
            }
            header.extend(["IMAGE ID", "CREATED", "SIZE"]);
            write!(out, "{}", format::table(&header, &cells))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
