//! `berth system df` (what uses the space) and `berth system prune` (remove
//! stopped containers, unused images and build cache), as docker's; the
//! top-level `berth prune` is `system prune` without the question.

use super::GlobalArgs;
use super::image::{confirm, prune_images, write_deleted_images};
use super::images::format;
use crate::format::{OutputFormat, write_rows};
use crate::printer::Printer;
use anyhow::Context as _;
use berth_builder::cache::CacheRecord;
use berth_builder::prune::{PruneOptions, prune};
use berth_containers::{self as containers, ContainerRecord, ContainerRoots, State, control};
use berth_store::collect::{Reclaimed, tree_size};
use berth_store::images::{self, LocalImage};
use berth_store::{Digest, Store};
use clap::{Args, Subcommand};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::process::ExitCode;

/// Arguments of `berth system`.
#[derive(Debug, Args)]
pub struct SystemArgs {
    #[command(subcommand)]
    pub command: SystemCommand,
}

/// The subcommands of `berth system`.
#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Show what uses the space: images, containers, volumes, build cache.
    Df(DfArgs),
    /// Remove stopped containers, dangling images and unreferenced content
    /// (-a: every unused image and the build cache).
    Prune(PruneArgs),
}

/// Arguments of `berth system df`.
#[derive(Debug, Args)]
pub struct DfArgs {
    /// Show each image and container (only `-v`: `--verbose` is berth's log level).
    #[arg(short = 'v', id = "df_verbose")]
    pub each: bool,
    /// The output format: table, `table TEMPLATE`, json or a Go template
    /// (.Type, .TotalCount, .Active, .Size, .Reclaimable).
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
}

/// Arguments of `berth system prune` and `berth prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove every image no container uses, and the build cache (cache
    /// records, RUN cache mounts, context hash caches, partial downloads).
    #[arg(short, long)]
    pub all: bool,
    /// Do not ask for confirmation (`berth prune` never asks).
    #[arg(short, long)]
    pub force: bool,
}

/// Runs a subcommand of `berth system`.
pub fn run(args: &SystemArgs, global: &GlobalArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    match &args.command {
        SystemCommand::Df(args) => df(args, global, printer),
        SystemCommand::Prune(args) => {
            let mut warning =
                String::from("WARNING! This will remove:\n  - all stopped containers\n");
            warning.push_str(if args.all {
                "  - all images without at least one container associated to them\n  - all build cache\n"
            } else {
                "  - all dangling images\n  - unreferenced blobs and snapshots\n"
            });
            if !args.force && !confirm(printer, &warning)? {
                return Ok(ExitCode::SUCCESS);
            }
            system_prune(args.all, global, printer)
        }
    }
}

/// `berth prune`: system prune, without the question (scripts call it).
pub fn run_prune(
    args: &PruneArgs,
    global: &GlobalArgs,
    printer: Printer,
) -> anyhow::Result<ExitCode> {
    system_prune(args.all, global, printer)
}

/// Removes stopped containers, then unused images, then whatever nothing
/// references any more; reports as docker does.
fn system_prune(all: bool, global: &GlobalArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let mut out = printer.stdout();
    let mut bytes = 0;
    let mut deleted = Vec::new();
    for record in stopped_containers(&store)? {
        let size = tree_size(&containers::container_dir(&store, &record.id));
        match control::remove(&store, &record.id, false) {
            Ok(_) => {
                bytes += size;
                deleted.push(record.id);
            }
            // Started or removed meanwhile: not this prune's to remove.
            Err(
                containers::ContainerError::Running(_) | containers::ContainerError::NotFound(_),
            ) => {}
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!(
                    "removing the stopped container {}",
                    record.short_id()
                )));
            }
        }
    }
    if !deleted.is_empty() {
        writeln!(out, "Deleted Containers:")?;
        for id in &deleted {
            writeln!(out, "{id}")?;
        }
        writeln!(out)?;
    }
    let (removed, images_reclaimed) = prune_images(&store, all, printer)?;
    write_deleted_images(&mut out, &removed)?;
    let on_wait = || {
        let _ = writeln!(printer.stderr(), "waiting for running builds to finish");
    };
    let rest = prune(&store, PruneOptions { all }, &[&ContainerRoots], &on_wait)
        .with_context(|| format!("pruning the local store {}", store.root().display()))?;
    let mut total = Reclaimed::default();
    total.add(&images_reclaimed);
    total.add(&rest);
    writeln!(
        printer.stderr(),
        "removed {} containers, {} blobs, {} snapshots, {} cache records, {} other entries",
        deleted.len(),
        total.blobs,
        total.snapshots,
        total.records,
        total.other
    )?;
    writeln!(
        out,
        "Total reclaimed space: {}",
        format::docker_size(total.bytes + bytes)
    )?;
    Ok(ExitCode::SUCCESS)
}

/// The containers that are not running: created and exited ones, after their
/// records are brought up to date.
fn stopped_containers(store: &Store) -> anyhow::Result<Vec<ContainerRecord>> {
    let mut stopped = Vec::new();
    for record in containers::list(store)? {
        if let Some(record) = control::reconcile(store, record)?
            && matches!(record.state, State::Created | State::Exited { .. })
        {
            stopped.push(record);
        }
    }
    Ok(stopped)
}

/// What one kind of thing uses: docker's `system df` row.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Usage {
    /// How many there are.
    pub total: usize,
    /// How many are in use.
    pub active: usize,
    /// The bytes they take.
    pub size: u64,
    /// The bytes a prune could free.
    pub reclaimable: u64,
}

impl Usage {
    fn row(&self, kind: &str, with_percent: bool) -> Value {
        let reclaimable = format::docker_size(self.reclaimable);
        json!({
            "Type": kind,
            "TotalCount": self.total.to_string(),
            "Active": self.active.to_string(),
            "Size": format::docker_size(self.size),
            "Reclaimable": if with_percent && self.size > 0 {
                format!("{reclaimable} ({}%)", self.reclaimable * 100 / self.size)
            } else {
                reclaimable
            },
        })
    }
}

/// The blobs (digest → size) and snapshots (diff IDs) an image holds.
fn holdings(image: &LocalImage) -> (BTreeMap<Digest, u64>, BTreeSet<Digest>) {
    let mut blobs = BTreeMap::new();
    for d in [
        &image.top,
        &image.image.descriptor,
        &image.image.manifest.config,
    ]
    .into_iter()
    .chain(image.image.manifest.layers.iter())
    {
        blobs.insert(d.digest.clone(), d.size);
    }
    let snapshots = image.image.config.rootfs.diff_ids.iter().cloned().collect();
    (blobs, snapshots)
}

/// Sums what the images hold, each blob and snapshot once.
fn image_bytes<'a>(
    store: &Store,
    images: impl Iterator<Item = &'a LocalImage>,
    snapshot_sizes: &mut BTreeMap<Digest, u64>,
) -> u64 {
    let mut blobs = BTreeMap::new();
    let mut snapshots = BTreeSet::new();
    for image in images {
        let (b, s) = holdings(image);
        blobs.extend(b);
        snapshots.extend(s);
    }
    let snapshot_bytes: u64 = snapshots
        .into_iter()
        .map(|d| {
            *snapshot_sizes
                .entry(d.clone())
                .or_insert_with(|| tree_size(&store.snapshot_path(&d)))
        })
        .sum();
    blobs.values().sum::<u64>() + snapshot_bytes
}

/// The images' usage: every image, the ones containers use, the bytes of
/// their blobs and unpacked snapshots (each once), and what only unused
/// images hold.
pub fn image_usage(store: &Store) -> anyhow::Result<Usage> {
    let all = images::local_images(store)?;
    let in_use = containers::images_in_use(store)?;
    let mut unique: BTreeMap<Digest, &LocalImage> = BTreeMap::new();
    for image in &all {
        unique.entry(image.top.digest.clone()).or_insert(image);
    }
    let active: Vec<&LocalImage> = unique
        .values()
        .copied()
        .filter(|i| in_use.contains(&i.top.digest) || in_use.contains(&i.image.descriptor.digest))
        .collect();
    let mut sizes = BTreeMap::new();
    let size = image_bytes(store, unique.values().copied(), &mut sizes);
    let kept = image_bytes(store, active.iter().copied(), &mut sizes);
    Ok(Usage {
        total: unique.len(),
        active: active.len(),
        size,
        reclaimable: size - kept.min(size),
    })
}

/// The containers' usage: the size of each one's writable layer.
pub fn container_usage(store: &Store) -> anyhow::Result<Usage> {
    let mut usage = Usage::default();
    for record in containers::list(store)? {
        let size = tree_size(&containers::container_dir(store, &record.id).join("upper"));
        usage.total += 1;
        usage.size += size;
        if record.is_running() {
            usage.active += 1;
        } else {
            usage.reclaimable += size;
        }
    }
    Ok(usage)
}

/// The build cache's usage: its records, the layers only they hold, and the
/// RUN cache mounts; all of it is reclaimable (`prune --all`).
pub fn build_cache_usage(store: &Store) -> anyhow::Result<Usage> {
    let mut held = BTreeSet::new();
    for image in images::local_images(store)? {
        held.extend(holdings(&image).0.into_keys());
    }
    let mut usage = Usage::default();
    for path in berth_builder::cache::roots(store).files()? {
        usage.total += 1;
        usage.size += tree_size(&path);
        let record = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<CacheRecord>(&bytes).ok());
        if let Some(layer) = record.and_then(|r| r.layer)
            && held.insert(layer.descriptor.digest.clone())
        {
            usage.size += store.blobs().size(&layer.descriptor.digest).unwrap_or(0);
        }
    }
    usage.size += tree_size(&store.root().join("cache-mounts"));
    usage.reclaimable = usage.size;
    Ok(usage)
}

/// `berth system df`.
fn df(args: &DfArgs, global: &GlobalArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let output = OutputFormat::parse(args.format.as_deref())?;
    let store = global.open_store()?;
    let rows = [
        image_usage(&store)?.row("Images", true),
        container_usage(&store)?.row("Containers", true),
        // berth has no named volumes: bind mounts belong to the host.
        Usage::default().row("Local Volumes", true),
        build_cache_usage(&store)?.row("Build Cache", false),
    ];
    let mut out = printer.stdout();
    if args.each {
        return verbose(&store, &mut out).map(|()| ExitCode::SUCCESS);
    }
    write_rows(
        &mut out,
        &output,
        &[
            ("TYPE", "Type"),
            ("TOTAL", "TotalCount"),
            ("ACTIVE", "Active"),
            ("SIZE", "Size"),
            ("RECLAIMABLE", "Reclaimable"),
        ],
        &rows,
    )?;
    Ok(ExitCode::SUCCESS)
}

/// `system df -v`: each image and container.
fn verbose(store: &Store, out: &mut dyn std::io::Write) -> anyhow::Result<()> {
    let all = images::local_images(store)?;
    let records = containers::list(store)?;
    let mut sizes = BTreeMap::new();
    let now = format::now();
    writeln!(out, "Images space usage:\n")?;
    let mut rows = Vec::new();
    for image in &all {
        let size = image_bytes(store, std::iter::once(image), &mut sizes);
        let users = records
            .iter()
            .filter(|r| {
                r.image_digest == image.top.digest
                    || r.image_digest == image.image.descriptor.digest
            })
            .count();
        let names = if image.names.is_empty() {
            vec!["<none>:<none>".to_string()]
        } else {
            image.names.clone()
        };
        for name in names {
            let repository = images::repository_of(&name).to_string();
            let tag = name
                .get(repository.len() + 1..)
                .unwrap_or("<none>")
                .to_string();
            rows.push(json!({
                "Repository": repository,
                "Tag": tag,
                "ID": images::short_id(image.id()),
                "CreatedSince": format::age(image.image.config.created.as_deref(), now),
                "Size": format::docker_size(size),
                "Containers": users.to_string(),
            }));
        }
    }
    write_rows(
        out,
        &OutputFormat::Table { template: None },
        &[
            ("REPOSITORY", "Repository"),
            ("TAG", "Tag"),
            ("IMAGE ID", "ID"),
            ("CREATED", "CreatedSince"),
            ("SIZE", "Size"),
            ("CONTAINERS", "Containers"),
        ],
        &rows,
    )?;
    writeln!(out, "\nContainers space usage:\n")?;
    let rows: Vec<Value> = records
        .iter()
        .map(|r| {
            let size = tree_size(&containers::container_dir(store, &r.id).join("upper"));
            json!({
                "ID": r.short_id(),
                "Image": r.image,
                "Command": format!("\"{}\"", format::truncate(&r.command.join(" "), 20)),
                "LocalVolumes": "0",
                "Size": format::docker_size(size),
                "RunningFor": format!("{} ago", format::duration(now - r.created)),
                "Names": r.name,
            })
        })
        .collect();
    write_rows(
        out,
        &OutputFormat::Table { template: None },
        &[
            ("CONTAINER ID", "ID"),
            ("IMAGE", "Image"),
            ("COMMAND", "Command"),
            ("LOCAL VOLUMES", "LocalVolumes"),
            ("SIZE", "Size"),
            ("CREATED", "RunningFor"),
            ("NAMES", "Names"),
        ],
        &rows,
    )?;
    writeln!(out, "\nLocal Volumes space usage:\n")?;
    writeln!(out, "VOLUME NAME   LINKS     SIZE")?;
    let cache = build_cache_usage(store)?;
    writeln!(
        out,
        "\nBuild cache usage: {}",
        format::docker_size(cache.size)
    )?;
    Ok(())
}
