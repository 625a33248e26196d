//! `berth load`: read images from an OCI layout or docker-archive tar (from
//! stdin unless `-i` names a file), like `docker load`.

use super::GlobalArgs;
use crate::printer::Printer;
use anyhow::Context;
use berth_store::archive;
use clap::Args;
use std::fs::File;
use std::io::{self, IsTerminal, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `berth load`.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Read from this file instead of stdin.
    #[arg(short, long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Print nothing.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Loads the archive and names what it loaded.
pub fn run(args: &LoadArgs, global: &GlobalArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let loaded = match &args.input {
        Some(path) => {
            let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
            archive::load(&store, file).with_context(|| format!("loading {}", path.display()))?
        }
        None if io::stdin().is_terminal() => anyhow::bail!(
            "refusing to read an image archive from a terminal\nhint: use -i FILE or redirect stdin"
        ),
        None => archive::load(&store, io::stdin().lock()).context("loading from stdin")?,
    };
    if !args.quiet {
        let mut out = printer.stdout();
        for image in &loaded {
            if image.names.is_empty() {
                writeln!(out, "Loaded image ID: {}", image.id)?;
            }
            for name in &image.names {
                writeln!(out, "Loaded image: {name}")?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
