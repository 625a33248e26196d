//! The OCI runtime configuration (`config.json`) of a container, built with
//! `oci-spec`'s types: Docker's defaults (capabilities, masked and read-only
//! paths, namespaces, mounts, the device cgroup policy and the seccomp
//! profile) shared by `RUN` steps and `berth run`.

use super::seccomp::{self, KernelVersion, Profile, SeccompError, SeccompPolicy, Target};
use super::user::ResolvedUser;
use oci_spec::OciSpecError;
use oci_spec::runtime::{
    Capabilities, Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxDeviceCgroup,
    LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxNamespaceBuilder, LinuxNamespaceType,
    LinuxResourcesBuilder, MountBuilder, PosixRlimitBuilder, PosixRlimitType, ProcessBuilder,
    RootBuilder, Spec, SpecBuilder, UserBuilder,
};

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

/// The capabilities Docker and BuildKit give a container by default.
const CAPABILITIES: &[Capability] = &[
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// The device cgroup rules every container gets, after denying all devices:
/// runc's default allowed devices (libcontainer/specconv `AllowedDevices`,
/// which Docker relies on) plus `/dev/console`, as youki allows it. Each is
/// (type, major, minor, access); `None` is the wildcard.
const ALLOWED_DEVICES: &[(LinuxDeviceType, Option<i64>, Option<i64>, &str)] = &[
    // Creating any device node is allowed; opening one is not.
    (LinuxDeviceType::C, None, None, "m"),
    (LinuxDeviceType::B, None, None, "m"),
    // /dev/null, /dev/random, /dev/full, /dev/tty, /dev/zero, /dev/urandom.
    (LinuxDeviceType::C, Some(1), Some(3), "rwm"),
    (LinuxDeviceType::C, Some(1), Some(8), "rwm"),
    (LinuxDeviceType::C, Some(1), Some(7), "rwm"),
    (LinuxDeviceType::C, Some(5), Some(0), "rwm"),
    (LinuxDeviceType::C, Some(1), Some(5), "rwm"),
    (LinuxDeviceType::C, Some(1), Some(9), "rwm"),
    // /dev/console, /dev/pts/*, /dev/ptmx.
    (LinuxDeviceType::C, Some(5), Some(1), "rwm"),
    (LinuxDeviceType::C, Some(136), None, "rwm"),
    (LinuxDeviceType::C, Some(5), Some(2), "rwm"),
    // /dev/net/tun.
    (LinuxDeviceType::C, Some(10), Some(200), "rwm"),
];

/// The device cgroup policy: deny every device, then allow the standard
/// ones. Without the leading deny a v1 devices cgroup keeps its parent's
/// `a *:* rwm`, and a container with CAP_MKNOD opens the host's disks.
fn device_rules() -> Result<Vec<LinuxDeviceCgroup>, OciSpecError> {
    let deny_all = LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .access("rwm")
        .build()?;
    let mut rules = vec![deny_all];
    for &(typ, major, minor, access) in ALLOWED_DEVICES {
        let mut rule = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .typ(typ)
            .access(access)
            .build()?;
        rule.set_major(major);
        rule.set_minor(minor);
        rules.push(rule);
    }
    Ok(rules)
}

/// The paths Docker hides from containers (bind-mounted over with nothing).
const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// The paths Docker makes read-only in containers.
const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
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

/// The mounts a `berth run` container gets: the standard ones and, as
/// Docker does, the cgroup filesystem read-only.
pub fn container_mounts() -> Vec<BundleMount> {
    let mut mounts = standard_mounts();
    mounts.push(BundleMount {
        destination: "/sys/fs/cgroup".into(),
        kind: "cgroup".into(),
        source: "cgroup".into(),
        options: ["ro", "nosuid", "noexec", "nodev"]
            .iter()
            .map(|o| o.to_string())
            .collect(),
    });
    mounts
}

/// What goes into a container's `config.json`.
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
    /// Whether the process gets a pseudo-terminal.
    pub terminal: bool,
    /// `RLIMIT_NOFILE` as (soft, hard), if the container should get one.
    pub nofile: Option<(u64, u64)>,
}

/// A configuration that could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The OCI types refused it.
    #[error("building the OCI runtime configuration")]
    Oci(#[from] OciSpecError),
    /// The seccomp profile is invalid.
    #[error(transparent)]
    Seccomp(#[from] SeccompError),
}

/// Renders the runtime configuration with Docker's default seccomp profile
/// (what `RUN` steps get, as with BuildKit).
pub fn render(config: &BundleConfig<'_>) -> Result<Spec, ConfigError> {
    render_with(config, &SeccompPolicy::Default)
}

/// Renders the runtime configuration and serializes it as `config.json`.
pub fn render_json(
    config: &BundleConfig<'_>,
    seccomp: &SeccompPolicy,
) -> Result<Vec<u8>, ConfigError> {
    let spec = render_with(config, seccomp)?;
    serde_json::to_vec_pretty(&spec).map_err(|e| OciSpecError::Other(e.to_string()).into())
}

/// The `linux.seccomp` of a policy for a container with the bounding
/// capabilities `caps`.
fn seccomp_for(
    policy: &SeccompPolicy,
    caps: &Capabilities,
) -> Result<Option<oci_spec::runtime::LinuxSeccomp>, SeccompError> {
    let default;
    let profile = match policy {
        SeccompPolicy::Unconfined => return Ok(None),
        SeccompPolicy::Default => {
            default = Profile::docker_default()?;
            &default
        }
        SeccompPolicy::Profile(profile) => profile,
    };
    let mut names: Vec<String> = caps
        .iter()
        .filter_map(|c| serde_json::to_value(c).ok())
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    names.sort();
    profile.to_oci(&Target {
        arch: seccomp::native_arch(),
        caps: &names,
        kernel: KernelVersion::host().map_err(|e| e.to_string()),
    })
}

/// Renders the runtime configuration with the given seccomp policy.
pub fn render_with(
    config: &BundleConfig<'_>,
    seccomp: &SeccompPolicy,
) -> Result<Spec, ConfigError> {
    let mut namespaces = [
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
    ]
    .to_vec();
    if config.network == Network::None {
        namespaces.push(LinuxNamespaceType::Network);
    }
    let namespaces = namespaces
        .into_iter()
        .map(|typ| LinuxNamespaceBuilder::default().typ(typ).build())
        .collect::<Result<Vec<_>, _>>()?;
    let caps: Capabilities = CAPABILITIES.iter().copied().collect();
    let seccomp = seccomp_for(seccomp, &caps)?;
    let mounts = config
        .mounts
        .iter()
        .map(|m| {
            MountBuilder::default()
                .destination(&m.destination)
                .typ(&m.kind)
                .source(&m.source)
                .options(m.options.clone())
                .build()
        })
        .collect::<Result<Vec<_>, _>>()?;
    let user = UserBuilder::default()
        .uid(config.user.uid)
        .gid(config.user.gid)
        .additional_gids(config.user.additional_gids.clone())
        .build()?;
    let mut capabilities = LinuxCapabilitiesBuilder::default()
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .build()?;
    // The builder's defaults would fill these with three capabilities,
    // which a non-root process would then keep; Docker leaves them empty.
    capabilities.set_inheritable(None);
    capabilities.set_ambient(None);
    let mut process = ProcessBuilder::default()
        .terminal(config.terminal)
        .user(user)
        .args(config.args.to_vec())
        .env(config.env.to_vec())
        .cwd(config.cwd)
        .capabilities(capabilities)
        .build()?;
    // Absent means false, as in Docker's default; libcontainer 0.7 reads an
    // explicit `false` as set and then loads the seccomp filter after the
    // capabilities are dropped, where the kernel refuses it (EACCES).
    process.set_no_new_privileges(None);
    process.set_rlimits(match config.nofile {
        Some((soft, hard)) => Some(vec![
            PosixRlimitBuilder::default()
                .typ(PosixRlimitType::RlimitNofile)
                .soft(soft)
                .hard(hard)
                .build()?,
        ]),
        None => None,
    });
    process.set_apparmor_profile(None);
    process.set_oom_score_adj(None);
    let strings = |paths: &[&str]| paths.iter().map(|p| p.to_string()).collect::<Vec<_>>();
    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .masked_paths(strings(MASKED_PATHS))
        .readonly_paths(strings(READONLY_PATHS))
        .build()?;
    linux.set_resources(Some(
        LinuxResourcesBuilder::default()
            .devices(device_rules()?)
            .build()?,
    ));
    linux.set_seccomp(seccomp);
    let root = RootBuilder::default()
        .path("rootfs")
        .readonly(false)
        .build()?;
    Ok(SpecBuilder::default()
        .version("1.0.2")
        .process(process)
        .root(root)
        .hostname(config.hostname)
        .mounts(mounts)
        .linux(linux)
        .build()?)
}

/// The `RLIMIT_NOFILE` a container gets: Docker's 1048576, but never more
/// than the caller's own hard limit, which an unprivileged runtime could not
/// raise (and a privileged one should not).
pub fn default_nofile() -> (u64, u64) {
    let wanted: u64 = 1_048_576;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given.
    let hard = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0 {
        limit.rlim_max
    } else {
        1024
    };
    let hard = wanted.min(hard);
    (hard, hard)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn rendered(config: &BundleConfig<'_>) -> Value {
        serde_json::to_value(render(config).unwrap()).unwrap()
    }

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
            terminal: false,
            nofile: None,
        };
        let has_netns = |v: &Value| {
            v["linux"]["namespaces"]
                .as_array()
                .unwrap()
                .iter()
                .any(|n| n["type"] == "network")
        };
        assert!(!has_netns(&rendered(&base)));
        let none = BundleConfig {
            network: Network::None,
            ..base.clone()
        };
        let rendered = rendered(&none);
        assert!(has_netns(&rendered));
        assert_eq!(rendered["process"]["user"]["additionalGids"], json!([3]));
    }

    #[test]
    fn renders_docker_defaults_and_the_terminal_and_rlimit() {
        let user = ResolvedUser {
            uid: 0,
            gid: 0,
            additional_gids: vec![],
            home: "/root".into(),
        };
        let args = vec!["sh".to_string()];
        let env = vec!["PATH=/bin".to_string()];
        let mounts = container_mounts();
        let v = rendered(&BundleConfig {
            args: &args,
            env: &env,
            cwd: "/work",
            user: &user,
            network: Network::Host,
            mounts: &mounts,
            hostname: "abc",
            terminal: true,
            nofile: Some((1024, 2048)),
        });
        assert_eq!(v["process"]["terminal"], json!(true));
        assert_eq!(v["process"]["cwd"], json!("/work"));
        assert!(v["process"].get("noNewPrivileges").is_none());
        assert_eq!(
            v["process"]["rlimits"],
            json!([{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 2048}])
        );
        let bounding = v["process"]["capabilities"]["bounding"].as_array().unwrap();
        assert_eq!(bounding.len(), CAPABILITIES.len());
        assert!(bounding.contains(&json!("CAP_NET_BIND_SERVICE")));
        assert!(!bounding.contains(&json!("CAP_SYS_ADMIN")));
        for set in ["inheritable", "ambient"] {
            assert!(v["process"]["capabilities"].get(set).is_none(), "{set}");
        }
        assert_eq!(v["hostname"], json!("abc"));
        assert_eq!(v["root"], json!({"path": "rootfs", "readonly": false}));
        let cgroup = v["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == "/sys/fs/cgroup")
            .unwrap();
        assert_eq!(cgroup["type"], json!("cgroup"));
        assert!(
            v["linux"]["maskedPaths"]
                .as_array()
                .unwrap()
                .contains(&json!("/proc/kcore"))
        );
        assert_eq!(
            v["linux"]["seccomp"]["defaultAction"],
            json!("SCMP_ACT_ERRNO")
        );
    }

    fn sample<'a>(user: &'a ResolvedUser, args: &'a [String]) -> BundleConfig<'a> {
        BundleConfig {
            args,
            env: &[],
            cwd: "/",
            user,
            network: Network::Default,
            mounts: &[],
            hostname: "h",
            terminal: false,
            nofile: None,
        }
    }

    #[test]
    fn devices_are_denied_first_then_the_standard_ones_allowed() {
        let user = ResolvedUser {
            uid: 0,
            gid: 0,
            additional_gids: vec![],
            home: "/".into(),
        };
        let args = vec!["sh".to_string()];
        let v = rendered(&sample(&user, &args));
        let devices = v["linux"]["resources"]["devices"].as_array().unwrap();
        assert_eq!(devices[0], json!({"allow": false, "access": "rwm"}));
        let rules: Vec<String> = devices
            .iter()
            .map(|d| {
                let number = |n: &Value| n.as_i64().map_or("*".into(), |n| n.to_string());
                format!(
                    "{} {} {}:{} {}",
                    if d["allow"] == json!(true) {
                        "allow"
                    } else {
                        "deny"
                    },
                    d["type"].as_str().unwrap_or("a"),
                    number(&d["major"]),
                    number(&d["minor"]),
                    d["access"].as_str().unwrap()
                )
            })
            .collect();
        for (i, want) in [
            "deny a *:* rwm",
            "allow c *:* m",
            "allow b *:* m",
            "allow c 1:3 rwm",
            "allow c 1:8 rwm",
            "allow c 1:7 rwm",
            "allow c 5:0 rwm",
            "allow c 1:5 rwm",
            "allow c 1:9 rwm",
            "allow c 5:1 rwm",
            "allow c 136:* rwm",
            "allow c 5:2 rwm",
            "allow c 10:200 rwm",
        ]
        .iter()
        .enumerate()
        {
            assert_eq!(rules.get(i).map(String::as_str), Some(*want), "{rules:?}");
        }
        assert_eq!(rules.len(), 13);
        // No block device is readable or writable, and nothing but the
        // device policy is limited.
        assert!(
            !rules
                .iter()
                .skip(1)
                .any(|r| r.starts_with("allow b") && r.contains('r'))
        );
        let resources = v["linux"]["resources"].as_object().unwrap();
        assert_eq!(resources.keys().collect::<Vec<_>>(), ["devices"]);
    }

    #[test]
    fn seccomp_policies_render_as_docker_renders_them() {
        let user = ResolvedUser {
            uid: 0,
            gid: 0,
            additional_gids: vec![],
            home: "/".into(),
        };
        let args = vec!["sh".to_string()];
        let config = sample(&user, &args);
        let json = |policy: &SeccompPolicy| -> Value {
            serde_json::from_slice(&render_json(&config, policy).unwrap()).unwrap()
        };
        let default = json(&SeccompPolicy::Default);
        let seccomp = &default["linux"]["seccomp"];
        assert_eq!(seccomp["defaultAction"], json!("SCMP_ACT_ERRNO"));
        let allowed: Vec<&Value> = seccomp["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["action"] == "SCMP_ACT_ALLOW")
            .flat_map(|s| s["names"].as_array().unwrap())
            .collect();
        // The default caps include CAP_SYS_CHROOT but not CAP_SYS_ADMIN.
        assert!(allowed.contains(&&json!("chroot")));
        assert!(!allowed.contains(&&json!("unshare")));
        assert!(!allowed.contains(&&json!("mount")));

        assert!(
            json(&SeccompPolicy::Unconfined)["linux"]
                .get("seccomp")
                .is_none()
        );

        let profile = Profile::parse(
            r#"{"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}"#,
            "deny-mkdir.json",
        )
        .unwrap();
        let custom = json(&SeccompPolicy::Profile(Box::new(profile)));
        assert_eq!(
            custom["linux"]["seccomp"],
            json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
            })
        );
    }

    #[test]
    fn nofile_never_exceeds_the_callers_hard_limit() {
        let (soft, hard) = default_nofile();
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        assert_eq!(
            unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
            0
        );
        assert!(hard <= limit.rlim_max && hard <= 1_048_576);
        assert_eq!(soft, hard);
    }
}
