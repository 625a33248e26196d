//! Seccomp profiles in moby's JSON format (Docker's `--security-opt
//! seccomp=FILE`) and their conversion to the OCI `linux.seccomp`, with the
//! semantics of moby's `profiles/seccomp` `setupSeccomp`: the native
//! architecture and its sub-architectures are picked from `archMap`, and a
//! rule's `includes`/`excludes` are evaluated against the architecture, the
//! container's bounding capabilities and the host's kernel version.
//!
//! Docker's default profile is embedded as data (`seccomp/default.json`, see
//! `seccomp/README.md`), not rewritten by hand.

use oci_spec::OciSpecError;
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompBuilder,
    LinuxSeccompFilterFlag, LinuxSyscall, LinuxSyscallBuilder,
};
use serde::Deserialize;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Docker's default profile (moby's `profiles/seccomp/default.json`).
pub const DEFAULT_PROFILE_JSON: &str = include_str!("seccomp/default.json");

/// The largest profile file read; moby's default is 14 KB.
const MAX_PROFILE_BYTES: u64 = 4 << 20;

/// Which seccomp filter a container gets.
#[derive(Debug, Clone, Default)]
pub enum SeccompPolicy {
    /// Docker's default profile.
    #[default]
    Default,
    /// No filter (`seccomp=unconfined`).
    Unconfined,
    /// A profile read from a file (`seccomp=FILE`).
    Profile(Box<Profile>),
}

/// A seccomp profile or its conversion is invalid.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// The profile file could not be read.
    #[error("reading the seccomp profile {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The profile file is larger than any real profile.
    #[error("the seccomp profile {} is larger than {MAX_PROFILE_BYTES} bytes", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The profile is not valid JSON in moby's format.
    #[error("parsing the seccomp profile {source_name} (moby's JSON profile format)")]
    Parse {
        /// The file, or `the default profile`.
        source_name: String,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// The profile parses but contradicts itself.
    #[error("invalid seccomp profile {source_name}: {reason}")]
    Invalid {
        /// The file, or `the default profile`.
        source_name: String,
        /// What is wrong.
        reason: String,
    },
    /// A rule depends on the kernel version, which could not be read.
    #[error("reading the kernel version for the seccomp profile's minKernel rules: {0}")]
    Kernel(String),
    /// The OCI types refused the converted profile.
    #[error("converting the seccomp profile to the OCI configuration")]
    Oci(#[source] OciSpecError),
}

/// A profile in moby's format (`profiles/seccomp.Seccomp`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// An empty action with no rules means "no filter", as in moby.
    #[serde(default)]
    default_action: Option<LinuxSeccompAction>,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    /// The older format: the architectures themselves.
    #[serde(default)]
    architectures: Option<Vec<Arch>>,
    #[serde(default)]
    arch_map: Option<Vec<ArchEntry>>,
    #[serde(default)]
    flags: Option<Vec<LinuxSeccompFilterFlag>>,
    #[serde(default)]
    syscalls: Option<Vec<Syscall>>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
struct ArchEntry {
    architecture: Arch,
    #[serde(default)]
    sub_architectures: Option<Vec<Arch>>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
struct Syscall {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    names: Option<Vec<String>>,
    action: LinuxSeccompAction,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<LinuxSeccompArg>>,
    #[serde(default)]
    includes: Option<Filter>,
    #[serde(default)]
    excludes: Option<Filter>,
}

/// When a rule applies (`includes`) or does not (`excludes`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    caps: Option<Vec<String>>,
    #[serde(default)]
    arches: Option<Vec<String>>,
    #[serde(default)]
    min_kernel: Option<KernelVersion>,
}

/// A kernel version as `<kernel>.<major>`, the form moby's `minKernel` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(try_from = "String")]
pub struct KernelVersion {
    /// The kernel version (the 6 of 6.1).
    pub kernel: u64,
    /// The major revision (the 1 of 6.1).
    pub major: u64,
}

impl TryFrom<String> for KernelVersion {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        let invalid = || format!("invalid kernel version '{text}', expected \"<kernel>.<major>\"");
        let (kernel, major) = text.split_once('.').ok_or_else(invalid)?;
        let kernel: u8 = kernel.parse().map_err(|_| invalid())?;
        let major: u8 = major.parse().map_err(|_| invalid())?;
        if kernel == 0 && major == 0 {
            return Err(invalid());
        }
        Ok(KernelVersion {
            kernel: kernel.into(),
            major: major.into(),
        })
    }
}

impl KernelVersion {
    /// Parses a kernel release (`uname -r`) as moby does: its first two
    /// numbers, so `6.1.0-13-amd64` and `6.1-rc5` are both 6.1.
    pub fn from_release(release: &str) -> Option<KernelVersion> {
        let mut numbers = release.split(|c: char| !c.is_ascii_digit());
        let kernel = numbers.next()?.parse().ok()?;
        let rest = release.get(release.find('.')? + 1..)?;
        let major = rest
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()?;
        Some(KernelVersion { kernel, major })
    }

    /// The running kernel's version.
    pub fn host() -> Result<KernelVersion, SeccompError> {
        // SAFETY: an all-zero utsname is valid, and uname only writes into it.
        let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
        // SAFETY: uts is a valid utsname for uname to fill.
        if unsafe { libc::uname(&mut uts) } != 0 {
            return Err(SeccompError::Kernel(
                std::io::Error::last_os_error().to_string(),
            ));
        }
        // SAFETY: uname leaves release NUL-terminated within its array.
        let release = unsafe { std::ffi::CStr::from_ptr(uts.release.as_ptr()) }.to_string_lossy();
        KernelVersion::from_release(&release)
            .ok_or_else(|| SeccompError::Kernel(format!("unparsable kernel release '{release}'")))
    }
}

/// What a profile is evaluated against.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    /// The architecture in moby's (libseccomp's) naming: `amd64`, `arm64`, ….
    pub arch: &'a str,
    /// The container's bounding capabilities, `CAP_…`.
    pub caps: &'a [String],
    /// The host kernel, or why it could not be read (only an error when a
    /// rule has a `minKernel`).
    pub kernel: Result<KernelVersion, String>,
}

/// The architecture berth was built for, in moby's naming (its `goToNative`).
pub fn native_arch() -> &'static str {
    if cfg!(target_arch = "x86_64") {
        "amd64"
    } else if cfg!(target_arch = "x86") {
        "x86"
    } else if cfg!(target_arch = "aarch64") {
        "arm64"
    } else if cfg!(target_arch = "arm") {
        "arm"
    } else if cfg!(target_arch = "s390x") {
        "s390x"
    } else if cfg!(all(target_arch = "powerpc64", target_endian = "little")) {
        "ppc64le"
    } else if cfg!(target_arch = "powerpc64") {
        "ppc64"
    } else if cfg!(all(target_arch = "mips64", target_endian = "little")) {
        "mipsel64"
    } else if cfg!(target_arch = "mips64") {
        "mips64"
    } else if cfg!(target_arch = "riscv64") {
        "riscv64"
    } else {
        "unknown"
    }
}

/// moby's `nativeToSeccomp`: the seccomp architecture of a native one.
fn seccomp_arch(native: &str) -> Option<Arch> {
    Some(match native {
        "x86" => Arch::ScmpArchX86,
        "amd64" => Arch::ScmpArchX86_64,
        "arm" => Arch::ScmpArchArm,
        "arm64" => Arch::ScmpArchAarch64,
        "mips64" => Arch::ScmpArchMips64,
        "mips64n32" => Arch::ScmpArchMips64n32,
        "mipsel64" => Arch::ScmpArchMipsel64,
        "mips3l64n32" => Arch::ScmpArchMipsel64n32,
        "mipsel" => Arch::ScmpArchMipsel,
        "ppc" => Arch::ScmpArchPpc,
        "ppc64" => Arch::ScmpArchPpc64,
        "ppc64le" => Arch::ScmpArchPpc64le,
        "s390" => Arch::ScmpArchS390,
        "s390x" => Arch::ScmpArchS390x,
        "riscv64" => Arch::ScmpArchRiscv64,
        _ => return None,
    })
}

impl Profile {
    /// Parses a profile; `source_name` names it in errors.
    pub fn parse(text: &str, source_name: &str) -> Result<Profile, SeccompError> {
        let profile: Profile =
            serde_json::from_str(text).map_err(|source| SeccompError::Parse {
                source_name: source_name.to_string(),
                source,
            })?;
        let invalid = |reason: &str| SeccompError::Invalid {
            source_name: source_name.to_string(),
            reason: reason.to_string(),
        };
        if profile
            .architectures
            .as_ref()
            .is_some_and(|a| !a.is_empty())
            && profile.arch_map.as_ref().is_some_and(|a| !a.is_empty())
        {
            return Err(invalid(
                "'architectures' and 'archMap' were both specified; use one of them",
            ));
        }
        for call in profile.syscalls.iter().flatten() {
            let name = call.name.as_deref().unwrap_or("");
            let names = call.names.as_deref().unwrap_or(&[]);
            if !name.is_empty() && !names.is_empty() {
                return Err(invalid(&format!(
                    "a rule has both 'name' ({name}) and 'names'; use one of them"
                )));
            }
        }
        Ok(profile)
    }

    /// Docker's default profile.
    pub fn docker_default() -> Result<Profile, SeccompError> {
        Profile::parse(DEFAULT_PROFILE_JSON, "the default profile")
    }

    /// Reads and parses a profile file (`--security-opt seccomp=FILE`).
    pub fn load(path: &Path) -> Result<Profile, SeccompError> {
        let read = |source| SeccompError::Read {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(read)?;
        let mut text = String::new();
        file.take(MAX_PROFILE_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(read)?;
        if text.len() as u64 > MAX_PROFILE_BYTES {
            return Err(SeccompError::TooLarge {
                path: path.to_path_buf(),
            });
        }
        Profile::parse(&text, &path.display().to_string())
    }

    /// Converts the profile for `target`, as moby's `setupSeccomp`: `None`
    /// when it has neither a default action nor rules (no filter).
    pub fn to_oci(&self, target: &Target<'_>) -> Result<Option<LinuxSeccomp>, SeccompError> {
        let syscalls = self.syscalls.as_deref().unwrap_or(&[]);
        let Some(default_action) = self.default_action else {
            if syscalls.is_empty() {
                return Ok(None);
            }
            return Err(SeccompError::Invalid {
                source_name: "profile".into(),
                reason: "it has rules but no 'defaultAction'".into(),
            });
        };
        let mut architectures: Vec<Arch> = self.architectures.clone().unwrap_or_default();
        if let Some(native) = seccomp_arch(target.arch)
            && let Some(entry) = self
                .arch_map
                .iter()
                .flatten()
                .find(|e| e.architecture == native)
        {
            architectures.push(entry.architecture);
            architectures.extend(entry.sub_architectures.iter().flatten().copied());
        }
        let mut rules = Vec::new();
        for call in syscalls {
            if call.applies(target)? {
                rules.push(call.to_oci()?);
            }
        }
        let mut builder = LinuxSeccompBuilder::default()
            .default_action(default_action)
            .syscalls(rules);
        if !architectures.is_empty() {
            builder = builder.architectures(architectures);
        }
        if let Some(errno) = self.default_errno_ret {
            builder = builder.default_errno_ret(errno);
        }
        if let Some(flags) = &self.flags {
            builder = builder.flags(flags.clone());
        }
        builder.build().map(Some).map_err(SeccompError::Oci)
    }
}

impl Syscall {
    /// moby's filter: any excluded arch or cap, or a kernel at least the
    /// excluded one, drops the rule; every included cap, one of the included
    /// arches and a kernel at least the included one are required.
    fn applies(&self, target: &Target<'_>) -> Result<bool, SeccompError> {
        let has_cap = |cap: &String| target.caps.contains(cap);
        let kernel_at_least = |min: &KernelVersion| match &target.kernel {
            Ok(kernel) => Ok(kernel >= min),
            Err(e) => Err(SeccompError::Kernel(e.clone())),
        };
        let arch = target.arch.to_string();
        if let Some(excludes) = &self.excludes {
            if excludes.arches.as_ref().is_some_and(|a| a.contains(&arch)) {
                return Ok(false);
            }
            if excludes.caps.iter().flatten().any(has_cap) {
                return Ok(false);
            }
            if let Some(min) = &excludes.min_kernel
                && kernel_at_least(min)?
            {
                return Ok(false);
            }
        }
        if let Some(includes) = &self.includes {
            if let Some(arches) = &includes.arches
                && !arches.is_empty()
                && !arches.contains(&arch)
            {
                return Ok(false);
            }
            if !includes.caps.iter().flatten().all(has_cap) {
                return Ok(false);
            }
            if let Some(min) = &includes.min_kernel
                && !kernel_at_least(min)?
            {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn to_oci(&self) -> Result<LinuxSyscall, SeccompError> {
        let names = match self.name.as_deref() {
            Some(name) if !name.is_empty() => vec![name.to_string()],
            _ => self.names.clone().unwrap_or_default(),
        };
        let mut builder = LinuxSyscallBuilder::default()
            .names(names)
            .action(self.action);
        if let Some(errno) = self.errno_ret {
            builder = builder.errno_ret(errno);
        }
        if let Some(args) = self.args.as_ref().filter(|a| !a.is_empty()) {
            builder = builder.args(args.clone());
        }
        builder.build().map_err(SeccompError::Oci)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn caps(names: &[&str]) -> Vec<String> {
        names.iter().map(|c| c.to_string()).collect()
    }

    fn target<'a>(arch: &'a str, caps: &'a [String]) -> Target<'a> {
        Target {
            arch,
            caps,
            kernel: Ok(KernelVersion {
                kernel: 6,
                major: 1,
            }),
        }
    }

    fn convert(profile: &Value, target: &Target<'_>) -> Value {
        let profile = Profile::parse(&profile.to_string(), "test").unwrap();
        serde_json::to_value(profile.to_oci(target).unwrap()).unwrap()
    }

    /// The names of the rules the converted profile allows, flattened.
    fn allowed(converted: &Value) -> Vec<String> {
        converted["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["action"] == "SCMP_ACT_ALLOW")
            .flat_map(|s| s["names"].as_array().unwrap().clone())
            .map(|n| n.as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn the_default_profile_converts_for_the_native_arch() {
        let profile = Profile::docker_default().unwrap();
        let default_caps = caps(&["CAP_CHOWN", "CAP_SYS_CHROOT"]);
        let converted =
            serde_json::to_value(profile.to_oci(&target("amd64", &default_caps)).unwrap()).unwrap();
        assert_eq!(converted["defaultAction"], json!("SCMP_ACT_ERRNO"));
        assert_eq!(
            converted["architectures"],
            json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        );
        let amd64 = allowed(&converted);
        for name in ["read", "write", "chroot", "arch_prctl", "ptrace"] {
            assert!(amd64.contains(&name.to_string()), "{name}");
        }
        // Without CAP_SYS_ADMIN, namespaces and mounts stay refused.
        for name in ["unshare", "mount", "setns", "reboot", "s390_runtime_instr"] {
            assert!(!amd64.contains(&name.to_string()), "{name}");
        }
        // clone3 gets ENOSYS so that libcs fall back to the filtered clone.
        let clone3 = converted["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["names"] == json!(["clone3"]))
            .unwrap();
        assert_eq!(clone3["errnoRet"], json!(38));
        let arm =
            serde_json::to_value(profile.to_oci(&target("arm64", &default_caps)).unwrap()).unwrap();
        assert_eq!(
            arm["architectures"],
            json!(["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"])
        );
        assert!(allowed(&arm).contains(&"cacheflush".to_string()));
        assert!(!allowed(&arm).contains(&"arch_prctl".to_string()));
    }

    #[test]
    fn includes_and_excludes_follow_caps_arch_and_kernel() {
        let profile = json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [
                {"names": ["always"], "action": "SCMP_ACT_ALLOW", "args": null},
                {"names": ["admin"], "action": "SCMP_ACT_ALLOW",
                 "includes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["admin_and_boot"], "action": "SCMP_ACT_ALLOW",
                 "includes": {"caps": ["CAP_SYS_ADMIN", "CAP_SYS_BOOT"]}},
                {"names": ["not_admin"], "action": "SCMP_ACT_ALLOW",
                 "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
                {"names": ["amd64_only"], "action": "SCMP_ACT_ALLOW",
                 "includes": {"arches": ["amd64", "x32"]}},
                {"names": ["not_amd64"], "action": "SCMP_ACT_ALLOW",
                 "excludes": {"arches": ["amd64"]}},
                {"names": ["new_kernel"], "action": "SCMP_ACT_ALLOW",
                 "includes": {"minKernel": "6.1"}},
                {"names": ["newer_kernel"], "action": "SCMP_ACT_ALLOW",
                 "includes": {"minKernel": "6.2"}},
                {"names": ["old_kernel"], "action": "SCMP_ACT_ALLOW",
                 "excludes": {"minKernel": "5.10"}},
                {"name": "single", "action": "SCMP_ACT_ALLOW", "comment": "old form"}
            ]
        });
        let plain = caps(&["CAP_CHOWN"]);
        let admin = caps(&["CAP_CHOWN", "CAP_SYS_ADMIN"]);
        for (arch, caps, want) in [
            (
                "amd64",
                &plain,
                vec!["always", "not_admin", "amd64_only", "new_kernel", "single"],
            ),
            (
                "amd64",
                &admin,
                vec!["always", "admin", "amd64_only", "new_kernel", "single"],
            ),
            (
                "arm64",
                &plain,
                vec!["always", "not_admin", "not_amd64", "new_kernel", "single"],
            ),
        ] {
            let got = allowed(&convert(&profile, &target(arch, caps)));
            assert_eq!(got, want, "{arch} {caps:?}");
        }
    }

    #[test]
    fn errno_values_args_and_arch_lists_pass_through() {
        let converted = convert(
            &json!({
                "defaultAction": "SCMP_ACT_ERRNO",
                "defaultErrnoRet": 1,
                "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [
                    {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                    {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                     "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}
                ]
            }),
            &target("amd64", &[]),
        );
        assert_eq!(converted["defaultErrnoRet"], json!(1));
        assert_eq!(converted["architectures"], json!(["SCMP_ARCH_X86_64"]));
        assert_eq!(converted["syscalls"][0]["errnoRet"], json!(13));
        assert!(converted["syscalls"][0].get("args").is_none());
        assert_eq!(
            converted["syscalls"][1]["args"],
            json!([{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}])
        );
    }

    #[test]
    fn a_profile_without_action_or_rules_means_no_filter() {
        let profile = Profile::parse("{}", "empty").unwrap();
        assert!(profile.to_oci(&target("amd64", &[])).unwrap().is_none());
    }

    #[test]
    fn invalid_profiles_are_refused_with_their_name() {
        for (text, want) in [
            ("{", "parsing the seccomp profile p.json"),
            (
                r#"{"defaultAction": "SCMP_ACT_NOPE"}"#,
                "parsing the seccomp profile p.json",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86"],
                    "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}"#,
                "'architectures' and 'archMap'",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ERRNO",
                    "syscalls": [{"name": "a", "names": ["b"], "action": "SCMP_ACT_ALLOW"}]}"#,
                "both 'name' (a) and 'names'",
            ),
            (
                r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["a"],
                    "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4"}}]}"#,
                "parsing the seccomp profile p.json",
            ),
        ] {
            let err = Profile::parse(text, "p.json").unwrap_err();
            assert!(err.to_string().contains(want), "{text}: {err}");
        }
        let missing = Profile::load(Path::new("/nonexistent/profile.json")).unwrap_err();
        assert!(
            missing.to_string().contains("/nonexistent/profile.json"),
            "{missing}"
        );
    }

    #[test]
    fn kernel_releases_parse_as_moby_parses_them() {
        for (release, want) in [
            ("6.1.0-13-amd64", Some((6, 1))),
            ("3.12-1-amd64", Some((3, 12))),
            ("5.10-rc5", Some((5, 10))),
            ("6.18.44-fc-v1045", Some((6, 18))),
            ("garbage", None),
        ] {
            let got = KernelVersion::from_release(release).map(|k| (k.kernel, k.major));
            assert_eq!(got, want, "{release}");
        }
    }
}
