//! `update`: change a container's resource limits.

use crate::GlobalOptions;
use anyhow::Context;
use oci_spec::runtime::{LinuxCpuBuilder, LinuxPidsBuilder, LinuxResources};
use std::io::Read;
use std::path::PathBuf;

/// Flags of `update`: runc's single-setting flags, except the ignored
/// kernel-memory ones and Intel RDT's.
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
    /// CPU realtime period in microseconds.
    #[arg(long)]
    pub cpu_rt_period: Option<u64>,
    /// CPU realtime runtime in microseconds.
    #[arg(long, allow_hyphen_values = true)]
    pub cpu_rt_runtime: Option<i64>,
    /// Block IO weight (10 to 1000).
    #[arg(long, value_parser = clap::value_parser!(u16).range(10..=1000))]
    pub blkio_weight: Option<u16>,
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
        || args.cpuset_mems.is_some()
        || args.cpu_rt_period.is_some()
        || args.cpu_rt_runtime.is_some();
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
        if let Some(period) = args.cpu_rt_period {
            cpu.set_realtime_period(Some(period));
        }
        if let Some(runtime) = args.cpu_rt_runtime {
            cpu.set_realtime_runtime(Some(runtime));
        }
        resources.set_cpu(Some(cpu));
    }
    if let Some(weight) = args.blkio_weight {
        let mut block_io = resources.block_io().clone().unwrap_or_default();
        block_io.set_weight(Some(weight));
        resources.set_block_io(Some(block_io));
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn resources_of(flags: &[&str]) -> LinuxResources {
        let cli =
            Cli::try_parse_from(std::iter::once("update").chain(flags.iter().copied())).unwrap();
        resources(&cli.args).unwrap()
    }

    #[test]
    fn single_flags_map_to_resources() {
        let r = resources_of(&["--memory", "64m", "--memory-swap", "-1", "ID"]);
        let memory = r.memory().unwrap();
        assert_eq!(memory.limit(), Some(64 << 20));
        assert_eq!(memory.swap(), Some(-1));

        let r = resources_of(&[
            "--cpu-quota",
            "-1",
            "--cpu-period",
            "100000",
            "--cpu-share",
            "512",
            "--cpuset-cpus",
            "0",
            "--cpu-rt-period",
            "1000000",
            "--cpu-rt-runtime",
            "950000",
            "ID",
        ]);
        let cpu = r.cpu().as_ref().unwrap();
        assert_eq!(cpu.quota(), Some(-1));
        assert_eq!(cpu.period(), Some(100_000));
        assert_eq!(cpu.shares(), Some(512));
        assert_eq!(cpu.cpus().as_deref(), Some("0"));
        assert_eq!(cpu.realtime_period(), Some(1_000_000));
        assert_eq!(cpu.realtime_runtime(), Some(950_000));

        let r = resources_of(&["--blkio-weight", "300", "--pids-limit", "-1", "ID"]);
        assert_eq!(r.block_io().as_ref().unwrap().weight(), Some(300));
        assert_eq!(r.pids().as_ref().unwrap().limit(), -1);
    }

    #[test]
    fn out_of_range_and_malformed_values_are_rejected() {
        for flags in [
            &["--blkio-weight", "5", "ID"][..],
            &["--memory", "lots", "ID"][..],
            &["--cpu-period", "-5", "ID"][..],
        ] {
            assert!(
                Cli::try_parse_from(std::iter::once("update").chain(flags.iter().copied()))
                    .is_err(),
                "{flags:?}"
            );
        }
    }
}
