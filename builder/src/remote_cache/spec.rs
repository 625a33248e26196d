//! The `--cache-from` and `--cache-to` values, in BuildKit's syntax:
//! `type=registry,ref=R[,mode=min|max]`, `type=local,src=DIR` and
//! `type=local,dest=DIR[,mode=min|max]` (a bare `R` means
//! `type=registry,ref=R`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

/// The tag a cache gets in a local directory when none is given.
pub const DEFAULT_LOCAL_TAG: &str = "latest";

/// Where a cache is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A manifest in a registry, by reference (tag or digest).
    Registry {
        /// The reference, e.g. `registry.example.com/app/cache:main`.
        reference: String,
    },
    /// A manifest in an OCI image layout directory, named by a tag in its
    /// `index.json`.
    Local {
        /// The layout directory.
        dir: PathBuf,
        /// The tag (`org.opencontainers.image.ref.name`).
        tag: String,
    },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Registry { reference } => write!(f, "{reference}"),
            Location::Local { dir, tag } => write!(f, "{}:{tag}", dir.display()),
        }
    }
}

/// Which records `--cache-to` exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// The steps that made the image's layers (BuildKit's default).
    #[default]
    Min,
    /// The steps of every stage built.
    Max,
}

/// A `--cache-from` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportSpec {
    /// Where the cache is read from.
    pub location: Location,
}

/// A `--cache-to` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSpec {
    /// Where the cache is written.
    pub location: Location,
    /// Which records go in.
    pub mode: Mode,
    /// `ignore-error=true`: a failed export is only a warning.
    pub ignore_error: bool,
}

/// A value that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {flag} '{spec}': {reason}")]
pub struct SpecError {
    /// `--cache-from` or `--cache-to`.
    pub flag: &'static str,
    /// The value.
    pub spec: String,
    /// What is wrong, with the accepted forms.
    pub reason: String,
}

/// The fields of a spec, with the keys every kind of cache accepts checked.
struct Fields {
    flag: &'static str,
    spec: String,
    map: BTreeMap<String, String>,
}

impl Fields {
    fn parse(flag: &'static str, spec: &str, allowed: &[&str]) -> Result<Fields, SpecError> {
        let error = |reason: String| SpecError {
            flag,
            spec: spec.to_string(),
            reason,
        };
        let mut map = BTreeMap::new();
        if !spec.contains('=') {
            // A bare reference, as BuildKit accepts.
            map.insert("type".to_string(), "registry".to_string());
            map.insert("ref".to_string(), spec.to_string());
        } else {
            for part in spec.split(',') {
                let Some((key, value)) = part.split_once('=') else {
                    return Err(error(format!("'{part}' is not KEY=VALUE")));
                };
                if !allowed.contains(&key) {
                    return Err(error(format!(
                        "unknown option '{key}' (accepted: {})",
                        allowed.join(", ")
                    )));
                }
                if map.insert(key.to_string(), value.to_string()).is_some() {
                    return Err(error(format!("'{key}' is given twice")));
                }
            }
        }
        Ok(Fields {
            flag,
            spec: spec.to_string(),
            map,
        })
    }

    fn error(&self, reason: impl Into<String>) -> SpecError {
        SpecError {
            flag: self.flag,
            spec: self.spec.clone(),
            reason: reason.into(),
        }
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.map
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// The location; `dir_key` is `src` for imports and `dest` for exports.
    fn location(&self, dir_key: &str) -> Result<Location, SpecError> {
        let other_dir_key = if dir_key == "src" { "dest" } else { "src" };
        match self.get("type") {
            Some("registry") => {
                let Some(reference) = self.get("ref") else {
                    return Err(self.error("type=registry needs ref=REFERENCE"));
                };
                for local_only in ["src", "dest", "tag"] {
                    if self.map.contains_key(local_only) {
                        return Err(self.error(format!("'{local_only}' is for type=local")));
                    }
                }
                Ok(Location::Registry {
                    reference: reference.to_string(),
                })
            }
            Some("local") => {
                if self.map.contains_key("ref") {
                    return Err(self.error("'ref' is for type=registry"));
                }
                if self.map.contains_key(other_dir_key) {
                    return Err(self.error(format!(
                        "{} takes {dir_key}=DIR, not {other_dir_key}=",
                        self.flag
                    )));
                }
                let Some(dir) = self.get(dir_key) else {
                    return Err(self.error(format!("type=local needs {dir_key}=DIR")));
                };
                Ok(Location::Local {
                    dir: PathBuf::from(dir),
                    tag: self.get("tag").unwrap_or(DEFAULT_LOCAL_TAG).to_string(),
                })
            }
            Some(other) => Err(self.error(format!(
                "unsupported cache type '{other}' (berth supports registry and local)"
            ))),
            None => Err(self.error("type=registry or type=local is missing")),
        }
    }
}

impl FromStr for ImportSpec {
    type Err = SpecError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        // `dest` is accepted here only to say that imports take `src`.
        let fields = Fields::parse("--cache-from", spec, &["type", "ref", "src", "dest", "tag"])?;
        Ok(ImportSpec {
            location: fields.location("src")?,
        })
    }
}

impl FromStr for ExportSpec {
    type Err = SpecError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let fields = Fields::parse(
            "--cache-to",
            spec,
            &["type", "ref", "dest", "src", "tag", "mode", "ignore-error"],
        )?;
        let mode = match fields.get("mode") {
            None | Some("min") => Mode::Min,
            Some("max") => Mode::Max,
            Some(other) => {
                return Err(fields.error(format!("mode must be min or max, not '{other}'")));
            }
        };
        let ignore_error = match fields.get("ignore-error") {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(
                    fields.error(format!("ignore-error must be true or false, not '{other}'"))
                );
            }
        };
        Ok(ExportSpec {
            location: fields.location("dest")?,
            mode,
            ignore_error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(reference: &str) -> Location {
        Location::Registry {
            reference: reference.into(),
        }
    }

    fn local(dir: &str, tag: &str) -> Location {
        Location::Local {
            dir: dir.into(),
            tag: tag.into(),
        }
    }

    #[test]
    fn import_specs() {
        for (spec, expected) in [
            (
                "type=registry,ref=r.io/app:cache",
                registry("r.io/app:cache"),
            ),
            ("r.io/app:cache", registry("r.io/app:cache")),
            ("type=local,src=/c", local("/c", "latest")),
            ("type=local,src=/c,tag=main", local("/c", "main")),
        ] {
            assert_eq!(
                spec.parse::<ImportSpec>().unwrap().location,
                expected,
                "{spec}"
            );
        }
    }

    #[test]
    fn export_specs() {
        for (spec, location, mode, ignore_error) in [
            ("type=registry,ref=r/c", registry("r/c"), Mode::Min, false),
            (
                "type=registry,ref=r/c,mode=max",
                registry("r/c"),
                Mode::Max,
                false,
            ),
            (
                "type=registry,ref=r/c,mode=min,ignore-error=true",
                registry("r/c"),
                Mode::Min,
                true,
            ),
            (
                "type=local,dest=/c",
                local("/c", "latest"),
                Mode::Min,
                false,
            ),
            (
                "type=local,dest=/c,mode=max,tag=t",
                local("/c", "t"),
                Mode::Max,
                false,
            ),
        ] {
            let parsed: ExportSpec = spec.parse().unwrap();
            assert_eq!(
                parsed,
                ExportSpec {
                    location,
                    mode,
                    ignore_error
                },
                "{spec}"
            );
        }
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        for (spec, expected) in [
            ("type=registry", "needs ref="),
            ("type=gha,ref=x", "unsupported cache type 'gha'"),
            ("type=local,dest=/c", "takes src=DIR"),
            ("type=local,src=/c,ref=x", "'ref' is for type=registry"),
            ("type=registry,ref=r,mode=max", "unknown option 'mode'"),
            ("ref=r", "type=registry or type=local is missing"),
            ("type=registry,ref=r,ref=s", "given twice"),
            ("type=registry,ref=r,x", "'x' is not KEY=VALUE"),
        ] {
            let error = spec.parse::<ImportSpec>().unwrap_err().to_string();
            assert!(error.contains(expected), "{spec}: {error}");
            assert!(error.starts_with("invalid --cache-from"), "{error}");
        }
        for (spec, expected) in [
            ("type=registry,ref=r,mode=all", "mode must be min or max"),
            ("type=local,src=/c", "takes dest=DIR"),
            (
                "type=registry,ref=r,ignore-error=yes",
                "ignore-error must be",
            ),
        ] {
            let error = spec.parse::<ExportSpec>().unwrap_err().to_string();
            assert!(error.contains(expected), "{spec}: {error}");
        }
    }
}
