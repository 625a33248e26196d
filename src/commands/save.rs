//! `berth save`: write images to an OCI layout or docker-archive tar, on
//! stdout unless `-o` names a file (like `docker save`).

use super::GlobalArgs;
use crate::printer::Printer;
use anyhow::Context;
use berth_builder::output::{ArchiveFormat, Named, write_archive};
use berth_store::atomic;
use berth_store::images;
use clap::{Args, ValueEnum};
use std::fs::{self, File};
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// Archive formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SaveFormat {
    /// A Docker archive, as `docker save` writes (the default).
    DockerArchive,
    /// An OCI image layout in a tar.
    OciArchive,
}

/// Arguments of `berth save`.
#[derive(Debug, Args)]
pub struct SaveArgs {
    /// The images: names, name:tag, name@digest or image ID prefixes.
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,
    /// Write to this file instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The archive format.
    #[arg(long, value_enum, default_value = "docker-archive")]
    pub format: SaveFormat,
}

/// Writes the archive.
pub fn run(args: &SaveArgs, global: &GlobalArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    if args.output.is_none() && io::stdout().is_terminal() {
        anyhow::bail!(
            "refusing to write an image archive to a terminal\nhint: use -o FILE or redirect stdout"
        );
    }
    let store = global.open_store()?;
    // The lease keeps rmi and prune from removing blobs while they are written.
    let _lease = store.lease().context("taking a lease on the local store")?;
    // One entry per image; an image named twice goes in once with both names.
    let mut chosen: Vec<(images::LocalImage, Vec<String>)> = Vec::new();
    for reference in &args.images {
        let selected = images::resolve(&store, reference)?;
        let names: Vec<String> = selected.by_name.into_iter().collect();
        match chosen
            .iter_mut()
            .find(|(i, _)| i.top.digest == selected.image.top.digest)
        {
            Some((_, existing)) => existing.extend(names),
            None => chosen.push((selected.image, names)),
        }
    }
    let named: Vec<Named<'_>> = chosen
        .iter()
        .map(|(image, names)| Named::new(&image.image, names))
        .collect();
    let format = match args.format {
        SaveFormat::DockerArchive => ArchiveFormat::Docker,
        SaveFormat::OciArchive => ArchiveFormat::Oci,
    };
    match &args.output {
        None => {
            let out = write_archive(&store, &named, format, BufWriter::new(printer.stdout()))
                .context("writing the archive to stdout")?;
            out.into_inner()
                .map_err(|e| e.into_error())
                .and_then(|mut w| w.flush())
                .context("writing the archive to stdout")?;
        }
        Some(path) => {
            // Written beside the destination and renamed, so a failed save
            // never leaves a truncated archive under the name.
            let tmp = atomic::temp_sibling(path);
            let result = (|| {
                let file =
                    File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
                let out = write_archive(&store, &named, format, BufWriter::new(file))
                    .with_context(|| format!("writing {}", path.display()))?;
                let file = out
                    .into_inner()
                    .map_err(|e| e.into_error())
                    .with_context(|| format!("writing {}", path.display()))?;
                file.sync_all()
                    .with_context(|| format!("writing {}", path.display()))?;
                fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
            })();
            if result.is_err() {
                let _ = fs::remove_file(&tmp);
            }
            result?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
