//! `berth images`: list the images in the local store. SIZE is what the
//! image's blobs take in the store (compressed layers, config, manifest).

pub mod format;

use super::GlobalArgs;
use crate::format::{OutputFormat, write_rows};
use crate::printer::Printer;
use berth_store::images::{self, repository_of, short_id};
use clap::Args;
use serde_json::{Value, json};
use std::io::Write as _;
use std::process::ExitCode;

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
    /// The output format: table, `table TEMPLATE`, json (one object per
    /// line), or a Go template per row with docker's fields (.Repository,
    /// .Tag, .ID, .Digest, .CreatedSince, .CreatedAt, .Size); `\t` is a tab.
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
}

/// One row: an image under one of its names (or none).
struct Row<'a> {
    repository: &'a str,
    tag: &'a str,
    image: &'a images::LocalImage,
}

/// Lists the images.
pub fn run(args: &ImagesArgs, global: &GlobalArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let output = OutputFormat::parse(args.format.as_deref())?;
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
    let now = format::now();
    let table: Vec<Value> = rows
        .iter()
        .map(|r| {
            let created = r.image.image.config.created.as_deref();
            json!({
                "Containers": "N/A",
                "CreatedAt": created_at(created),
                "CreatedSince": format::age(created, now),
                "Digest": r.image.top.digest.to_string(),
                "ID": id(r.image),
                "Repository": r.repository,
                "SharedSize": "N/A",
                "Size": format::size(r.image.size()),
                "Tag": r.tag,
                "UniqueSize": "N/A",
                "VirtualSize": format::size(r.image.size()),
            })
        })
        .collect();
    let mut columns = vec![("REPOSITORY", "Repository"), ("TAG", "Tag")];
    if args.digests {
        columns.push(("DIGEST", "Digest"));
    }
    columns.extend([
        ("IMAGE ID", "ID"),
        ("CREATED", "CreatedSince"),
        ("SIZE", "Size"),
    ]);
    write_rows(&mut out, &output, &columns, &table)?;
    Ok(ExitCode::SUCCESS)
}

/// docker's CreatedAt: `2023-05-18 22:34:17 +0000 UTC`; empty when unknown.
pub fn created_at(created: Option<&str>) -> String {
    match created.and_then(images::time::parse_rfc3339) {
        Some(secs) => {
            let text = berth_store::oci::rfc3339(secs);
            format!(
                "{} +0000 UTC",
                text.trim_end_matches('Z').replacen('T', " ", 1)
            )
        }
        None => String::new(),
    }
}
