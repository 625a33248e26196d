//! What `berth run` asks for, and Docker's rules for its flags: `-v` bind
//! mounts, `--env-file` files, and the command line from `--entrypoint`, the
//! arguments and the image.

use super::{ContainerError, cio};
use crate::executor::config::Network;
use crate::executor::seccomp::SeccompPolicy;
use std::fs;
use std::path::{Path, PathBuf};

/// What `berth run` asks for.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The image name.
    pub image: String,
    /// The arguments after the image: they replace the image's `Cmd`.
    pub command: Vec<String>,
    /// `--entrypoint`: replaces the image's `Entrypoint` and resets its `Cmd`.
    pub entrypoint: Option<String>,
    /// `-e KEY=value` or `-e KEY` (taken from berth's own environment).
    pub env: Vec<String>,
    /// `-v HOST:CONTAINER[:ro|rw]`.
    pub volumes: Vec<String>,
    /// `-w`: the working directory (created if missing).
    pub workdir: Option<String>,
    /// `-u USER[:GROUP]`.
    pub user: Option<String>,
    /// `--hostname` (default: the short id).
    pub hostname: Option<String>,
    /// `--name` (default: a made-up one).
    pub name: Option<String>,
    /// `-t`: a pseudo-terminal.
    pub tty: bool,
    /// `--rm`: remove the container when it exits.
    pub auto_remove: bool,
    /// `-d`: a monitor process owns the container.
    pub detached: bool,
    /// `--network`.
    pub network: Network,
    /// The runtime binary.
    pub runtime: PathBuf,
    /// `--security-opt seccomp=…` (default: Docker's profile).
    pub seccomp: SeccompPolicy,
    /// The resource limits and the restart policy.
    pub resources: crate::resources::Limits,
}

/// A parsed `-v` bind mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    /// The host path (absolute).
    pub host: PathBuf,
    /// The container path (absolute).
    pub container: String,
    /// Whether it is read-only.
    pub readonly: bool,
}

/// Parses `HOST:CONTAINER[:OPTIONS]`, options being `ro`, `rw` and the
/// SELinux labels `z`/`Z` (accepted, meaningless without SELinux).
pub fn parse_volume(spec: &str) -> Result<Volume, ContainerError> {
    let invalid = |reason: &str| ContainerError::InvalidVolume {
        spec: spec.to_string(),
        reason: reason.to_string(),
    };
    let parts: Vec<&str> = spec.split(':').collect();
    let (host, container, options) = match parts.as_slice() {
        [host, container] => (*host, *container, ""),
        [host, container, options] => (*host, *container, *options),
        _ => return Err(invalid("expected HOST:CONTAINER or HOST:CONTAINER:ro")),
    };
    if !host.starts_with('/') {
        return Err(invalid(
            "the host path must be absolute (berth has no named volumes)",
        ));
    }
    if !container.starts_with('/') {
        return Err(invalid("the container path must be absolute"));
    }
    if container == "/" {
        return Err(invalid("the container path must not be /"));
    }
    let mut readonly = false;
    for option in options.split(',').filter(|o| !o.is_empty()) {
        match option {
            "ro" => readonly = true,
            "rw" => readonly = false,
            "z" | "Z" => {}
            other => return Err(invalid(&format!("unknown option '{other}'"))),
        }
    }
    Ok(Volume {
        host: PathBuf::from(host),
        container: container.to_string(),
        readonly,
    })
}

/// The command line Docker would run: `--entrypoint` replaces the image's
/// entrypoint and drops its `Cmd`; arguments after the image replace `Cmd`.
pub fn command_line(
    image_entrypoint: Option<&[String]>,
    image_cmd: Option<&[String]>,
    entrypoint: Option<&str>,
    args: &[String],
) -> Vec<String> {
    let entry: Vec<String> = match entrypoint {
        Some("") => Vec::new(),
        Some(e) => vec![e.to_string()],
        None => image_entrypoint.unwrap_or_default().to_vec(),
    };
    let cmd: Vec<String> = if !args.is_empty() {
        args.to_vec()
    } else if entrypoint.is_some() {
        Vec::new()
    } else {
        image_cmd.unwrap_or_default().to_vec()
    };
    entry.into_iter().chain(cmd).collect()
}

/// The `-e` values an `--env-file` holds, in order: each line `KEY=value`
/// or a bare `KEY`, as Docker reads it. Leading whitespace is dropped, and
/// blank lines and lines starting with `#` are skipped. Values are taken
/// as written, quotes included.
pub fn env_file_entries(path: &Path) -> Result<Vec<String>, ContainerError> {
    let text = fs::read_to_string(path).map_err(cio("reading the env file", path))?;
    let mut entries = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = line.split('=').next().unwrap_or_default();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(ContainerError::InvalidEnvFile {
                path: path.to_owned(),
                line: number + 1,
                reason: format!("'{key}' is not a variable name"),
            });
        }
        entries.push(line.to_owned());
    }
    Ok(entries)
}

/// Sets `KEY=value` in `env`, replacing an earlier value of the same key.
pub(crate) fn set_env(env: &mut Vec<String>, entry: String) {
    let key = entry.split('=').next().unwrap_or_default().to_string();
    env.retain(|e| e.split('=').next() != Some(key.as_str()));
    env.push(entry);
}

/// The environment Docker gives the process: `PATH` (a default if the image
/// has none), `HOSTNAME`, `TERM` with a terminal, the image's `Env`, the
/// `-e` values (`-e KEY` copies berth's own value, or nothing), and `HOME`
/// from the user's passwd entry unless set.
pub fn environment(
    image_env: &[String],
    flags: &[String],
    hostname: &str,
    tty: bool,
    home: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<String>, ContainerError> {
    let mut env = vec![
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        format!("HOSTNAME={hostname}"),
    ];
    if tty {
        env.push("TERM=xterm".into());
    }
    for entry in image_env {
        set_env(&mut env, entry.clone());
    }
    for flag in flags {
        if let Some(entry) = env_flag(flag, &lookup)? {
            set_env(&mut env, entry);
        }
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={home}"));
    }
    Ok(env)
}

/// The `KEY=value` entry an `-e` flag stands for: itself, or for a bare
/// `KEY` the value `lookup` gives (none when it gives none), as Docker does.
pub(crate) fn env_flag(
    flag: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Option<String>, ContainerError> {
    match flag.split_once('=') {
        Some(("", _)) => Err(ContainerError::InvalidEnv(flag.to_owned())),
        Some(_) => Ok(Some(flag.to_owned())),
        None if flag.is_empty() => Err(ContainerError::InvalidEnv(flag.to_owned())),
        None => Ok(lookup(flag).map(|value| format!("{flag}={value}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn env_files_are_read_as_docker_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("env");
        for (text, want) in [
            ("A=1\nB=two words\n", Ok(vec!["A=1", "B=two words"])),
            (
                "# comment\n\n   C=\"quoted\"\nBARE\n",
                Ok(vec!["C=\"quoted\"", "BARE"]),
            ),
            ("D=x=y\n", Ok(vec!["D=x=y"])),
            ("OK=1\nBAD KEY=1\n", Err(2)),
            ("=nokey\n", Err(1)),
        ] {
            fs::write(&path, text).unwrap();
            match (env_file_entries(&path), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, strings(&want), "{text:?}"),
                (Err(ContainerError::InvalidEnvFile { line, .. }), Err(want)) => {
                    assert_eq!(line, want, "{text:?}")
                }
                (got, want) => panic!("{text:?}: got {got:?}, want {want:?}"),
            }
        }
        let missing = env_file_entries(&dir.path().join("nope")).unwrap_err();
        assert!(missing.to_string().contains("nope"), "{missing}");
    }

    #[test]
    fn command_line_follows_dockers_rules() {
        let ep = strings(&["/entry", "-x"]);
        let cmd = strings(&["serve"]);
        type Case<'a> = (
            Option<&'a [String]>,
            Option<&'a [String]>,
            Option<&'a str>,
            &'a [&'a str],
            &'a [&'a str],
        );
        let cases: &[Case] = &[
            (Some(&ep), Some(&cmd), None, &[], &["/entry", "-x", "serve"]),
            (
                Some(&ep),
                Some(&cmd),
                None,
                &["other"],
                &["/entry", "-x", "other"],
            ),
            (Some(&ep), Some(&cmd), Some("/bin/sh"), &[], &["/bin/sh"]),
            (
                Some(&ep),
                Some(&cmd),
                Some("/bin/sh"),
                &["-c", "id"],
                &["/bin/sh", "-c", "id"],
            ),
            (Some(&ep), Some(&cmd), Some(""), &["echo"], &["echo"]),
            (None, Some(&cmd), None, &[], &["serve"]),
            (None, None, None, &[], &[]),
        ];
        for (iep, icmd, flag, args, want) in cases {
            assert_eq!(
                command_line(*iep, *icmd, *flag, &strings(args)),
                strings(want),
                "{flag:?} {args:?}"
            );
        }
    }

    #[test]
    fn volumes_parse_or_say_why_not() {
        assert_eq!(
            parse_volume("/data:/mnt:ro").unwrap(),
            Volume {
                host: "/data".into(),
                container: "/mnt".into(),
                readonly: true
            }
        );
        assert!(!parse_volume("/data:/mnt").unwrap().readonly);
        assert!(!parse_volume("/data:/mnt:z,rw").unwrap().readonly);
        for bad in [
            "/data",
            "data:/mnt",
            "/data:mnt",
            "/a:/b:rx",
            "/a:/b:ro:x",
            "/a:/",
        ] {
            assert!(
                matches!(parse_volume(bad), Err(ContainerError::InvalidVolume { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn environment_layers_defaults_image_and_flags() {
        let image = strings(&["PATH=/app/bin", "A=image", "B=image"]);
        let flags = strings(&["A=flag", "FROM_HOST", "UNSET", "C=x=y"]);
        let env = environment(&image, &flags, "h1", true, "/root", |k| {
            (k == "FROM_HOST").then(|| "v".to_string())
        })
        .unwrap();
        assert_eq!(
            env,
            strings(&[
                "HOSTNAME=h1",
                "TERM=xterm",
                "PATH=/app/bin",
                "B=image",
                "A=flag",
                "FROM_HOST=v",
                "C=x=y",
                "HOME=/root"
            ])
        );
        let plain = environment(&[], &[], "h", false, "/", |_| None).unwrap();
        assert!(plain[0].starts_with("PATH=/usr/local/sbin"));
        assert!(!plain.iter().any(|e| e.starts_with("TERM=")));
        assert!(environment(&[], &strings(&["=x"]), "h", false, "/", |_| None).is_err());
    }
}
