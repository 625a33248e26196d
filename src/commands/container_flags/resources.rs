//! Resource-limit and restart-policy flags of `berth run` and `berth create`,
//! with docker's names and units (`berth_containers::resources` parses and
//! checks them).

use berth_containers::resources::{
    Limits, Resources, RestartPolicy, Ulimit, Update, parse_cpus, parse_int, parse_restart,
    parse_size, parse_swap, parse_ulimit,
};
use clap::Args;

/// The cgroup limits `run`, `create` and `update` share, with docker's names.
#[derive(Debug, Args)]
pub struct CgroupFlags {
    /// Memory limit (e.g. 512m, 1g).
    #[arg(short = 'm', long, value_name = "BYTES", value_parser = size)]
    pub memory: Option<i64>,
    /// Memory plus swap limit; -1 for unlimited swap.
    #[arg(long, value_name = "BYTES", value_parser = swap, allow_hyphen_values = true)]
    pub memory_swap: Option<i64>,
    /// Memory soft limit.
    #[arg(long, value_name = "BYTES", value_parser = size)]
    pub memory_reservation: Option<i64>,
    /// Number of CPUs (e.g. 1.5).
    #[arg(long, value_name = "DECIMAL", value_parser = cpus)]
    pub cpus: Option<i64>,
    /// CPU shares (relative weight).
    #[arg(short = 'c', long, value_name = "INT", value_parser = int("--cpu-shares"))]
    pub cpu_shares: Option<i64>,
    /// Limit the CPU CFS (Completely Fair Scheduler) period, in microseconds.
    #[arg(long, value_name = "INT", value_parser = int("--cpu-period"))]
    pub cpu_period: Option<i64>,
    /// Limit the CPU CFS quota, in microseconds per period.
    #[arg(long, value_name = "INT", value_parser = int("--cpu-quota"), allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1).
    #[arg(long, value_name = "LIST")]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes in which to allow execution (0-3, 0,1).
    #[arg(long, value_name = "LIST")]
    pub cpuset_mems: Option<String>,
    /// Tune the container's pids limit (-1 for unlimited).
    #[arg(long, value_name = "INT", value_parser = int("--pids-limit"), allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
}

impl CgroupFlags {
    /// The limits given, `None` for each flag not given.
    pub fn update(&self, restart: Option<RestartPolicy>) -> Update {
        Update {
            memory: self.memory,
            memory_swap: self.memory_swap,
            memory_reservation: self.memory_reservation,
            nano_cpus: self.cpus,
            cpu_shares: self.cpu_shares,
            cpu_period: self.cpu_period,
            cpu_quota: self.cpu_quota,
            cpuset_cpus: self.cpuset_cpus.clone(),
            cpuset_mems: self.cpuset_mems.clone(),
            pids_limit: self.pids_limit,
            restart,
        }
    }
}

/// What a container may use, and what happens when it exits.
#[derive(Debug, Args)]
pub struct ResourceFlags {
    /// The cgroup limits (`--memory-swap` defaults to twice `--memory`).
    #[command(flatten)]
    pub cgroup: CgroupFlags,
    /// Ulimit options (e.g. nofile=1024:2048); repeatable.
    #[arg(long, value_name = "NAME=SOFT[:HARD]", value_parser = ulimit)]
    pub ulimit: Vec<Ulimit>,
    /// Size of /dev/shm (default 64m).
    #[arg(long, value_name = "BYTES", value_parser = size)]
    pub shm_size: Option<i64>,
    /// Disable the OOM killer.
    #[arg(long)]
    pub oom_kill_disable: bool,
    /// Restart policy to apply when the container exits: no, always,
    /// on-failure[:max-retries] or unless-stopped.
    #[arg(long, value_name = "POLICY", default_value = "no", value_parser = restart)]
    pub restart: RestartPolicy,
}

impl ResourceFlags {
    /// The limits and restart policy the flags ask for.
    pub fn limits(&self) -> Limits {
        Limits {
            resources: Resources {
                memory: self.cgroup.memory.unwrap_or(0),
                memory_swap: self.cgroup.memory_swap.unwrap_or(0),
                memory_reservation: self.cgroup.memory_reservation.unwrap_or(0),
                nano_cpus: self.cgroup.cpus.unwrap_or(0),
                cpu_shares: self.cgroup.cpu_shares.unwrap_or(0),
                cpu_period: self.cgroup.cpu_period.unwrap_or(0),
                cpu_quota: self.cgroup.cpu_quota.unwrap_or(0),
                cpuset_cpus: self.cgroup.cpuset_cpus.clone().unwrap_or_default(),
                cpuset_mems: self.cgroup.cpuset_mems.clone().unwrap_or_default(),
                pids_limit: self.cgroup.pids_limit.unwrap_or(0),
                ulimits: self.ulimit.clone(),
                shm_size: self.shm_size.unwrap_or(0),
                oom_kill_disable: self.oom_kill_disable,
            },
            restart: self.restart,
        }
    }
}

pub(crate) fn size(text: &str) -> Result<i64, String> {
    parse_size(text).map_err(|e| e.to_string())
}

pub(crate) fn swap(text: &str) -> Result<i64, String> {
    parse_swap(text).map_err(|e| e.to_string())
}

pub(crate) fn cpus(text: &str) -> Result<i64, String> {
    parse_cpus(text).map_err(|e| e.to_string())
}

pub(crate) fn int(flag: &'static str) -> impl Fn(&str) -> Result<i64, String> + Clone {
    move |text| parse_int(flag, text).map_err(|e| e.to_string())
}

fn ulimit(text: &str) -> Result<Ulimit, String> {
    parse_ulimit(text).map_err(|e| e.to_string())
}

pub(crate) fn restart(text: &str) -> Result<RestartPolicy, String> {
    parse_restart(text).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        flags: ResourceFlags,
    }

    #[test]
    fn flags_parse_with_dockers_names_and_units() {
        let cli = Cli::try_parse_from([
            "run",
            "-m",
            "512m",
            "--memory-swap",
            "-1",
            "--cpus=1.5",
            "-c",
            "512",
            "--pids-limit",
            "-1",
            "--ulimit",
            "nofile=1024:2048",
            "--ulimit",
            "core=0",
            "--shm-size",
            "1g",
            "--restart",
            "on-failure:2",
        ])
        .unwrap();
        let limits = cli.flags.limits();
        assert_eq!(limits.resources.memory, 512 << 20);
        assert_eq!(limits.resources.memory_swap, -1);
        assert_eq!(limits.resources.nano_cpus, 1_500_000_000);
        assert_eq!(limits.resources.cpu_shares, 512);
        assert_eq!(limits.resources.pids_limit, -1);
        assert_eq!(limits.resources.ulimits.len(), 2);
        assert_eq!(limits.resources.shm_size, 1 << 30);
        assert_eq!(limits.restart.to_string(), "on-failure:2");
        let none = Cli::try_parse_from(["run"]).unwrap().flags.limits();
        assert_eq!(none, Limits::default());
    }

    #[test]
    fn bad_values_are_refused_with_dockers_words() {
        for (args, want) in [
            (&["--memory", "1x"][..], "invalid size: '1x'"),
            (
                &["--cpus", "lots"],
                "failed to parse lots as a rational number",
            ),
            (
                &["--ulimit", "nofile=2:1"],
                "soft limit must be less than or equal",
            ),
            (&["--restart", "sometimes"], "unknown policy 'sometimes'"),
            (&["--pids-limit", "99999999999999999999"], "--pids-limit"),
        ] {
            let err = Cli::try_parse_from(std::iter::once("run").chain(args.iter().copied()))
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{args:?}: {err}");
        }
    }
}
