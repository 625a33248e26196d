//! `update`: change a container's resource limits.

use crate::GlobalOptions;
use anyhow::Context;
use oci_spec::runtime::{LinuxCpuBuilder, LinuxPidsBuilder, LinuxResources};
use std::io::Read;
use std::path::PathBuf;

/// Flags of `update`, a subset of runc's single-setting flags.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A runtime-spec `linux.resources` JSON file, or `-` for stdin.
    #[arg(short, long)]
    pub resources: Option<PathBuf>,
    /// Memory limit in bytes (suffixes k, m, g accepted).
    #[arg(short, long, value_parser = parse_bytes)]
    pub memory: Option<i64>,
    /// Memory soft limit in bytes.
    #[arg(long, value_parser = parse_bytes)]
    pub memory_reservation: Option<i64>,
    /// Memory plus swap limit in bytes (-1 for unlimited).
    #[arg(long, value_parser = parse_bytes, allow_hyphen_values = true)]
    pub memory_swap: Option<i64>,
    /// CPU CFS period in microseconds.
    #[arg(long)]
    pub cpu_period: Option<u64>,
    /// CPU CFS quota in microseconds (-1 for unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPU shares (relative weight).
    #[arg(long)]
    pub cpu_share: Option<u64>,
    /// CPUs to use (0-3, 0,1).
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes to use.
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    /// Maximum number of processes (-1 for unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// The container id.
    pub id: String,
}

/// Runs `update`.
pub fn run(global: &GlobalOptions, args: Args) -> anyhow::Result<i32> {
    let resources = resources(&args)?;
    super::runtime(global).update(&args.id, &resources)?;
    Ok(0)
}

fn resources(args: &Args) -> anyhow::Result<LinuxResources> {
    let mut resources = match &args.resources {
        Some(path) => {
            let mut text = String::new();
            if path.as_os_str() == "-" {
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("reading resources from stdin")?;
            } else {
                text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading resources {}", path.display()))?;
            }
            serde_json::from_str(&text).with_context(|| {
                format!(
                    "parsing resources {}: not a linux.resources object",
                    path.display()
                )
            })?
        }
        None => LinuxResources::default(),
    };
    if args.memory.is_some() || args.memory_reservation.is_some() || args.memory_swap.is_some() {
        let mut memory = resources.memory().unwrap_or_default();
        if let Some(limit) = args.memory {
            memory.set_limit(Some(limit));
        }
        if let Some(reservation) = args.memory_reservation {
            memory.set_reservation(Some(reservation));
        }
        if let Some(swap) = args.memory_swap {
            memory.set_swap(Some(swap));
        }
        resources.set_memory(Some(memory));
    }
    let cpu_flags = args.cpu_period.is_some()
        || args.cpu_quota.is_some()
        || args.cpu_share.is_some()
        || args.cpuset_cpus.is_some()
        || args.cpuset_mems.is_some();
    if cpu_flags {
        let mut cpu = resources
            .cpu()
            .clone()
            .unwrap_or_else(|| LinuxCpuBuilder::default().build().unwrap_or_default());
        if let Some(period) = args.cpu_period {
            cpu.set_period(Some(period));
        }
        if let Some(quota) = args.cpu_quota {
            cpu.set_quota(Some(quota));
        }
        if let Some(shares) = args.cpu_share {
            cpu.set_shares(Some(shares));
        }
        if let Some(cpus) = &args.cpuset_cpus {
            cpu.set_cpus(Some(cpus.clone()));
        }
        if let Some(mems) = &args.cpuset_mems {
            cpu.set_mems(Some(mems.clone()));
        }
        resources.set_cpu(Some(cpu));
    }
    if let Some(limit) = args.pids_limit {
        resources.set_pids(Some(LinuxPidsBuilder::default().limit(limit).build()?));
    }
    Ok(resources)
}

/// Parses a byte count with an optional k, m or g suffix (powers of 1024).
fn parse_bytes(text: &str) -> anyhow::Result<i64> {
    if text == "-1" {
        return Ok(-1);
    }
    let lower = text.to_ascii_lowercase();
    let trimmed = lower.trim_end_matches('b');
    let (number, multiplier) = match trimmed.chars().last() {
        Some('k') => (&trimmed[..trimmed.len() - 1], 1i64 << 10),
        Some('m') => (&trimmed[..trimmed.len() - 1], 1 << 20),
        Some('g') => (&trimmed[..trimmed.len() - 1], 1 << 30),
        _ => (trimmed, 1),
    };
    let value: i64 = number
        .parse()
        .with_context(|| format!("invalid size {text:?}; hint: use bytes or 64m"))?;
    value
        .checked_mul(multiplier)
        .with_context(|| format!("size {text:?} is too large"))
}
