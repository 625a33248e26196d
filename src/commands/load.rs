//! `berth load`: read images from an OCI layout or docker-archive tar (from
//! stdin unless `-i` names a file), like `docker load`.

use super::GlobalArgs;
use anyhow::Context;
use berth_store::archive;
use clap::Args;
use std::fs::File;
use std::io::{self, IsTerminal};
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
pub fn run(args: &LoadArgs, global: &GlobalArgs) -> anyhow::Result<ExitCode> {
    let store = global.open_store()?;
    let loaded = match &args.input {
        Some(path) => {
            let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
            archive::load(&store, file)
                .map_err(|e| anyhow::anyhow!("loading {}: {e}", path.display()))?
        }
        None if io::stdin().is_terminal() => anyhow::bail!(
            "refusing to read an image archive from a terminal\nhint: use -i FILE or redirect stdin"
        ),
        None => archive::load(&store, io::stdin().lock())
            .map_err(|e| anyhow::anyhow!("loading from stdin: {e}"))?,
    };
    if !args.quiet {
        for image in &loaded {
            if image.names.is_empty() {
                println!("Loaded image ID: {}", image.id);
            }
            for name in &image.names {
                println!("Loaded image: {name}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
