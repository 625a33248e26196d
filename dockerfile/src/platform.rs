//! OCI platforms (`os/arch[/variant]`) as `--platform` and the automatic
//! platform build args (`TARGETPLATFORM`, `BUILDARCH`, …) use them.

use serde::{Deserialize, Serialize};
use std::fmt;

/// An OCI platform.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Platform {
    /// The operating system, e.g. `linux`.
    pub os: String,
    /// The CPU architecture in OCI spelling, e.g. `amd64`, `arm64`.
    pub architecture: String,
    /// The variant, e.g. `v7`; empty when none.
    pub variant: String,
}

impl Platform {
    /// Parses `os/arch[/variant]` or a bare `arch` (Linux assumed), normalising
    /// common aliases (`x86_64` → `amd64`, `aarch64` → `arm64`, `armhf` → `arm/v7`).
    pub fn parse(text: &str) -> Result<Platform, String> {
        let lower = text.trim().to_ascii_lowercase();
        let parts: Vec<&str> = lower.split('/').collect();
        let (os, arch, variant) = match parts.as_slice() {
            [arch] if !arch.is_empty() => ("linux", *arch, ""),
            [os, arch] if !os.is_empty() && !arch.is_empty() => (*os, *arch, ""),
            [os, arch, variant] if !os.is_empty() && !arch.is_empty() && !variant.is_empty() => {
                (*os, *arch, *variant)
            }
            _ => {
                return Err(format!(
                    "invalid platform {text:?}: expected os/arch[/variant], e.g. linux/amd64"
                ));
            }
        };
        let valid = |s: &str| {
            s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        };
        if !valid(os) || !valid(arch) || !valid(variant) {
            return Err(format!("invalid platform {text:?}: unexpected characters"));
        }
        let (architecture, variant) = normalize_arch(arch, variant);
        Ok(Platform {
            os: os.to_string(),
            architecture,
            variant,
        })
    }

    /// The platform berth itself runs on.
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "arm" => "arm",
            "powerpc64" => "ppc64le",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            other => other,
        };
        let variant = if arch == "arm" { "v7" } else { "" };
        Platform {
            os: std::env::consts::OS.to_string(),
            architecture: arch.to_string(),
            variant: variant.to_string(),
        }
    }

    /// The build args describing this platform with the given prefix
    /// (`TARGET` or `BUILD`): `…PLATFORM`, `…OS`, `…ARCH`, `…VARIANT`.
    pub fn args(&self, prefix: &str) -> [(String, String); 4] {
        [
            (format!("{prefix}PLATFORM"), self.to_string()),
            (format!("{prefix}OS"), self.os.clone()),
            (format!("{prefix}ARCH"), self.architecture.clone()),
            (format!("{prefix}VARIANT"), self.variant.clone()),
        ]
    }
}

fn normalize_arch(arch: &str, variant: &str) -> (String, String) {
    match (arch, variant) {
        ("x86_64" | "x86-64" | "amd64", v) => ("amd64".into(), v.into()),
        ("i386" | "i686" | "386", _) => ("386".into(), String::new()),
        ("aarch64" | "arm64", "8" | "v8") => ("arm64".into(), String::new()),
        ("aarch64" | "arm64", v) => ("arm64".into(), v.into()),
        ("armhf", _) => ("arm".into(), "v7".into()),
        ("armel", _) => ("arm".into(), "v6".into()),
        ("arm", "") => ("arm".into(), "v7".into()),
        ("arm", v) if !v.starts_with('v') => ("arm".into(), format!("v{v}")),
        (a, v) => (a.into(), v.into()),
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if !self.variant.is_empty() {
            write!(f, "/{}", self.variant)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        let cases = [
            ("linux/amd64", "linux/amd64"),
            ("linux/x86_64", "linux/amd64"),
            ("linux/arm64/v8", "linux/arm64"),
            ("linux/arm", "linux/arm/v7"),
            ("linux/arm/6", "linux/arm/v6"),
            ("arm64", "linux/arm64"),
            ("Linux/AMD64", "linux/amd64"),
        ];
        for (input, expected) in cases {
            assert_eq!(
                Platform::parse(input).unwrap().to_string(),
                expected,
                "{input}"
            );
        }
        for bad in ["", "/", "linux/", "a/b/c/d", "linux/am d64"] {
            assert!(Platform::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn platform_args() {
        let platform = Platform::parse("linux/arm/v7").unwrap();
        let args = platform.args("TARGET");
        assert_eq!(args[0], ("TARGETPLATFORM".into(), "linux/arm/v7".into()));
        assert_eq!(args[3], ("TARGETVARIANT".into(), "v7".into()));
    }
}
