//! A running container's resource use, as `docker stats` shows it: read from
//! its cgroup files (v1 per controller, v2 unified, or a hybrid of both) and
//! from its network namespace's `/proc/PID/net/dev`.
//!
//! The container's cgroup is found from its init process
//! (`/proc/PID/cgroup`), pinned by a pidfd whose start time is checked
//! against the record's, so a reused pid never lends its numbers. The
//! cgroup directory is resolved inside its hierarchy's mount with `pathrs`
//! (openat2 `RESOLVE_IN_ROOT`), and every file is read with a bound: the
//! container owns what is written in them.
//!
//! One [`Sample`] is a reading at an instant; CPU % needs two
//! ([`Usage::between`]), as docker computes it: the container's CPU time
//! delta over the host's, times the online CPUs, times 100.

use crate::executor::mount::{open_root, read_in_root};
use crate::runc::pidfd_open;
use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// The most read from one cgroup or `/proc` file: real ones are a few
/// hundred bytes; a bigger one is cut, never read whole.
const FILE_LIMIT: u64 = 64 * 1024;

/// The most read from `/proc/PID/net/dev` (one line per interface, and a
/// container may make thousands).
const NET_DEV_LIMIT: u64 = 1024 * 1024;

/// Errors of reading a container's statistics.
#[derive(Debug, thiserror::Error)]
pub enum StatsError {
    /// The process is gone (or its pid now belongs to another process).
    #[error("process {pid} of the container is not running")]
    NotRunning {
        /// The container's init pid.
        pid: i32,
    },
    /// A file could not be read.
    #[error("reading {}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// No cgroup hierarchy of the process holds this controller's files.
    #[error("no cgroup of process {pid} has the {controller} controller")]
    NoCgroup {
        /// The container's init pid.
        pid: i32,
        /// The controller (`memory`, `cpuacct`, …).
        controller: &'static str,
    },
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> StatsError {
    let path = path.to_path_buf();
    move |source| StatsError::Io { path, source }
}

/// One reading of a container's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sample {
    /// The container's CPU time, in nanoseconds.
    pub cpu_ns: u64,
    /// The host's CPU time (all CPUs, idle included), in nanoseconds.
    pub system_ns: u64,
    /// The CPUs online.
    pub online_cpus: u32,
    /// Memory in use, page cache that can be dropped left out.
    pub mem_usage: u64,
    /// The memory limit: the cgroup's, or the host's memory when that is
    /// smaller (no limit).
    pub mem_limit: u64,
    /// Bytes received and sent on the container's interfaces, loopback not
    /// counted.
    pub net_rx: u64,
    /// See `net_rx`.
    pub net_tx: u64,
    /// Bytes read from and written to block devices.
    pub blk_read: u64,
    /// See `blk_read`.
    pub blk_write: u64,
    /// The processes (and threads) in the cgroup.
    pub pids: u64,
}

/// What `docker stats` shows of a container over an interval.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    /// CPU %: 100 is one CPU busy.
    pub cpu_percent: f64,
    /// Memory in use.
    pub mem_usage: u64,
    /// The memory limit.
    pub mem_limit: u64,
    /// Memory in use over the limit, in %.
    pub mem_percent: f64,
    /// Network bytes received.
    pub net_rx: u64,
    /// Network bytes sent.
    pub net_tx: u64,
    /// Block bytes read.
    pub blk_read: u64,
    /// Block bytes written.
    pub blk_write: u64,
    /// Processes.
    pub pids: u64,
}

impl Usage {
    /// The usage over the interval from `before` to `after` (the counters
    /// as `after` has them, CPU % from the deltas).
    pub fn between(before: &Sample, after: &Sample) -> Usage {
        Usage {
            cpu_percent: cpu_percent(before, after),
            mem_usage: after.mem_usage,
            mem_limit: after.mem_limit,
            mem_percent: if after.mem_limit == 0 {
                0.0
            } else {
                after.mem_usage as f64 / after.mem_limit as f64 * 100.0
            },
            net_rx: after.net_rx,
            net_tx: after.net_tx,
            blk_read: after.blk_read,
            blk_write: after.blk_write,
            pids: after.pids,
        }
    }
}

/// docker's CPU %: the container's CPU time delta over the host's, times the
/// online CPUs, times 100; 0 when either delta is not positive.
pub fn cpu_percent(before: &Sample, after: &Sample) -> f64 {
    let cpu = after.cpu_ns as f64 - before.cpu_ns as f64;
    let system = after.system_ns as f64 - before.system_ns as f64;
    if cpu > 0.0 && system > 0.0 {
        cpu / system * f64::from(after.online_cpus.max(1)) * 100.0
    } else {
        0.0
    }
}

/// The counters as they were when the container's init process started,
/// `pid_start` clock ticks after boot: no CPU time used yet, and the host's
/// CPU time of then (now's, less the wall time since on every online CPU).
/// CPU % from it to `now` is the average over the container's life, as
/// podman's one-shot `stats` gives it. `None` when the time since is not known.
pub fn at_start(now: &Sample, pid_start: u64) -> Option<Sample> {
    let uptime = Path::new("/proc/uptime");
    let text = read_bounded(uptime, FILE_LIMIT).ok()?;
    let uptime_s: f64 = text.split_whitespace().next()?.parse().ok()?;
    // SAFETY: sysconf has no memory-safety preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let ticks = if ticks > 0 { ticks as f64 } else { 100.0 };
    let elapsed_s = uptime_s - pid_start as f64 / ticks;
    baseline(now, elapsed_s)
}

/// [`at_start`]'s arithmetic, for a process that started `elapsed_s`
/// seconds ago.
fn baseline(now: &Sample, elapsed_s: f64) -> Option<Sample> {
    if !elapsed_s.is_finite() || elapsed_s <= 0.0 {
        return None;
    }
    let host_ns = elapsed_s * 1e9 * f64::from(now.online_cpus.max(1));
    Some(Sample {
        cpu_ns: 0,
        system_ns: now.system_ns.saturating_sub(host_ns as u64),
        ..*now
    })
}

/// Reads the counters of the container whose init process is `pid`,
/// started at `pid_start` (clock ticks after boot, as the record has it).
pub fn sample(pid: i32, pid_start: u64) -> Result<Sample, StatsError> {
    let pinned = pidfd_open(pid).map_err(|_| StatsError::NotRunning { pid })?;
    if crate::process_start(pid) != Some(pid_start) {
        return Err(StatsError::NotRunning { pid });
    }
    let groups = Cgroups::of(pid)?;
    let host = host()?;
    let mut sample = Sample {
        system_ns: host.system_ns,
        online_cpus: host.online_cpus,
        ..Sample::default()
    };
    groups.read_into(pid, &mut sample, host.mem_total)?;
    // A container in the host's network namespace has no interfaces of its
    // own: docker shows 0B for it, not the host's traffic.
    if !same_namespace(pid, "net") {
        let path = PathBuf::from(format!("/proc/{pid}/net/dev"));
        let text = read_bounded(&path, NET_DEV_LIMIT).map_err(io_error(&path))?;
        (sample.net_rx, sample.net_tx) = parse_net_dev(&text);
    }
    // What was read is the container's only if its process still runs now:
    // the pidfd keeps the pid from being reused while it is unreaped.
    if exited(&pinned) {
        return Err(StatsError::NotRunning { pid });
    }
    Ok(sample)
}

/// Whether process `pid` is in this process's namespace of `kind`
/// (compared by the namespace files' device and inode).
fn same_namespace(pid: i32, kind: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    let theirs = fs::metadata(format!("/proc/{pid}/ns/{kind}"));
    let ours = fs::metadata(format!("/proc/self/ns/{kind}"));
    match (theirs, ours) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Whether the process a pidfd pins has exited (the pidfd polls readable).
fn exited(pidfd: &OwnedFd) -> bool {
    let mut poll = libc::pollfd {
        fd: pidfd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, a zero timeout.
    let n = unsafe { libc::poll(&mut poll, 1, 0) };
    n != 0
}

/// The host's side of a sample.
struct Host {
    system_ns: u64,
    online_cpus: u32,
    mem_total: u64,
}

fn host() -> Result<Host, StatsError> {
    let stat = Path::new("/proc/stat");
    let text = read_bounded(stat, FILE_LIMIT).map_err(io_error(stat))?;
    // SAFETY: sysconf has no memory-safety preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    // SAFETY: as above.
    let online = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    let meminfo = Path::new("/proc/meminfo");
    let mem = read_bounded(meminfo, FILE_LIMIT).map_err(io_error(meminfo))?;
    Ok(Host {
        system_ns: parse_system_cpu(&text, u64::try_from(ticks).unwrap_or(100)),
        online_cpus: u32::try_from(online).unwrap_or(1).max(1),
        mem_total: parse_meminfo_total(&mem),
    })
}

/// Reads at most `limit` bytes of a file as text (invalid UTF-8 replaced).
fn read_bounded(path: &Path, limit: u64) -> io::Result<String> {
    let mut bytes = Vec::new();
    fs::File::open(path)?.take(limit).read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// A process's cgroup directories: per v1 controller, and the v2 unified one.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Cgroups {
    v1: BTreeMap<String, CgroupDir>,
    unified: Option<CgroupDir>,
}

/// A cgroup directory: a hierarchy's mount point and the path below it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CgroupDir {
    mount: PathBuf,
    path: String,
}

/// A cgroup hierarchy mounted on the host.
#[derive(Debug, PartialEq, Eq)]
struct Mount {
    /// The hierarchy's directory the mount shows (`/` mostly).
    root: String,
    /// Where it is mounted.
    point: PathBuf,
    /// `None` for cgroup2, else the v1 controllers (and `name=…`).
    controllers: Option<Vec<String>>,
}

impl Cgroups {
    /// The cgroup directories of process `pid`, from `/proc/PID/cgroup` and
    /// the host's mount table.
    pub fn of(pid: i32) -> Result<Cgroups, StatsError> {
        let path = PathBuf::from(format!("/proc/{pid}/cgroup"));
        let membership = read_bounded(&path, FILE_LIMIT).map_err(io_error(&path))?;
        let mountinfo = Path::new("/proc/self/mountinfo");
        let mounts = read_bounded(mountinfo, NET_DEV_LIMIT).map_err(io_error(mountinfo))?;
        Ok(Cgroups::from_files(&membership, &parse_mountinfo(&mounts)))
    }

    fn from_files(membership: &str, mounts: &[Mount]) -> Cgroups {
        let mut groups = Cgroups::default();
        for line in membership.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(_), Some(controllers), Some(path)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if controllers.is_empty() {
                if let Some(mount) = mounts.iter().find(|m| m.controllers.is_none()) {
                    groups.unified = Some(mount_relative(mount, path));
                }
                continue;
            }
            for controller in controllers.split(',') {
                let mount = mounts.iter().find(|m| {
                    m.controllers
                        .as_ref()
                        .is_some_and(|c| c.iter().any(|c| c == controller))
                });
                if let Some(mount) = mount {
                    groups
                        .v1
                        .insert(controller.to_string(), mount_relative(mount, path));
                }
            }
        }
        groups
    }

    /// Reads one file of the controller's cgroup (v1 if a v1 hierarchy has
    /// it, else the unified one): `None` if the file is missing.
    fn read(
        &self,
        pid: i32,
        controller: &'static str,
        file: &str,
    ) -> Result<Option<String>, StatsError> {
        match self.v1.get(controller).or(self.unified.as_ref()) {
            Some(dir) => read_cgroup_file(dir, file),
            None => Err(StatsError::NoCgroup { pid, controller }),
        }
    }

    fn is_v1(&self, controller: &str) -> bool {
        self.v1.contains_key(controller)
    }

    fn read_into(&self, pid: i32, sample: &mut Sample, mem_total: u64) -> Result<(), StatsError> {
        // CPU time.
        if self.is_v1("cpuacct") {
            let usage = self.read(pid, "cpuacct", "cpuacct.usage")?;
            sample.cpu_ns = usage.as_deref().map(parse_u64).unwrap_or(0);
        } else {
            let stat = self.read(pid, "cpuacct", "cpu.stat")?;
            sample.cpu_ns = stat
                .as_deref()
                .and_then(|s| flat_key(s, "usage_usec"))
                .unwrap_or(0)
                .saturating_mul(1000);
        }
        // Memory.
        let limit = if self.is_v1("memory") {
            let usage = self.read(pid, "memory", "memory.usage_in_bytes")?;
            let stat = self.read(pid, "memory", "memory.stat")?;
            sample.mem_usage = memory_usage(
                usage.as_deref().map(parse_u64).unwrap_or(0),
                stat.as_deref()
                    .and_then(|s| flat_key(s, "total_inactive_file")),
            );
            self.read(pid, "memory", "memory.limit_in_bytes")?
                .as_deref()
                .map(parse_u64)
        } else {
            let usage = self.read(pid, "memory", "memory.current")?;
            let stat = self.read(pid, "memory", "memory.stat")?;
            sample.mem_usage = memory_usage(
                usage.as_deref().map(parse_u64).unwrap_or(0),
                stat.as_deref().and_then(|s| flat_key(s, "inactive_file")),
            );
            // "max" (no limit) parses as none.
            self.read(pid, "memory", "memory.max")?
                .as_deref()
                .and_then(|s| s.trim().parse().ok())
        };
        sample.mem_limit = memory_limit(limit, mem_total);
        // Block I/O.
        (sample.blk_read, sample.blk_write) = if self.is_v1("blkio") {
            let recursive = self.read(pid, "blkio", "blkio.throttle.io_service_bytes_recursive")?;
            let text = match recursive {
                Some(text) if !text.trim().is_empty() => Some(text),
                _ => self.read(pid, "blkio", "blkio.throttle.io_service_bytes")?,
            };
            text.as_deref().map(parse_blkio_v1).unwrap_or((0, 0))
        } else {
            self.read(pid, "blkio", "io.stat")?
                .as_deref()
                .map(parse_io_stat)
                .unwrap_or((0, 0))
        };
        // Processes.
        sample.pids = self
            .read(pid, "pids", "pids.current")?
            .as_deref()
            .map(parse_u64)
            .unwrap_or(0);
        Ok(())
    }
}

/// The cgroup directory of `path` (as `/proc/PID/cgroup` has it) on
/// `mount`: the mount's own root taken off the path.
fn mount_relative(mount: &Mount, path: &str) -> CgroupDir {
    let rel = if mount.root == "/" {
        path
    } else {
        path.strip_prefix(mount.root.as_str()).unwrap_or(path)
    };
    CgroupDir {
        mount: mount.point.clone(),
        path: format!("/{}", rel.trim_start_matches('/')),
    }
}

/// Reads `file` in the cgroup directory `dir`, resolved inside its
/// hierarchy's mount (no symlink or `..` leads out of it), at most
/// [`FILE_LIMIT`] bytes. `None` if the file does not exist.
fn read_cgroup_file(dir: &CgroupDir, file: &str) -> Result<Option<String>, StatsError> {
    let inside = format!("{}/{file}", dir.path.trim_end_matches('/'));
    let path = dir.mount.join(inside.trim_start_matches('/'));
    let root = open_root(&dir.mount).map_err(io_error(&dir.mount))?;
    match read_in_root(&root, &inside, FILE_LIMIT) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StatsError::Io { path, source }),
    }
}

/// The cgroup mounts in a mountinfo table.
fn parse_mountinfo(text: &str) -> Vec<Mount> {
    let mut mounts = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let left: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        let (Some(root), Some(point), Some(fstype), Some(options)) =
            (left.get(3), left.get(4), right.first(), right.get(2))
        else {
            continue;
        };
        let controllers = match *fstype {
            "cgroup2" => None,
            "cgroup" => Some(
                options
                    .split(',')
                    .filter(|o| !matches!(*o, "rw" | "ro"))
                    .map(str::to_string)
                    .collect(),
            ),
            _ => continue,
        };
        mounts.push(Mount {
            root: unescape_octal(root),
            point: PathBuf::from(unescape_octal(point)),
            controllers,
        });
    }
    mounts
}

/// Undoes mountinfo's `\040`-style escapes.
fn unescape_octal(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && let Some(code) = text
                .get(i + 1..i + 4)
                .and_then(|d| u8::from_str_radix(d, 8).ok())
        {
            out.push(code);
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A single number, 0 when the file holds something else.
fn parse_u64(text: &str) -> u64 {
    text.trim().parse().unwrap_or(0)
}

/// The value of `key` in a flat-keyed file (`memory.stat`, `cpu.stat`).
fn flat_key(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

/// docker's memory usage: the usage less the inactive page cache, when that
/// is smaller than the usage.
fn memory_usage(usage: u64, inactive_file: Option<u64>) -> u64 {
    match inactive_file {
        Some(inactive) if inactive < usage => usage - inactive,
        _ => usage,
    }
}

/// docker's limit: the cgroup's, or the host's memory when the cgroup has
/// none (or one larger than the host).
fn memory_limit(cgroup: Option<u64>, host: u64) -> u64 {
    match cgroup {
        Some(limit) if host == 0 || limit < host => limit,
        _ => host,
    }
}

/// `MemTotal` of `/proc/meminfo`, in bytes.
fn parse_meminfo_total(text: &str) -> u64 {
    text.lines()
        .find_map(|line| {
            let rest = line.strip_prefix("MemTotal:")?;
            let kb: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
            Some(kb.saturating_mul(1024))
        })
        .unwrap_or(0)
}

/// The host's CPU time in nanoseconds from `/proc/stat`'s `cpu` line, as
/// docker sums it: user, nice, system, idle, iowait, irq and softirq.
fn parse_system_cpu(text: &str, ticks_per_second: u64) -> u64 {
    let Some(line) = text.lines().find(|l| l.starts_with("cpu ")) else {
        return 0;
    };
    let ticks = line
        .split_whitespace()
        .skip(1)
        .take(7)
        .map(|f| f.parse::<u64>().unwrap_or(0))
        .fold(0u64, u64::saturating_add);
    // In u128: ticks × 10⁹ overflows u64 after some years of uptime on
    // many CPUs.
    let ns = u128::from(ticks) * 1_000_000_000 / u128::from(ticks_per_second.max(1));
    u64::try_from(ns).unwrap_or(u64::MAX)
}

/// Bytes received and sent over every interface but loopback, from
/// `/proc/PID/net/dev`.
fn parse_net_dev(text: &str) -> (u64, u64) {
    let mut rx = 0u64;
    let mut tx = 0u64;
    for line in text.lines() {
        let Some((name, counters)) = line.split_once(':') else {
            continue;
        };
        if name.trim() == "lo" {
            continue;
        }
        let fields: Vec<&str> = counters.split_whitespace().collect();
        let (Some(r), Some(t)) = (fields.first(), fields.get(8)) else {
            continue;
        };
        let (Ok(r), Ok(t)) = (r.parse::<u64>(), t.parse::<u64>()) else {
            continue;
        };
        rx = rx.saturating_add(r);
        tx = tx.saturating_add(t);
    }
    (rx, tx)
}

/// Bytes read and written from v1's `blkio.throttle.io_service_bytes*`:
/// `MAJ:MIN Read N` lines (the `Total` lines not counted).
fn parse_blkio_v1(text: &str) -> (u64, u64) {
    let mut read = 0u64;
    let mut write = 0u64;
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_, op, value] = fields.as_slice() else {
            continue;
        };
        let Ok(value) = value.parse::<u64>() else {
            continue;
        };
        if op.eq_ignore_ascii_case("read") {
            read = read.saturating_add(value);
        } else if op.eq_ignore_ascii_case("write") {
            write = write.saturating_add(value);
        }
    }
    (read, write)
}

/// Bytes read and written from v2's `io.stat`: `MAJ:MIN rbytes=N wbytes=N …`.
fn parse_io_stat(text: &str) -> (u64, u64) {
    let mut read = 0u64;
    let mut write = 0u64;
    for line in text.lines() {
        for pair in line.split_whitespace().skip(1) {
            let Some((key, value)) = pair.split_once('=') else {
                continue;
            };
            let Ok(value) = value.parse::<u64>() else {
                continue;
            };
            match key {
                "rbytes" => read = read.saturating_add(value),
                "wbytes" => write = write.saturating_add(value),
                _ => {}
            }
        }
    }
    (read, write)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO_HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
garbage without the separator
42 31 0:39 / /sys/fs/cgroup/short - cgroup
";

    const MOUNTINFO_V2: &str =
        "30 23 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";

    #[test]
    fn cgroup_directories_come_from_membership_and_mounts() {
        let hybrid = parse_mountinfo(MOUNTINFO_HYBRID);
        let v2 = parse_mountinfo(MOUNTINFO_V2);
        type Case<'a> = (
            &'a str,
            &'a [Mount],
            &'a [(&'a str, &'a str)],
            Option<&'a str>,
        );
        let cases: Vec<Case> = vec![
            (
                "4:memory:/c1\n2:cpu,cpuacct:/c1\n1:pids:/c1\n0::/c1\n",
                &hybrid,
                &[
                    ("memory", "/sys/fs/cgroup/memory/c1"),
                    ("cpu", "/sys/fs/cgroup/cpu,cpuacct/c1"),
                    ("cpuacct", "/sys/fs/cgroup/cpu,cpuacct/c1"),
                    ("pids", "/sys/fs/cgroup/pids/c1"),
                ],
                Some("/sys/fs/cgroup/unified/c1"),
            ),
            ("0::/a/b\n", &v2, &[], Some("/sys/fs/cgroup/a/b")),
            // Garbage lines and controllers with no mount are skipped.
            (
                "nonsense\n9:nosuch:/x\n\n::\n",
                &hybrid,
                &[],
                Some("/sys/fs/cgroup/unified"),
            ),
        ];
        for (membership, mounts, v1, unified) in cases {
            let groups = Cgroups::from_files(membership, mounts);
            let full = |d: &CgroupDir| d.mount.join(d.path.trim_start_matches('/'));
            let got: BTreeMap<String, PathBuf> = groups
                .v1
                .iter()
                .map(|(c, d)| (c.clone(), full(d)))
                .collect();
            let want: BTreeMap<String, PathBuf> = v1
                .iter()
                .map(|(c, p)| (c.to_string(), PathBuf::from(p)))
                .collect();
            assert_eq!(got, want, "{membership}");
            assert_eq!(
                groups.unified.as_ref().map(full),
                unified.map(PathBuf::from),
                "{membership}"
            );
        }
    }

    #[test]
    fn a_mount_of_a_subtree_strips_its_root() {
        let mounts = parse_mountinfo(
            "50 1 0:40 /machine /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
        );
        let groups = Cgroups::from_files("3:memory:/machine/c9\n", &mounts);
        let memory = &groups.v1["memory"];
        assert_eq!(memory.mount, PathBuf::from("/sys/fs/cgroup/memory"));
        assert_eq!(memory.path, "/c9");
    }

    #[test]
    fn a_cgroup_path_never_leads_out_of_its_mount() {
        // The kernel never writes `..` or symlinks there, but a path is
        // resolved as if it could: inside the mount, never above it.
        let dir = tempfile::tempdir().unwrap();
        let mount = dir.path().join("hierarchy");
        fs::create_dir_all(mount.join("c1")).unwrap();
        fs::write(dir.path().join("secret"), "host").unwrap();
        std::os::unix::fs::symlink("/", mount.join("c1/link")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), mount.join("c1/pids.current"))
            .unwrap();
        for path in ["/../", "/c1/../../", "/c1/link/../.."] {
            let cg = CgroupDir {
                mount: mount.clone(),
                path: path.to_string(),
            };
            assert!(
                matches!(read_cgroup_file(&cg, "secret"), Ok(None)),
                "{path}"
            );
        }
        let cg = CgroupDir {
            mount: mount.clone(),
            path: "/c1".into(),
        };
        assert!(!matches!(read_cgroup_file(&cg, "pids.current"), Ok(Some(t)) if t == "host"));
    }

    #[test]
    fn a_huge_cgroup_file_is_read_only_up_to_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("memory.stat"), "x".repeat(1 << 20)).unwrap();
        let cg = CgroupDir {
            mount: dir.path().to_path_buf(),
            path: "/".into(),
        };
        assert!(matches!(
            read_cgroup_file(&cg, "memory.stat"),
            Err(StatsError::Io { .. })
        ));
    }

    #[test]
    fn memory_usage_leaves_out_inactive_file() {
        let cases = [
            (100, Some(30), 70),
            (100, None, 100),
            // An inactive figure above the usage (a racy read) is ignored.
            (100, Some(200), 100),
            (0, Some(0), 0),
        ];
        for (usage, inactive, want) in cases {
            assert_eq!(memory_usage(usage, inactive), want, "{usage} {inactive:?}");
        }
    }

    #[test]
    fn memory_limit_is_the_host_when_unlimited() {
        let host = 8 << 30;
        let cases = [
            (Some(512 << 20), host, 512 << 20),
            (Some(9_223_372_036_854_771_712), host, host),
            (None, host, host),
            (Some(512 << 20), 0, 512 << 20),
        ];
        for (cgroup, host, want) in cases {
            assert_eq!(memory_limit(cgroup, host), want, "{cgroup:?}");
        }
    }

    #[test]
    fn flat_keys_ignore_garbage() {
        let stat =
            "cache 10\ntotal_inactive_file 4096\ninactive_file 7\nbroken\nx y z\nusage_usec nope\n";
        assert_eq!(flat_key(stat, "total_inactive_file"), Some(4096));
        assert_eq!(flat_key(stat, "inactive_file"), Some(7));
        assert_eq!(flat_key(stat, "usage_usec"), None);
        assert_eq!(flat_key(stat, "missing"), None);
        assert_eq!(parse_u64("123\n"), 123);
        assert_eq!(parse_u64("max\n"), 0);
        assert_eq!(parse_u64("99999999999999999999999"), 0);
    }

    #[test]
    fn system_cpu_sums_seven_fields_in_nanoseconds() {
        let cases = [
            (
                "cpu  1 2 3 4 5 6 7 8 9 10\ncpu0 1 1 1 1 1 1 1\n",
                100,
                280_000_000,
            ),
            ("cpu  100\n", 100, 1_000_000_000),
            ("intr 1 2\n", 100, 0),
            ("cpu  x 100\n", 100, 1_000_000_000),
            (
                "cpu  18446744073709551615 18446744073709551615\n",
                100,
                u64::MAX,
            ),
        ];
        for (text, ticks, want) in cases {
            assert_eq!(parse_system_cpu(text, ticks), want, "{text}");
        }
    }

    #[test]
    fn meminfo_total_is_in_bytes() {
        assert_eq!(
            parse_meminfo_total("MemFree: 1 kB\nMemTotal:  16384 kB\n"),
            16 << 20
        );
        assert_eq!(parse_meminfo_total("garbage"), 0);
    }

    #[test]
    fn net_dev_leaves_out_loopback_and_garbage() {
        let text = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:  500  5    0    0    0     0          0         0      500  5    0    0    0     0       0          0
  eth0: 1200  10   0    0    0     0          0         0      300  3    0    0    0     0       0          0
  eth1:   34   1   0    0    0     0          0         0        6  1    0    0    0     0       0          0
 bad0: x y z
 short: 1 2 3
";
        assert_eq!(parse_net_dev(text), (1234, 306));
        assert_eq!(parse_net_dev(""), (0, 0));
    }

    #[test]
    fn block_io_on_v1_and_v2() {
        let v1 = "\
8:0 Read 4096
8:0 Write 8192
8:0 Sync 0
8:0 Async 12288
8:0 Discard 0
8:0 Total 12288
8:16 Read 1
8:16 Write 2
Total 12291
garbage line here too
8:0 Read notanumber
";
        assert_eq!(parse_blkio_v1(v1), (4097, 8194));
        let v2 = "\
8:0 rbytes=4096 wbytes=100 rios=1 wios=1 dbytes=0 dios=0
259:0 rbytes=1 wbytes=2 rios=1 wios=1
8:16 rbytes=x wbytes= junk
";
        assert_eq!(parse_io_stat(v2), (4097, 102));
        assert_eq!(parse_io_stat(""), (0, 0));
    }

    #[test]
    fn cpu_percent_is_dockers() {
        let at = |cpu_ns, system_ns, online_cpus| Sample {
            cpu_ns,
            system_ns,
            online_cpus,
            ..Sample::default()
        };
        let cases = [
            // One CPU busy of four: the container's delta is a quarter of
            // the system's, times four CPUs.
            (at(0, 0, 4), at(1_000, 4_000, 4), 100.0),
            (at(0, 0, 2), at(500, 2_000, 2), 50.0),
            // No progress, or a clock that went back, gives 0.
            (at(100, 100, 4), at(100, 200, 4), 0.0),
            (at(100, 100, 4), at(200, 100, 4), 0.0),
            (at(200, 100, 4), at(100, 200, 4), 0.0),
        ];
        for (before, after, want) in cases {
            let got = cpu_percent(&before, &after);
            assert!((got - want).abs() < 1e-9, "{before:?} {after:?}: {got}");
        }
        let usage = Usage::between(
            &at(0, 0, 1),
            &Sample {
                mem_usage: 256,
                mem_limit: 1024,
                ..at(10, 10, 1)
            },
        );
        assert!((usage.mem_percent - 25.0).abs() < 1e-9);
        assert!((usage.cpu_percent - 100.0).abs() < 1e-9);
    }

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape_octal(r"/a\040b"), "/a b");
        assert_eq!(unescape_octal(r"/a\04"), r"/a\04");
        assert_eq!(unescape_octal(r"\\"), r"\\");
    }

    #[test]
    fn this_process_can_be_sampled() {
        let me = std::process::id() as i32;
        let start = crate::process_start(me).unwrap();
        let sample = sample(me, start).unwrap();
        assert!(sample.cpu_ns > 0 || sample.system_ns > 0);
        assert!(sample.mem_limit > 0);
        assert!(sample.online_cpus >= 1);
        assert!(matches!(
            super::sample(me, start + 1),
            Err(StatsError::NotRunning { .. })
        ));
    }

    #[test]
    fn the_baseline_at_start_gives_the_average_over_the_life() {
        let now = Sample {
            cpu_ns: 3_000_000_000,
            system_ns: 100_000_000_000,
            online_cpus: 2,
            ..Sample::default()
        };
        // Three CPU seconds over six wall seconds on two CPUs: one CPU half
        // busy, docker's 50 %.
        let start = baseline(&now, 6.0).unwrap();
        assert_eq!(start.cpu_ns, 0);
        assert_eq!(start.system_ns, 88_000_000_000);
        assert!((cpu_percent(&start, &now) - 50.0).abs() < 1e-9);
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(baseline(&now, bad).is_none(), "{bad}");
        }
    }
}
