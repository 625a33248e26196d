//! Resource limits and restart policies as docker has them: the flag values
//! (`--memory 512m`, `--cpus 1.5`, `--ulimit nofile=1024:2048`,
//! `--restart on-failure:3`) parsed with docker's units and messages, checked
//! with the daemon's rules (moby's `verifyPlatformContainerResources`), and
//! turned into the bundle's OCI `linux.resources`, `process.rlimits` and
//! `/dev/shm` size. The record keeps [`Resources`] and [`RestartPolicy`] with
//! docker's `HostConfig` key names, so `inspect` shows them as docker does.
//!
//! The runtime writes `linux.resources` into the cgroup files;
//! [`cgroup_files`] says which files and values that gives on cgroup v1 and
//! v2 (runc's and libcgroups' mapping), for the tests and for users reading
//! their cgroups.

use oci_spec::runtime::{
    LinuxCpu, LinuxMemory, LinuxPids, LinuxResources, PosixRlimit, PosixRlimitBuilder,
    PosixRlimitType, Spec,
};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;

/// The smallest memory limit docker allows (6 MiB).
pub const MIN_MEMORY: i64 = 6 * 1024 * 1024;

/// `/dev/shm`'s size when `--shm-size` is not given: docker's 64 MiB.
pub const DEFAULT_SHM_SIZE: i64 = 64 * 1024 * 1024;

/// The CFS period docker uses for `--cpus`, in microseconds.
const CPUS_PERIOD: u64 = 100_000;

/// A value or combination of limits docker refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// A size (`--memory`, `--shm-size`, …) that does not parse.
    #[error("invalid size: '{0}'")]
    Size(String),
    /// A `--cpus` value that is not a number.
    #[error("failed to parse {0} as a rational number")]
    Cpus(String),
    /// A `--cpus` value finer than a nano-CPU.
    #[error("value {0} is too precise: --cpus takes at most 9 decimals")]
    CpusPrecision(String),
    /// An integer flag that does not parse or does not fit.
    #[error("invalid value '{value}' for {flag}: {reason}")]
    Number {
        /// The flag.
        flag: &'static str,
        /// The value.
        value: String,
        /// Why.
        reason: String,
    },
    /// A `--ulimit` that does not parse.
    #[error("invalid ulimit argument: {0}")]
    UlimitFormat(String),
    /// A `--ulimit` of a resource Linux does not have.
    #[error("invalid ulimit type: {0}")]
    UlimitType(String),
    /// A `--ulimit` whose soft limit exceeds its hard limit.
    #[error("ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")]
    UlimitOrder {
        /// The soft limit.
        soft: i64,
        /// The hard limit.
        hard: i64,
    },
    /// A `--restart` value docker does not know.
    #[error(
        "invalid restart policy: unknown policy '{0}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
    )]
    RestartUnknown(String),
    /// A retry count on a policy that has none.
    #[error("invalid restart policy: maximum retry count can only be used with 'on-failure'")]
    RestartCountNotAllowed,
    /// A retry count that is not a non-negative integer.
    #[error("invalid restart policy: maximum retry count must be a non-negative integer: '{0}'")]
    RestartCount(String),
    /// Any of the daemon's rules for combinations, with docker's wording.
    #[error("{0}")]
    Rule(&'static str),
    /// `--cpus` beyond the machine.
    #[error("range of CPUs is from 0.01 to {count}.00, as there are only {count} CPUs available")]
    CpusRange {
        /// The CPUs this machine has.
        count: usize,
    },
}

/// What a container may use, with docker's `HostConfig` key names. Zero and
/// empty mean "not set", as in docker.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Resources {
    /// `--memory`, bytes.
    pub memory: i64,
    /// `--memory-swap`, bytes of memory plus swap; -1 is unlimited.
    pub memory_swap: i64,
    /// `--memory-reservation`, bytes.
    pub memory_reservation: i64,
    /// `--cpus`, in billionths of a CPU.
    pub nano_cpus: i64,
    /// `--cpu-shares`, the relative weight.
    pub cpu_shares: i64,
    /// `--cpu-period`, microseconds.
    pub cpu_period: i64,
    /// `--cpu-quota`, microseconds per period.
    pub cpu_quota: i64,
    /// `--cpuset-cpus`, e.g. `0-2,4`.
    pub cpuset_cpus: String,
    /// `--cpuset-mems`.
    pub cpuset_mems: String,
    /// `--pids-limit`; 0 is unset, -1 unlimited.
    pub pids_limit: i64,
    /// `--ulimit`s.
    pub ulimits: Vec<Ulimit>,
    /// `--shm-size`, bytes (0: docker's 64 MiB).
    pub shm_size: i64,
    /// `--oom-kill-disable`.
    #[serde(rename = "OomKillDisable")]
    pub oom_kill_disable: bool,
}

/// Everything `berth run` asks for about limits and restarts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// The resource limits.
    pub resources: Resources,
    /// `--restart`.
    pub restart: RestartPolicy,
}

impl Limits {
    /// Checks the limits (see [`validate`]) and docker's rule that a
    /// container removed at exit has no restart policy. Returns docker's
    /// warnings.
    pub fn validate(&mut self, auto_remove: bool, host: Host) -> Result<Vec<String>, LimitError> {
        if auto_remove && !self.restart.is_none() {
            return Err(LimitError::Rule("Conflicting options: --restart and --rm"));
        }
        validate(&mut self.resources, host)
    }
}

/// One `--ulimit`, as docker's `HostConfig.Ulimits` holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Ulimit {
    /// The resource, e.g. `nofile`.
    pub name: String,
    /// The soft limit.
    pub soft: i64,
    /// The hard limit.
    pub hard: i64,
}

/// What happens when a container's process exits, as docker's
/// `HostConfig.RestartPolicy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RestartPolicy {
    /// The policy.
    pub name: RestartName,
    /// For `on-failure`, the most restarts (0: no maximum).
    pub maximum_retry_count: u32,
}

/// The restart policies docker has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum RestartName {
    /// Never restart (docker's `no`, shown as an empty name by old daemons).
    #[default]
    #[serde(rename = "no")]
    No,
    /// Always restart, unless stopped by the user.
    #[serde(rename = "always")]
    Always,
    /// Restart after a non-zero exit.
    #[serde(rename = "on-failure")]
    OnFailure,
    /// As `always`; differs only when the host restarts (out of scope).
    #[serde(rename = "unless-stopped")]
    UnlessStopped,
}

impl RestartPolicy {
    /// Whether the policy ever restarts.
    pub fn is_none(&self) -> bool {
        self.name == RestartName::No
    }
}

impl fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.name {
            RestartName::No => "no",
            RestartName::Always => "always",
            RestartName::OnFailure => "on-failure",
            RestartName::UnlessStopped => "unless-stopped",
        };
        match (self.name, self.maximum_retry_count) {
            (RestartName::OnFailure, n) if n > 0 => write!(f, "{name}:{n}"),
            _ => f.write_str(name),
        }
    }
}

/// Parses `--restart`: `no`, `always`, `unless-stopped`, `on-failure[:N]`.
pub fn parse_restart(text: &str) -> Result<RestartPolicy, LimitError> {
    let (name, count) = match text.split_once(':') {
        Some((name, count)) => (name, Some(count)),
        None => (text, None),
    };
    let name = match name {
        "" | "no" => RestartName::No,
        "always" => RestartName::Always,
        "on-failure" => RestartName::OnFailure,
        "unless-stopped" => RestartName::UnlessStopped,
        other => return Err(LimitError::RestartUnknown(other.to_string())),
    };
    let maximum_retry_count = match count {
        None => 0,
        Some(_) if name != RestartName::OnFailure => {
            return Err(LimitError::RestartCountNotAllowed);
        }
        Some(count) => count
            .parse::<u32>()
            .map_err(|_| LimitError::RestartCount(count.to_string()))?,
    };
    Ok(RestartPolicy {
        name,
        maximum_retry_count,
    })
}

/// Parses a size as docker's `RAMInBytes`: a decimal number with an optional
/// binary unit (`b`, `k`, `m`, `g`, `t`, `p`, any case, optionally followed
/// by `b` or `ib`), e.g. `512m`, `1.5g`, `1024`.
pub fn parse_size(text: &str) -> Result<i64, LimitError> {
    let bad = || LimitError::Size(text.to_string());
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    if number.is_empty() || number.starts_with('.') || number.ends_with('.') || number.len() > 40 {
        return Err(bad());
    }
    let unit = unit.trim_start().to_ascii_lowercase();
    let unit = unit
        .strip_suffix("ib")
        .or_else(|| unit.strip_suffix('b'))
        .unwrap_or(&unit);
    let shift = match unit {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        "p" => 50,
        _ => return Err(bad()),
    };
    let value: f64 = number.parse().map_err(|_| bad())?;
    let bytes = value * (1u64 << shift) as f64;
    // i64::MAX as f64 rounds up to 2^63, which no i64 holds.
    if !bytes.is_finite() || bytes >= i64::MAX as f64 {
        return Err(bad());
    }
    Ok(bytes as i64)
}

/// Parses `--memory-swap`: a size, or `-1` for unlimited.
pub fn parse_swap(text: &str) -> Result<i64, LimitError> {
    if text.trim() == "-1" {
        Ok(-1)
    } else {
        parse_size(text)
    }
}

/// Parses `--cpus` into nano-CPUs, exactly (docker takes it as a rational).
pub fn parse_cpus(text: &str) -> Result<i64, LimitError> {
    let bad = || LimitError::Cpus(text.to_string());
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() && fraction.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let fraction = fraction.trim_end_matches('0');
    if fraction.len() > 9 {
        return Err(LimitError::CpusPrecision(text.to_string()));
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| bad())?
    };
    let mut nanos: i64 = 0;
    for (place, digit) in fraction.bytes().enumerate() {
        nanos += i64::from(digit - b'0') * 10i64.pow(8 - place as u32);
    }
    whole
        .checked_mul(1_000_000_000)
        .and_then(|n| n.checked_add(nanos))
        .ok_or_else(bad)
}

/// Parses an integer flag value.
pub fn parse_int(flag: &'static str, text: &str) -> Result<i64, LimitError> {
    text.trim().parse::<i64>().map_err(|e| LimitError::Number {
        flag,
        value: text.to_string(),
        reason: e.to_string(),
    })
}

/// Parses `--ulimit NAME=SOFT[:HARD]`, as docker's `ParseUlimit`.
pub fn parse_ulimit(text: &str) -> Result<Ulimit, LimitError> {
    let (name, limits) = text
        .split_once('=')
        .ok_or_else(|| LimitError::UlimitFormat(text.to_string()))?;
    if rlimit_type(name).is_none() {
        return Err(LimitError::UlimitType(name.to_string()));
    }
    let number = |s: &str| {
        s.parse::<i64>()
            .map_err(|_| LimitError::UlimitFormat(text.to_string()))
    };
    let (soft, hard) = match limits.split_once(':') {
        Some((soft, hard)) => (number(soft)?, number(hard)?),
        None => {
            let both = number(limits)?;
            (both, both)
        }
    };
    // Docker takes -1 as unlimited; anything else below zero is an error.
    if soft < -1 || hard < -1 {
        return Err(LimitError::UlimitFormat(text.to_string()));
    }
    if hard != -1 && (soft == -1 || soft > hard) {
        return Err(LimitError::UlimitOrder { soft, hard });
    }
    Ok(Ulimit {
        name: name.to_string(),
        soft,
        hard,
    })
}

fn rlimit_type(name: &str) -> Option<PosixRlimitType> {
    Some(match name {
        "as" => PosixRlimitType::RlimitAs,
        "core" => PosixRlimitType::RlimitCore,
        "cpu" => PosixRlimitType::RlimitCpu,
        "data" => PosixRlimitType::RlimitData,
        "fsize" => PosixRlimitType::RlimitFsize,
        "locks" => PosixRlimitType::RlimitLocks,
        "memlock" => PosixRlimitType::RlimitMemlock,
        "msgqueue" => PosixRlimitType::RlimitMsgqueue,
        "nice" => PosixRlimitType::RlimitNice,
        "nofile" => PosixRlimitType::RlimitNofile,
        "nproc" => PosixRlimitType::RlimitNproc,
        "rss" => PosixRlimitType::RlimitRss,
        "rtprio" => PosixRlimitType::RlimitRtprio,
        "rttime" => PosixRlimitType::RlimitRttime,
        "sigpending" => PosixRlimitType::RlimitSigpending,
        "stack" => PosixRlimitType::RlimitStack,
        _ => return None,
    })
}

/// What the host offers, for the daemon's checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Host {
    /// How many CPUs there are.
    pub cpus: usize,
    /// Whether swap can be limited (v1 `memory.memsw.*`, v2 `memory.swap.max`).
    pub swap_limit: bool,
}

impl Host {
    /// This machine.
    pub fn detect() -> Host {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let swap_limit = std::path::Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
            .exists()
            || std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
        Host { cpus, swap_limit }
    }
}

/// Checks the limits as docker's daemon does for a new container and fills
/// in its defaults (swap twice the memory, or unlimited where swap cannot
/// be limited). Returns docker's warnings.
pub fn validate(resources: &mut Resources, host: Host) -> Result<Vec<String>, LimitError> {
    let mut warnings = Vec::new();
    check_memory(resources)?;
    if resources.memory > 0 && resources.memory_swap == 0 {
        if host.swap_limit {
            // Docker's default: as much swap as memory.
            resources.memory_swap = resources.memory.saturating_mul(2);
        } else {
            warnings.push(
                "Your kernel does not support swap limit capabilities or the cgroup is not \
                 mounted. Memory limited without swap."
                    .to_string(),
            );
            resources.memory_swap = -1;
        }
    }
    if resources.oom_kill_disable && resources.memory == 0 {
        warnings.push(
            "OOM killer is disabled for the container, but no memory limit is set, this can \
             result in the system running out of resources."
                .to_string(),
        );
    }
    check_cpu(resources, host)?;
    if resources.shm_size < 0 {
        return Err(LimitError::Rule("SHM size can not be less than 0"));
    }
    Ok(warnings)
}

fn check_memory(r: &Resources) -> Result<(), LimitError> {
    if r.memory < 0 || r.memory_reservation < 0 || r.memory_swap < -1 {
        return Err(LimitError::Rule("memory limits can not be negative"));
    }
    if r.memory > 0 && r.memory < MIN_MEMORY {
        return Err(LimitError::Rule("Minimum memory limit allowed is 6MB"));
    }
    if r.memory == 0 && r.memory_swap > 0 {
        return Err(LimitError::Rule(
            "You should always set the Memory limit when using Memoryswap limit, see usage",
        ));
    }
    if r.memory > 0 && r.memory_swap > 0 && r.memory_swap < r.memory {
        return Err(LimitError::Rule(
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ));
    }
    if r.memory_reservation > 0 && r.memory_reservation < MIN_MEMORY {
        return Err(LimitError::Rule(
            "Minimum memory reservation allowed is 6MB",
        ));
    }
    if r.memory > 0 && r.memory_reservation > 0 && r.memory < r.memory_reservation {
        return Err(LimitError::Rule(
            "Minimum memory limit can not be less than memory reservation limit, see usage",
        ));
    }
    Ok(())
}

fn check_cpu(r: &Resources, host: Host) -> Result<(), LimitError> {
    if r.nano_cpus > 0 && r.cpu_period > 0 {
        return Err(LimitError::Rule(
            "Conflicting options: Nano CPUs and CPU Period cannot both be set",
        ));
    }
    if r.nano_cpus > 0 && r.cpu_quota > 0 {
        return Err(LimitError::Rule(
            "Conflicting options: Nano CPUs and CPU Quota cannot both be set",
        ));
    }
    let most = i64::try_from(host.cpus)
        .unwrap_or(i64::MAX)
        .saturating_mul(1_000_000_000);
    if r.nano_cpus < 0 || r.nano_cpus > most {
        return Err(LimitError::CpusRange { count: host.cpus });
    }
    if r.cpu_shares < 0 {
        return Err(LimitError::Rule("CPU shares can not be negative"));
    }
    if r.cpu_period != 0 && !(1000..=1_000_000).contains(&r.cpu_period) {
        return Err(LimitError::Rule(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
        ));
    }
    if r.cpu_quota > 0 && r.cpu_quota < 1000 {
        return Err(LimitError::Rule(
            "CPU cfs quota can not be less than 1ms (i.e. 1000)",
        ));
    }
    for (set, what) in [(&r.cpuset_cpus, "cpus"), (&r.cpuset_mems, "mems")] {
        if !set.is_empty() && !valid_cpuset(set) {
            return Err(LimitError::Number {
                flag: if what == "cpus" {
                    "--cpuset-cpus"
                } else {
                    "--cpuset-mems"
                },
                value: set.clone(),
                reason: format!("invalid value {set} for cpuset {what}"),
            });
        }
    }
    Ok(())
}

/// Whether `set` is a list of numbers and ranges (`0-2,4`), as the kernel
/// reads `cpuset.cpus`.
fn valid_cpuset(set: &str) -> bool {
    set.len() <= 4096
        && set.split(',').all(|part| {
            let number = |s: &str| !s.is_empty() && s.len() <= 6 && s.parse::<u32>().is_ok();
            match part.split_once('-') {
                Some((a, b)) => {
                    number(a) && number(b) && a.parse::<u32>().ok() <= b.parse::<u32>().ok()
                }
                None => number(part),
            }
        })
}

/// The limits as the runtime-spec's `linux.resources` (without the device
/// rules, which the bundle has already); `None` where nothing is limited.
pub fn linux_resources(r: &Resources) -> LinuxResources {
    let mut resources = LinuxResources::default();
    let mut memory = LinuxMemory::default();
    let mut any_memory = false;
    if r.memory > 0 {
        memory.set_limit(Some(r.memory));
        any_memory = true;
    }
    if r.memory_swap != 0 {
        memory.set_swap(Some(r.memory_swap));
        any_memory = true;
    }
    if r.memory_reservation > 0 {
        memory.set_reservation(Some(r.memory_reservation));
        any_memory = true;
    }
    if r.oom_kill_disable {
        memory.set_disable_oom_killer(Some(true));
        any_memory = true;
    }
    if any_memory {
        resources.set_memory(Some(memory));
    }
    let mut cpu = LinuxCpu::default();
    let mut any_cpu = false;
    if r.nano_cpus > 0 {
        cpu.set_period(Some(CPUS_PERIOD));
        // Exact in i128: nano_cpus is at most the machine's CPUs × 10^9.
        let quota = i128::from(r.nano_cpus) * i128::from(CPUS_PERIOD) / 1_000_000_000;
        cpu.set_quota(Some(i64::try_from(quota).unwrap_or(i64::MAX)));
        any_cpu = true;
    }
    if r.cpu_period > 0 {
        cpu.set_period(u64::try_from(r.cpu_period).ok());
        any_cpu = true;
    }
    if r.cpu_quota != 0 {
        cpu.set_quota(Some(r.cpu_quota));
        any_cpu = true;
    }
    if r.cpu_shares > 0 {
        cpu.set_shares(u64::try_from(r.cpu_shares).ok());
        any_cpu = true;
    }
    if !r.cpuset_cpus.is_empty() {
        cpu.set_cpus(Some(r.cpuset_cpus.clone()));
        any_cpu = true;
    }
    if !r.cpuset_mems.is_empty() {
        cpu.set_mems(Some(r.cpuset_mems.clone()));
        any_cpu = true;
    }
    if any_cpu {
        resources.set_cpu(Some(cpu));
    }
    if r.pids_limit != 0 {
        let mut pids = LinuxPids::default();
        // Docker: zero or less is unlimited, which the runtime-spec spells -1.
        pids.set_limit(if r.pids_limit > 0 { r.pids_limit } else { -1 });
        resources.set_pids(Some(pids));
    }
    resources
}

/// The `process.rlimits` entries of the `--ulimit`s (-1 is unlimited).
fn rlimits(ulimits: &[Ulimit]) -> Vec<PosixRlimit> {
    let unlimited = |v: i64| u64::try_from(v).unwrap_or(u64::MAX);
    ulimits
        .iter()
        .filter_map(|u| {
            PosixRlimitBuilder::default()
                .typ(rlimit_type(&u.name)?)
                .soft(unlimited(u.soft))
                .hard(unlimited(u.hard))
                .build()
                .ok()
        })
        .collect()
}

/// Puts the limits into a bundle's config: `linux.resources` (beside the
/// device rules), `process.rlimits` (a `--ulimit` replaces the default of the
/// same resource) and the size of `/dev/shm`.
pub fn apply_to_spec(spec: &mut Spec, r: &Resources) {
    if let Some(linux) = spec.linux_mut() {
        let wanted = linux_resources(r);
        let mut resources = linux.resources().clone().unwrap_or_default();
        resources.set_memory(*wanted.memory());
        resources.set_cpu(wanted.cpu().clone());
        resources.set_pids(*wanted.pids());
        linux.set_resources(Some(resources));
    }
    if let Some(process) = spec.process_mut() {
        let given = rlimits(&r.ulimits);
        let mut all: Vec<PosixRlimit> = process
            .rlimits()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|old| !given.iter().any(|new| new.typ() == old.typ()))
            .collect();
        all.extend(given);
        process.set_rlimits((!all.is_empty()).then_some(all));
    }
    let shm = if r.shm_size > 0 {
        r.shm_size
    } else {
        DEFAULT_SHM_SIZE
    };
    if let Some(mounts) = spec.mounts_mut() {
        for mount in mounts.iter_mut() {
            if mount.destination() == std::path::Path::new("/dev/shm") {
                let mut options: Vec<String> = mount
                    .options()
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|o| !o.starts_with("size="))
                    .collect();
                // In KiB, as docker writes it; the kernel rounds to pages.
                options.push(format!("size={}k", shm / 1024 + i64::from(shm % 1024 != 0)));
                mount.set_options(Some(options));
            }
        }
    }
}

/// Puts the limits into a rendered `config.json` (see [`apply_to_spec`]).
pub fn apply_to_config(config: &[u8], r: &Resources) -> Result<Vec<u8>, serde_json::Error> {
    let mut spec: Spec = serde_json::from_slice(config)?;
    apply_to_spec(&mut spec, r);
    serde_json::to_vec_pretty(&spec)
}

/// The cgroup version whose files [`cgroup_files`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    /// Legacy or hybrid hierarchies: one per controller.
    V1,
    /// The unified hierarchy.
    V2,
}

/// The cgroup files (`controller/file` for v1, `file` for v2) and values
/// the runtime writes for `resources`, as runc and libcgroups map them:
/// on v2 `memory.swap.max` is swap minus memory, `cpu.max` is
/// `quota period`, and `cpu.weight` comes from the shares by runc's formula.
pub fn cgroup_files(resources: &LinuxResources, version: CgroupVersion) -> Vec<(String, String)> {
    let mut files = Vec::new();
    let mut put = |file: &str, value: String| files.push((file.to_string(), value));
    let max = |v: i64| {
        if v < 0 {
            "max".to_string()
        } else {
            v.to_string()
        }
    };
    if let Some(memory) = resources.memory() {
        match version {
            CgroupVersion::V1 => {
                if let Some(limit) = memory.limit() {
                    put("memory/memory.limit_in_bytes", limit.to_string());
                }
                if let Some(swap) = memory.swap() {
                    put("memory/memory.memsw.limit_in_bytes", swap.to_string());
                }
                if let Some(reservation) = memory.reservation() {
                    put("memory/memory.soft_limit_in_bytes", reservation.to_string());
                }
                if memory.disable_oom_killer() == Some(true) {
                    put("memory/memory.oom_control", "1".into());
                }
            }
            CgroupVersion::V2 => {
                if let Some(limit) = memory.limit() {
                    put("memory.max", max(limit));
                }
                match (memory.swap(), memory.limit()) {
                    (Some(swap), _) if swap < 0 => put("memory.swap.max", "max".into()),
                    (Some(swap), Some(limit)) if limit > 0 => {
                        put("memory.swap.max", (swap - limit).max(0).to_string())
                    }
                    _ => {}
                }
                if let Some(reservation) = memory.reservation() {
                    put("memory.low", reservation.to_string());
                }
            }
        }
    }
    if let Some(cpu) = resources.cpu() {
        match version {
            CgroupVersion::V1 => {
                if let Some(shares) = cpu.shares() {
                    put("cpu/cpu.shares", shares.to_string());
                }
                if let Some(period) = cpu.period() {
                    put("cpu/cpu.cfs_period_us", period.to_string());
                }
                if let Some(quota) = cpu.quota() {
                    put("cpu/cpu.cfs_quota_us", quota.to_string());
                }
                if let Some(cpus) = cpu.cpus() {
                    put("cpuset/cpuset.cpus", cpus.clone());
                }
                if let Some(mems) = cpu.mems() {
                    put("cpuset/cpuset.mems", mems.clone());
                }
            }
            CgroupVersion::V2 => {
                if let Some(shares) = cpu.shares() {
                    put("cpu.weight", shares_to_weight(shares).to_string());
                }
                if cpu.quota().is_some() || cpu.period().is_some() {
                    let quota = cpu.quota().map_or("max".to_string(), max);
                    put(
                        "cpu.max",
                        format!("{quota} {}", cpu.period().unwrap_or(CPUS_PERIOD)),
                    );
                }
                if let Some(cpus) = cpu.cpus() {
                    put("cpuset.cpus", cpus.clone());
                }
                if let Some(mems) = cpu.mems() {
                    put("cpuset.mems", mems.clone());
                }
            }
        }
    }
    if let Some(pids) = resources.pids() {
        let file = match version {
            CgroupVersion::V1 => "pids/pids.max",
            CgroupVersion::V2 => "pids.max",
        };
        put(file, max(pids.limit()));
    }
    files
}

/// runc's conversion of cgroup v1 CPU shares (2..262144) to a v2 weight
/// (1..10000).
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

/// What `berth update` changes: the flags given, each `None` when absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Update {
    /// `--memory`.
    pub memory: Option<i64>,
    /// `--memory-swap`.
    pub memory_swap: Option<i64>,
    /// `--memory-reservation`.
    pub memory_reservation: Option<i64>,
    /// `--cpus`.
    pub nano_cpus: Option<i64>,
    /// `--cpu-shares`.
    pub cpu_shares: Option<i64>,
    /// `--cpu-period`.
    pub cpu_period: Option<i64>,
    /// `--cpu-quota`.
    pub cpu_quota: Option<i64>,
    /// `--cpuset-cpus`.
    pub cpuset_cpus: Option<String>,
    /// `--cpuset-mems`.
    pub cpuset_mems: Option<String>,
    /// `--pids-limit`.
    pub pids_limit: Option<i64>,
    /// `--restart`.
    pub restart: Option<RestartPolicy>,
}

/// Applies `update` to a container's current limits, with the daemon's
/// rules for updates (moby's `UpdateContainer`). Returns the new limits.
pub fn updated(current: &Resources, update: &Update, host: Host) -> Result<Resources, LimitError> {
    let mut r = current.clone();
    if let Some(memory) = update.memory {
        // Lowering below the swap total is fine; raising past it needs a
        // new swap total too.
        if memory > current.memory_swap && current.memory_swap > 0 && update.memory_swap.is_none() {
            return Err(LimitError::Rule(
                "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time",
            ));
        }
        r.memory = memory;
    }
    if let Some(swap) = update.memory_swap {
        r.memory_swap = swap;
    }
    if let Some(reservation) = update.memory_reservation {
        r.memory_reservation = reservation;
    }
    if let Some(nano) = update.nano_cpus {
        if update.cpu_period.is_some() || update.cpu_quota.is_some() {
            return Err(LimitError::Rule(
                "Conflicting options: Nano CPUs and CPU Period cannot both be set",
            ));
        }
        r.nano_cpus = nano;
        r.cpu_period = 0;
        r.cpu_quota = 0;
    }
    if let Some(period) = update.cpu_period {
        r.cpu_period = period;
        r.nano_cpus = 0;
    }
    if let Some(quota) = update.cpu_quota {
        r.cpu_quota = quota;
        r.nano_cpus = 0;
    }
    if let Some(shares) = update.cpu_shares {
        r.cpu_shares = shares;
    }
    if let Some(cpus) = &update.cpuset_cpus {
        r.cpuset_cpus = cpus.clone();
    }
    if let Some(mems) = &update.cpuset_mems {
        r.cpuset_mems = mems.clone();
    }
    if let Some(pids) = update.pids_limit {
        r.pids_limit = pids;
    }
    check_memory(&r)?;
    check_cpu(&r, host)?;
    Ok(r)
}

/// The first restart delay, docker's 100 ms.
pub const BACKOFF_START: Duration = Duration::from_millis(100);
/// The longest restart delay, docker's one minute.
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// A run at least this long resets the delay, as docker's.
pub const BACKOFF_RESET_AFTER: Duration = Duration::from_secs(10);

/// The restart delay after a run of `ran`, given the delay before it
/// (`None` before the first restart): docker's restart manager doubles it
/// from 100 ms up to a minute, and starts over after a run of 10 s or more.
pub fn next_backoff(previous: Option<Duration>, ran: Duration) -> Duration {
    match previous {
        Some(delay) if ran < BACKOFF_RESET_AFTER => (delay * 2).min(BACKOFF_MAX),
        _ => BACKOFF_START,
    }
}

/// Whether a process that exited with `code` restarts under `policy`, after
/// `restarts` restarts so far; a container the user stopped never does.
pub fn should_restart(
    policy: RestartPolicy,
    code: i32,
    restarts: u32,
    stopped_by_user: bool,
) -> bool {
    if stopped_by_user {
        return false;
    }
    match policy.name {
        RestartName::No => false,
        RestartName::Always | RestartName::UnlessStopped => true,
        RestartName::OnFailure => {
            code != 0 && (policy.maximum_retry_count == 0 || restarts < policy.maximum_retry_count)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: Host = Host {
        cpus: 4,
        swap_limit: true,
    };

    #[test]
    fn sizes_parse_with_dockers_binary_units() {
        for (text, want) in [
            ("512m", Some(536_870_912)),
            ("512M", Some(536_870_912)),
            ("512mb", Some(536_870_912)),
            ("512MiB", Some(536_870_912)),
            ("1g", Some(1 << 30)),
            ("1.5g", Some(1_610_612_736)),
            ("1024", Some(1024)),
            ("64k", Some(65_536)),
            ("2 m", Some(2 << 20)),
            ("0", Some(0)),
            ("8191p", Some(8191 << 50)),
            // Hostile and malformed values.
            ("8192p", None),
            ("", None),
            ("m", None),
            ("-1", None),
            ("-512m", None),
            ("1x", None),
            ("1.2.3m", None),
            (".5g", None),
            ("5.g", None),
            ("1e9", None),
            ("NaN", None),
            ("inf", None),
            ("99999999999999999999999999999g", None),
            (&"9".repeat(10_000), None),
        ] {
            assert_eq!(parse_size(text).ok(), want, "{text:.40}");
        }
        assert_eq!(
            parse_size("1x").unwrap_err().to_string(),
            "invalid size: '1x'"
        );
        assert_eq!(parse_swap("-1"), Ok(-1));
        assert_eq!(parse_swap("1g"), Ok(1 << 30));
        assert!(parse_swap("-2").is_err());
    }

    #[test]
    fn cpus_parse_exactly_into_nano_cpus() {
        for (text, want) in [
            ("1.5", Ok(1_500_000_000)),
            ("2", Ok(2_000_000_000)),
            (".25", Ok(250_000_000)),
            ("0.000000001", Ok(1)),
            ("1.100000000000", Ok(1_100_000_000)),
            ("0.0000000001", Err("too precise")),
            ("abc", Err("rational")),
            ("-1", Err("rational")),
            ("", Err("rational")),
            (".", Err("rational")),
            ("1.5.1", Err("rational")),
            ("99999999999999999999", Err("rational")),
            ("9223372037", Err("rational")),
        ] {
            match (parse_cpus(text), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{text}"),
                (Err(e), Err(want)) => assert!(e.to_string().contains(want), "{text}: {e}"),
                (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn ulimits_parse_as_docker_parses_them() {
        let u = |name: &str, soft, hard| Ulimit {
            name: name.into(),
            soft,
            hard,
        };
        for (text, want) in [
            ("nofile=1024:2048", Ok(u("nofile", 1024, 2048))),
            ("nofile=1024", Ok(u("nofile", 1024, 1024))),
            ("core=-1", Ok(u("core", -1, -1))),
            ("nproc=10:-1", Ok(u("nproc", 10, -1))),
            (
                "nofile=2048:1024",
                Err("soft limit must be less than or equal"),
            ),
            ("nofile=-1:10", Err("soft limit must be less than or equal")),
            ("bogus=1", Err("invalid ulimit type: bogus")),
            ("nofile", Err("invalid ulimit argument")),
            ("nofile=", Err("invalid ulimit argument")),
            ("nofile=a:b", Err("invalid ulimit argument")),
            ("nofile=1:2:3", Err("invalid ulimit argument")),
            ("nofile=-5", Err("invalid ulimit argument")),
            (
                "nofile=99999999999999999999",
                Err("invalid ulimit argument"),
            ),
        ] {
            match (parse_ulimit(text), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{text}"),
                (Err(e), Err(want)) => assert!(e.to_string().contains(want), "{text}: {e}"),
                (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn restart_policies_parse_as_docker_spells_them() {
        let p = |name, maximum_retry_count| RestartPolicy {
            name,
            maximum_retry_count,
        };
        for (text, want) in [
            ("no", Ok(p(RestartName::No, 0))),
            ("", Ok(p(RestartName::No, 0))),
            ("always", Ok(p(RestartName::Always, 0))),
            ("unless-stopped", Ok(p(RestartName::UnlessStopped, 0))),
            ("on-failure", Ok(p(RestartName::OnFailure, 0))),
            ("on-failure:2", Ok(p(RestartName::OnFailure, 2))),
            ("always:3", Err("can only be used with 'on-failure'")),
            ("on-failure:-1", Err("non-negative integer")),
            ("on-failure:x", Err("non-negative integer")),
            ("on-failure:99999999999", Err("non-negative integer")),
            ("sometimes", Err("unknown policy 'sometimes'")),
        ] {
            match (parse_restart(text), want) {
                (Ok(got), Ok(want)) => {
                    assert_eq!(got, want, "{text}");
                    assert_eq!(parse_restart(&got.to_string()), Ok(got), "{text}");
                }
                (Err(e), Err(want)) => assert!(e.to_string().contains(want), "{text}: {e}"),
                (got, want) => panic!("{text}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn validation_gives_dockers_messages_and_defaults() {
        let mib = 1 << 20;
        let cases: Vec<(Resources, Result<i64, &str>)> = vec![
            (
                Resources {
                    memory: 512 * mib,
                    ..Default::default()
                },
                Ok(1024 * mib),
            ),
            (
                Resources {
                    memory: 512 * mib,
                    memory_swap: -1,
                    ..Default::default()
                },
                Ok(-1),
            ),
            (
                Resources {
                    memory: 4 * mib,
                    ..Default::default()
                },
                Err("Minimum memory limit allowed is 6MB"),
            ),
            (
                Resources {
                    memory_swap: 512 * mib,
                    ..Default::default()
                },
                Err("You should always set the Memory limit when using Memoryswap limit"),
            ),
            (
                Resources {
                    memory: 512 * mib,
                    memory_swap: 256 * mib,
                    ..Default::default()
                },
                Err("Minimum memoryswap limit should be larger than memory limit"),
            ),
            (
                Resources {
                    memory: 64 * mib,
                    memory_reservation: 128 * mib,
                    ..Default::default()
                },
                Err("Minimum memory limit can not be less than memory reservation limit"),
            ),
            (
                Resources {
                    memory_reservation: mib,
                    ..Default::default()
                },
                Err("Minimum memory reservation allowed is 6MB"),
            ),
            (
                Resources {
                    nano_cpus: 1_500_000_000,
                    cpu_quota: 50_000,
                    ..Default::default()
                },
                Err("Nano CPUs and CPU Quota cannot both be set"),
            ),
            (
                Resources {
                    nano_cpus: 1_500_000_000,
                    cpu_period: 50_000,
                    ..Default::default()
                },
                Err("Nano CPUs and CPU Period cannot both be set"),
            ),
            (
                Resources {
                    nano_cpus: 5_000_000_000,
                    ..Default::default()
                },
                Err("range of CPUs is from 0.01 to 4.00, as there are only 4 CPUs available"),
            ),
            (
                Resources {
                    cpu_period: 999,
                    ..Default::default()
                },
                Err("CPU cfs period can not be less than 1ms"),
            ),
            (
                Resources {
                    cpu_quota: 500,
                    ..Default::default()
                },
                Err("CPU cfs quota can not be less than 1ms"),
            ),
            (
                Resources {
                    cpuset_cpus: "0-2,x".into(),
                    ..Default::default()
                },
                Err("invalid value 0-2,x for cpuset cpus"),
            ),
            (
                Resources {
                    cpuset_cpus: "3-1".into(),
                    ..Default::default()
                },
                Err("for cpuset cpus"),
            ),
            (
                Resources {
                    shm_size: -1,
                    ..Default::default()
                },
                Err("SHM size can not be less than 0"),
            ),
        ];
        for (mut resources, want) in cases {
            let given = resources.clone();
            match (validate(&mut resources, HOST), want) {
                (Ok(_), Ok(swap)) => assert_eq!(resources.memory_swap, swap, "{given:?}"),
                (Err(e), Err(want)) => assert!(e.to_string().contains(want), "{given:?}: {e}"),
                (got, want) => panic!("{given:?}: got {got:?}, want {want:?}"),
            }
        }
        let mut no_swap = Resources {
            memory: 64 << 20,
            ..Default::default()
        };
        let warnings = validate(
            &mut no_swap,
            Host {
                cpus: 1,
                swap_limit: false,
            },
        )
        .unwrap();
        assert_eq!(no_swap.memory_swap, -1);
        assert!(warnings[0].contains("Memory limited without swap"));
    }

    fn limited() -> Resources {
        let mut r = Resources {
            memory: 512 << 20,
            nano_cpus: 1_500_000_000,
            pids_limit: 100,
            cpu_shares: 512,
            memory_reservation: 256 << 20,
            cpuset_cpus: "0".into(),
            ..Default::default()
        };
        validate(&mut r, HOST).unwrap();
        r
    }

    #[test]
    fn limits_map_to_cgroup_v1_files_as_runc_writes_them() {
        let files = cgroup_files(&linux_resources(&limited()), CgroupVersion::V1);
        let want: Vec<(String, String)> = [
            ("memory/memory.limit_in_bytes", "536870912"),
            ("memory/memory.memsw.limit_in_bytes", "1073741824"),
            ("memory/memory.soft_limit_in_bytes", "268435456"),
            ("cpu/cpu.shares", "512"),
            ("cpu/cpu.cfs_period_us", "100000"),
            ("cpu/cpu.cfs_quota_us", "150000"),
            ("cpuset/cpuset.cpus", "0"),
            ("pids/pids.max", "100"),
        ]
        .iter()
        .map(|(f, v)| (f.to_string(), v.to_string()))
        .collect();
        assert_eq!(files, want);
    }

    #[test]
    fn limits_map_to_cgroup_v2_files_as_libcgroups_writes_them() {
        let files = cgroup_files(&linux_resources(&limited()), CgroupVersion::V2);
        let want: Vec<(String, String)> = [
            ("memory.max", "536870912"),
            // v2 limits swap alone: the total minus the memory.
            ("memory.swap.max", "536870912"),
            ("memory.low", "268435456"),
            ("cpu.weight", "20"),
            ("cpu.max", "150000 100000"),
            ("cpuset.cpus", "0"),
            ("pids.max", "100"),
        ]
        .iter()
        .map(|(f, v)| (f.to_string(), v.to_string()))
        .collect();
        assert_eq!(files, want);
        let unlimited = Resources {
            memory: 64 << 20,
            memory_swap: -1,
            pids_limit: -1,
            cpu_quota: -1,
            ..Default::default()
        };
        let files = cgroup_files(&linux_resources(&unlimited), CgroupVersion::V2);
        assert!(files.contains(&("memory.swap.max".into(), "max".into())));
        assert!(files.contains(&("pids.max".into(), "max".into())));
        assert!(files.contains(&("cpu.max".into(), "max 100000".into())));
    }

    #[test]
    fn shares_convert_to_weights_as_runc_does() {
        for (shares, weight) in [
            (2, 1),
            (1024, 39),
            (262_144, 10_000),
            (1, 1),
            (u64::MAX, 10_000),
        ] {
            assert_eq!(shares_to_weight(shares), weight, "{shares}");
        }
    }

    #[test]
    fn nothing_given_limits_nothing() {
        let r = linux_resources(&Resources::default());
        assert!(r.memory().is_none() && r.cpu().is_none() && r.pids().is_none());
    }

    #[test]
    fn the_bundle_gets_resources_rlimits_and_the_shm_size() {
        let user = crate::executor::user::ResolvedUser {
            uid: 0,
            gid: 0,
            additional_gids: vec![],
            home: "/root".into(),
        };
        let mounts = crate::executor::config::container_mounts();
        let config = crate::executor::config::render_json(
            &crate::executor::config::BundleConfig {
                args: &["sh".to_string()],
                env: &[],
                cwd: "/",
                user: &user,
                network: crate::executor::config::Network::None,
                mounts: &mounts,
                hostname: "h",
                terminal: false,
                nofile: Some((4096, 4096)),
            },
            &crate::executor::seccomp::SeccompPolicy::Unconfined,
        )
        .unwrap();
        let mut r = limited();
        r.ulimits = vec![
            parse_ulimit("nofile=1024:2048").unwrap(),
            parse_ulimit("core=-1").unwrap(),
        ];
        r.shm_size = 128 << 20;
        let v: serde_json::Value =
            serde_json::from_slice(&apply_to_config(&config, &r).unwrap()).unwrap();
        let resources = &v["linux"]["resources"];
        assert_eq!(resources["memory"]["limit"], 536_870_912);
        assert_eq!(resources["cpu"]["quota"], 150_000);
        assert_eq!(resources["pids"]["limit"], 100);
        // The device rules stay.
        assert!(resources["devices"].as_array().unwrap().len() > 1);
        assert_eq!(
            v["process"]["rlimits"],
            serde_json::json!([
                {"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 2048},
                {"type": "RLIMIT_CORE", "soft": u64::MAX, "hard": u64::MAX}
            ])
        );
        let shm = v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == "/dev/shm")
            .unwrap();
        let options: Vec<&str> = shm["options"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|o| o.as_str())
            .collect();
        assert!(options.contains(&"size=131072k"), "{options:?}");
        assert_eq!(options.iter().filter(|o| o.starts_with("size=")).count(), 1);
        // Without flags: docker's 64 MiB and the default nofile.
        let v: serde_json::Value =
            serde_json::from_slice(&apply_to_config(&config, &Resources::default()).unwrap())
                .unwrap();
        assert!(v["mounts"].to_string().contains("size=65536k"));
        assert_eq!(v["process"]["rlimits"][0]["soft"], 4096);
        assert!(v["linux"]["resources"]["memory"].is_null());
    }

    #[test]
    fn updates_follow_the_daemons_rules() {
        let current = limited();
        let lower = Update {
            memory: Some(256 << 20),
            ..Default::default()
        };
        assert_eq!(updated(&current, &lower, HOST).unwrap().memory, 256 << 20);
        let past_swap = Update {
            memory: Some(2 << 30),
            ..Default::default()
        };
        assert!(
            updated(&current, &past_swap, HOST)
                .unwrap_err()
                .to_string()
                .contains("Memory limit should be smaller than already set memoryswap limit")
        );
        let with_swap = Update {
            memory: Some(2 << 30),
            memory_swap: Some(4 << 30),
            ..Default::default()
        };
        assert_eq!(
            updated(&current, &with_swap, HOST).unwrap().memory_swap,
            4 << 30
        );
        let below_reservation = Update {
            memory: Some(128 << 20),
            ..Default::default()
        };
        assert!(updated(&current, &below_reservation, HOST).is_err());
        let quota = Update {
            cpu_quota: Some(50_000),
            ..Default::default()
        };
        let r = updated(&current, &quota, HOST).unwrap();
        assert_eq!((r.nano_cpus, r.cpu_quota), (0, 50_000));
        let pids = Update {
            pids_limit: Some(50),
            ..Default::default()
        };
        assert_eq!(updated(&current, &pids, HOST).unwrap().pids_limit, 50);
    }

    #[test]
    fn backoff_doubles_from_100ms_caps_at_a_minute_and_resets_after_10s() {
        let short = Duration::from_secs(1);
        let mut delay = None;
        let mut schedule = Vec::new();
        for _ in 0..12 {
            let next = next_backoff(delay, short);
            schedule.push(next.as_millis());
            delay = Some(next);
        }
        assert_eq!(
            schedule,
            [
                100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 60000, 60000
            ]
        );
        assert_eq!(
            next_backoff(Some(BACKOFF_MAX), Duration::from_secs(10)),
            BACKOFF_START
        );
        assert_eq!(
            next_backoff(Some(BACKOFF_MAX), Duration::from_millis(9999)),
            BACKOFF_MAX
        );
    }

    #[test]
    fn policies_decide_restarts_as_dockers_restart_manager() {
        let always = parse_restart("always").unwrap();
        let unless = parse_restart("unless-stopped").unwrap();
        let twice = parse_restart("on-failure:2").unwrap();
        let failure = parse_restart("on-failure").unwrap();
        let no = parse_restart("no").unwrap();
        for (policy, code, restarts, stopped, want) in [
            (always, 0, 0, false, true),
            (always, 137, 100, false, true),
            (always, 137, 0, true, false),
            (unless, 1, 0, false, true),
            (unless, 1, 0, true, false),
            (twice, 1, 0, false, true),
            (twice, 1, 1, false, true),
            (twice, 1, 2, false, false),
            (twice, 0, 0, false, false),
            (failure, 1, 1000, false, true),
            (no, 1, 0, false, false),
        ] {
            assert_eq!(
                should_restart(policy, code, restarts, stopped),
                want,
                "{policy} {code} {restarts} {stopped}"
            );
        }
    }

    #[test]
    fn the_record_keeps_dockers_host_config_names() {
        let r = Resources {
            memory: 1,
            nano_cpus: 2,
            oom_kill_disable: true,
            ulimits: vec![parse_ulimit("nofile=1:2").unwrap()],
            ..Default::default()
        };
        let v = serde_json::to_value(&r).unwrap();
        for key in [
            "Memory",
            "MemorySwap",
            "NanoCpus",
            "CpuShares",
            "CpusetCpus",
            "PidsLimit",
            "ShmSize",
            "OomKillDisable",
        ] {
            assert!(v.get(key).is_some(), "{key}: {v}");
        }
        assert_eq!(v["Ulimits"][0]["Name"], "nofile");
        let p = serde_json::to_value(parse_restart("on-failure:3").unwrap()).unwrap();
        assert_eq!(
            p,
            serde_json::json!({"Name": "on-failure", "MaximumRetryCount": 3})
        );
        let back: Resources = serde_json::from_str("{}").unwrap();
        assert_eq!(back, Resources::default());
    }
}
