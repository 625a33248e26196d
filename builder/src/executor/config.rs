//! The OCI runtime configuration (`config.json`) of a `RUN` container.

use super::user::ResolvedUser;
use serde_json::{Value, json};

/// Where a `RUN` container's network comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Network {
    /// The default: the host's network, as BuildKit without CNI does.
    #[default]
    Default,
    /// A fresh network namespace with only loopback.
    None,
    /// The host's network.
    Host,
}

impl std::str::FromStr for Network {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "default" | "" => Ok(Network::Default),
            "none" => Ok(Network::None),
            "host" => Ok(Network::Host),
            other => Err(format!(
                "unknown network mode '{other}': expected default, none or host"
            )),
        }
    }
}

/// A mount inside the container, already resolved to host paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleMount {
    /// Absolute path in the container.
    pub destination: String,
    /// Mount type (`bind`, `tmpfs`, …).
    pub kind: String,
    /// Source (a host path for binds).
    pub source: String,
    /// Mount options.
    pub options: Vec<String>,
}

impl BundleMount {
    /// A bind mount of a host path.
    pub fn bind(source: &str, destination: &str, readonly: bool) -> BundleMount {
        let mut options = vec!["rbind".to_string(), "nosuid".into(), "nodev".into()];
        options.push(if readonly { "ro" } else { "rw" }.into());
        BundleMount {
            destination: destination.to_string(),
            kind: "bind".into(),
            source: source.to_string(),
            options,
        }
    }
}

/// The capabilities Docker and BuildKit give a build container by default.
const CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// The mounts every container gets, as runc's default spec has them.
pub fn standard_mounts() -> Vec<BundleMount> {
    let m = |dest: &str, kind: &str, source: &str, opts: &[&str]| BundleMount {
        destination: dest.into(),
        kind: kind.into(),
        source: source.into(),
        options: opts.iter().map(|o| o.to_string()).collect(),
    };
    vec![
        m("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        m(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        m(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        m(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
        m(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        m(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
    ]
}

/// What goes into a `RUN` container's `config.json`.
#[derive(Debug, Clone)]
pub struct BundleConfig<'a> {
    /// The command line.
    pub args: &'a [String],
    /// The environment, `KEY=value`.
    pub env: &'a [String],
    /// The working directory.
    pub cwd: &'a str,
    /// The user.
    pub user: &'a ResolvedUser,
    /// The network mode.
    pub network: Network,
    /// The mounts, standard ones included.
    pub mounts: &'a [BundleMount],
    /// The hostname.
    pub hostname: &'a str,
}

/// Renders the runtime configuration.
pub fn render(config: &BundleConfig<'_>) -> Value {
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    if config.network == Network::None {
        namespaces.push(json!({"type": "network"}));
    }
    let caps: Vec<&str> = CAPABILITIES.to_vec();
    let mounts: Vec<Value> = config
        .mounts
        .iter()
        .map(|m| {
            json!({
                "destination": m.destination,
                "type": m.kind,
                "source": m.source,
                "options": m.options,
            })
        })
        .collect();
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {
                "uid": config.user.uid,
                "gid": config.user.gid,
                "additionalGids": config.user.additional_gids,
            },
            "args": config.args,
            "env": config.env,
            "cwd": config.cwd,
            "capabilities": {
                "bounding": caps,
                "effective": caps,
                "permitted": caps,
            },
            "noNewPrivileges": false,
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": config.hostname,
        "mounts": mounts,
        "linux": {
            "namespaces": namespaces,
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
            ],
            "readonlyPaths": [
                "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
            ],
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_none_adds_a_network_namespace_only_then() {
        let user = ResolvedUser {
            uid: 1,
            gid: 2,
            additional_gids: vec![3],
            home: "/".into(),
        };
        let args = vec!["/bin/sh".to_string()];
        let base = BundleConfig {
            args: &args,
            env: &[],
            cwd: "/",
            user: &user,
            network: Network::Default,
            mounts: &[],
            hostname: "h",
        };
        let has_netns = |v: &Value| {
            v["linux"]["namespaces"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["type"] == "network")
        };
        assert!(!has_netns(&render(&base)));
        let none = BundleConfig {
            network: Network::None,
            ..base.clone()
        };
        let rendered = render(&none);
        assert!(has_netns(&rendered));
        assert_eq!(rendered["process"]["user"]["additionalGids"], json!([3]));
    }
}
