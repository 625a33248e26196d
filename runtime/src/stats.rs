//! Container resource statistics in runc's `events --stats` shape.

use serde::Serialize;
use std::collections::BTreeMap;

fn is_zero(value: &u64) -> bool {
    *value == 0
}

/// The `data` of a runc stats event.
#[derive(Debug, Default, Serialize)]
pub struct Stats {
    /// CPU usage and throttling.
    pub cpu: Cpu,
    /// Memory usage.
    pub memory: Memory,
    /// Process counts.
    pub pids: Pids,
    /// Block I/O.
    pub blkio: Blkio,
    /// Huge page usage by page size.
    pub hugetlb: BTreeMap<String, Hugetlb>,
}

/// CPU statistics.
#[derive(Debug, Default, Serialize)]
pub struct Cpu {
    /// Time used, in nanoseconds.
    pub usage: CpuUsage,
    /// CFS throttling.
    pub throttling: Throttling,
}

/// CPU time used, in nanoseconds.
#[derive(Debug, Default, Serialize)]
pub struct CpuUsage {
    /// Total time.
    #[serde(skip_serializing_if = "is_zero")]
    pub total: u64,
    /// Total time per CPU.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu: Vec<u64>,
    /// Kernel time per CPU.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_kernel: Vec<u64>,
    /// User time per CPU.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub percpu_user: Vec<u64>,
    /// Time in kernel mode.
    pub kernel: u64,
    /// Time in user mode.
    pub user: u64,
}

/// CFS throttling counters.
#[derive(Debug, Default, Serialize)]
pub struct Throttling {
    /// Enforcement periods elapsed.
    #[serde(skip_serializing_if = "is_zero")]
    pub periods: u64,
    /// Periods in which the group was throttled.
    #[serde(rename = "throttledPeriods", skip_serializing_if = "is_zero")]
    pub throttled_periods: u64,
    /// Total throttled time, in nanoseconds.
    #[serde(rename = "throttledTime", skip_serializing_if = "is_zero")]
    pub throttled_time: u64,
}

/// Memory statistics.
#[derive(Debug, Default, Serialize)]
pub struct Memory {
    /// Page cache, in bytes.
    #[serde(skip_serializing_if = "is_zero")]
    pub cache: u64,
    /// Memory.
    pub usage: MemoryEntry,
    /// Memory plus swap.
    pub swap: MemoryEntry,
    /// Kernel memory.
    pub kernel: MemoryEntry,
    /// Kernel TCP buffers.
    #[serde(rename = "kernelTCP")]
    pub kernel_tcp: MemoryEntry,
    /// The controller's raw counters (memory.stat).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub raw: BTreeMap<String, u64>,
}

/// One memory counter set.
#[derive(Debug, Default, Serialize)]
pub struct MemoryEntry {
    /// The limit in bytes.
    pub limit: u64,
    /// Current usage in bytes.
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    /// Highest usage recorded.
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    /// Times the limit was hit.
    pub failcnt: u64,
}

/// Process counts.
#[derive(Debug, Default, Serialize)]
pub struct Pids {
    /// Processes in the container.
    #[serde(skip_serializing_if = "is_zero")]
    pub current: u64,
    /// The pids limit, 0 when unlimited.
    #[serde(skip_serializing_if = "is_zero")]
    pub limit: u64,
}

/// Block I/O counters, recursive over the cgroup subtree.
#[derive(Debug, Default, Serialize)]
pub struct Blkio {
    /// Bytes transferred.
    #[serde(
        rename = "ioServiceBytesRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_service_bytes_recursive: Vec<BlkioEntry>,
    /// Requests issued.
    #[serde(rename = "ioServicedRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_serviced_recursive: Vec<BlkioEntry>,
    /// Requests queued.
    #[serde(rename = "ioQueueRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_queued_recursive: Vec<BlkioEntry>,
    /// Time spent servicing requests.
    #[serde(
        rename = "ioServiceTimeRecursive",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub io_service_time_recursive: Vec<BlkioEntry>,
    /// Time spent waiting in queues.
    #[serde(rename = "ioWaitTimeRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_wait_time_recursive: Vec<BlkioEntry>,
    /// Requests merged.
    #[serde(rename = "ioMergedRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_merged_recursive: Vec<BlkioEntry>,
    /// Disk time.
    #[serde(rename = "ioTimeRecursive", skip_serializing_if = "Vec::is_empty")]
    pub io_time_recursive: Vec<BlkioEntry>,
    /// Sectors transferred.
    #[serde(rename = "sectorsRecursive", skip_serializing_if = "Vec::is_empty")]
    pub sectors_recursive: Vec<BlkioEntry>,
}

/// One block I/O counter of one device.
#[derive(Debug, Default, Serialize)]
pub struct BlkioEntry {
    /// Device major number.
    pub major: u64,
    /// Device minor number.
    pub minor: u64,
    /// Operation (`Read`, `Write`, ...), empty for totals.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub op: String,
    /// The counter.
    pub value: u64,
}

/// Huge page usage of one page size.
#[derive(Debug, Default, Serialize)]
pub struct Hugetlb {
    /// Usage in bytes.
    #[serde(skip_serializing_if = "is_zero")]
    pub usage: u64,
    /// Highest usage recorded.
    #[serde(skip_serializing_if = "is_zero")]
    pub max: u64,
    /// Allocation failures.
    pub failcnt: u64,
}

impl From<libcgroups::stats::Stats> for Stats {
    fn from(stats: libcgroups::stats::Stats) -> Stats {
        let cpu = stats.cpu;
        let memory = stats.memory;
        let entry = |data: libcgroups::stats::MemoryData| MemoryEntry {
            limit: data.limit,
            usage: data.usage,
            max: data.max_usage,
            failcnt: data.fail_count,
        };
        let blkio = |entries: Vec<libcgroups::stats::BlkioDeviceStat>| {
            entries
                .into_iter()
                .map(|e| BlkioEntry {
                    major: e.major,
                    minor: e.minor,
                    op: e.op_type.unwrap_or_default(),
                    value: e.value,
                })
                .collect()
        };
        Stats {
            cpu: Cpu {
                usage: CpuUsage {
                    total: cpu.usage.usage_total,
                    percpu: cpu.usage.per_core_usage_total,
                    percpu_kernel: cpu.usage.per_core_usage_kernel,
                    percpu_user: cpu.usage.per_core_usage_user,
                    kernel: cpu.usage.usage_kernel,
                    user: cpu.usage.usage_user,
                },
                throttling: Throttling {
                    periods: cpu.throttling.periods,
                    throttled_periods: cpu.throttling.throttled_periods,
                    throttled_time: cpu.throttling.throttled_time,
                },
            },
            memory: Memory {
                cache: memory.cache,
                usage: entry(memory.memory),
                swap: entry(memory.memswap),
                kernel: entry(memory.kernel),
                kernel_tcp: entry(memory.kernel_tcp),
                raw: memory.stats.into_iter().collect(),
            },
            pids: Pids {
                current: stats.pids.current,
                limit: stats.pids.limit,
            },
            blkio: Blkio {
                io_service_bytes_recursive: blkio(stats.blkio.service_bytes),
                io_serviced_recursive: blkio(stats.blkio.serviced),
                io_queued_recursive: blkio(stats.blkio.queued),
                io_service_time_recursive: blkio(stats.blkio.service_time),
                io_wait_time_recursive: blkio(stats.blkio.wait_time),
                io_merged_recursive: blkio(stats.blkio.merged),
                io_time_recursive: blkio(stats.blkio.time),
                sectors_recursive: blkio(stats.blkio.sectors),
            },
            hugetlb: stats
                .hugetlb
                .into_iter()
                .map(|(size, h)| {
                    (
                        size,
                        Hugetlb {
                            usage: h.usage,
                            max: h.max_usage,
                            failcnt: h.fail_count,
                        },
                    )
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converted_stats_use_runc_field_names() {
        let mut raw = libcgroups::stats::Stats::default();
        raw.cpu.usage.usage_total = 42;
        raw.cpu.usage.per_core_usage_total = vec![40, 2];
        raw.memory.memory.usage = 4096;
        raw.memory.memory.limit = 8192;
        raw.pids.current = 3;
        let value = serde_json::to_value(Stats::from(raw)).unwrap();
        assert_eq!(value["cpu"]["usage"]["total"], 42);
        assert_eq!(value["cpu"]["usage"]["percpu"][1], 2);
        assert_eq!(value["memory"]["usage"]["usage"], 4096);
        assert_eq!(value["memory"]["usage"]["limit"], 8192);
        assert_eq!(value["pids"]["current"], 3);
        assert!(value["memory"].get("kernelTCP").is_some());
    }
}
