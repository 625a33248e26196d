//! `ps`: the processes of a container.

use crate::GlobalOptions;
use anyhow::{Context, bail};
use std::process::Command;

/// Flags of `ps`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output format: table (the host's ps output for the container's processes) or json (pids).
    #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// The container id.
    pub id: String,
    /// Options passed to the host's ps (default -ef).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

/// Runs `ps`.
pub fn run(global: &GlobalOptions, args: Args) -> anyhow::Result<i32> {
    let pids = super::runtime(global).pids(&args.id)?;
    if args.format == "json" {
        println!("{}", serde_json::to_string(&pids)?);
        return Ok(0);
    }
    let ps_args = if args.ps_args.is_empty() {
        vec!["-ef".to_owned()]
    } else {
        args.ps_args
    };
    let output = Command::new("ps")
        .args(&ps_args)
        .output()
        .context("running the host's ps; hint: install procps or use --format json")?;
    if !output.status.success() {
        bail!(
            "ps {} failed: {}",
            ps_args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let pid_column = header
        .split_whitespace()
        .position(|name| name == "PID")
        .context("the ps output has no PID column")?;
    println!("{header}");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(pid_column)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|pid| pids.contains(&pid)) {
            println!("{line}");
        }
    }
    Ok(0)
}
