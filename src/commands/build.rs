//! `berth build`: build an image from a Dockerfile and a context directory.
//!
//! With `--check` it only parses and plans the Dockerfile, without building
//! or touching the network, and reports every error and warning with its
//! line, like `docker build --check`. Without it, `exec` runs the build.

mod cancel;
mod exec;
mod progress;

use super::GlobalArgs;
use crate::printer::Printer;
use anyhow::{Context as _, bail};
use berth_dockerfile::{
    self as frontend, Diagnostic, FrontendError, PlanOptions, Platform, Severity, dockerignore,
};
use clap::Args;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `berth build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Only check the Dockerfile: parse and plan it, report every error and
    /// warning, and exit non-zero if it is invalid. Nothing is built.
    #[arg(long)]
    pub check: bool,
    /// The Dockerfile (default: CONTEXT/Dockerfile).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Set a build arg (NAME=VALUE; NAME alone takes the value from the environment).
    #[arg(long = "build-arg", value_name = "NAME=VALUE")]
    pub build_args: Vec<String>,
    /// Build only up to this stage (and the stages it needs).
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,
    /// The platform(s) to build for, e.g. linux/amd64 or linux/amd64,linux/arm64.
    #[arg(long, value_name = "PLATFORM")]
    pub platform: Option<String>,
    /// Name the image in the local store (repeatable), e.g. app or app:1.0.
    #[arg(short = 't', long = "tag", value_name = "NAME")]
    pub tags: Vec<String>,
    /// Rebuild every step instead of reusing cached layers.
    #[arg(long)]
    pub no_cache: bool,
    /// How progress is shown.
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: progress::Mode,
    /// Also write the image out: type=oci,dest=DIR|FILE.tar or type=docker,dest=FILE.tar.
    #[arg(short = 'o', long = "output", value_name = "SPEC")]
    pub outputs: Vec<String>,
    /// The runc-compatible runtime RUN steps use (default: berth-runtime beside berth).
    #[arg(long, value_name = "PATH")]
    pub runtime: Option<PathBuf>,
    /// Layer compression: gzip, zstd or uncompressed.
    #[arg(long, value_name = "ALGO", default_value = "gzip")]
    pub compression: berth_store::layer::Compression,
    /// Push every -t name to its registry after the build.
    #[arg(long)]
    pub push: bool,
    /// A secret for RUN --mount=type=secret: id=NAME,src=FILE.
    #[arg(long = "secret", value_name = "id=NAME,src=FILE")]
    pub secrets: Vec<String>,
    /// Reuse a build cache (repeatable): type=registry,ref=REF or
    /// type=local,src=DIR[,tag=TAG]. One that cannot be read is a warning.
    #[arg(long = "cache-from", value_name = "SPEC")]
    pub cache_from: Vec<String>,
    /// Export the build cache (repeatable): type=registry,ref=REF or
    /// type=local,dest=DIR[,tag=TAG], with mode=min (the image's steps, the
    /// default) or mode=max (every stage's steps).
    #[arg(long = "cache-to", value_name = "SPEC")]
    pub cache_to: Vec<String>,
    /// The build context directory.
    #[arg(value_name = "CONTEXT")]
    pub context: PathBuf,
    /// Print only the image id: no progress, no status.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Write the image id to this file.
    #[arg(long, value_name = "FILE")]
    pub iidfile: Option<PathBuf>,
    /// Add a name to RUN steps' /etc/hosts (HOST:IP).
    #[arg(long = "add-host", value_name = "HOST:IP")]
    pub add_hosts: Vec<String>,
    /// Always fetch the base images from their registries.
    #[arg(long)]
    pub pull: bool,
    /// A label of the image (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
}

/// Parses `--build-arg` values; `NAME` alone is taken from the environment
/// and left out when it is not set there, as docker does.
fn build_args(values: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut args = BTreeMap::new();
    for value in values {
        match value.split_once('=') {
            Some(("", _)) => {
                bail!("invalid --build-arg {value:?}: the name is empty")
            }
            Some((name, value)) => {
                args.insert(name.to_string(), value.to_string());
            }
            None => {
                if let Ok(from_env) = std::env::var(value) {
                    args.insert(value.clone(), from_env);
                }
            }
        }
    }
    Ok(args)
}

/// `--add-host HOST:IP` values, as docker's: the address may be IPv6 (it
/// has colons of its own) and `=` is accepted as the separator too.
fn add_hosts(values: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    values
        .iter()
        .map(|value| {
            let (host, ip) = value
                .split_once('=')
                .or_else(|| value.split_once(':'))
                .with_context(|| format!("invalid --add-host '{value}': expected HOST:IP"))?;
            let ip = ip.trim_start_matches('[').trim_end_matches(']');
            if host.is_empty() || ip.parse::<std::net::IpAddr>().is_err() {
                bail!("invalid --add-host '{value}': expected HOST:IP with an IP address");
            }
            Ok((host.to_string(), ip.to_string()))
        })
        .collect()
}

/// `--label KEY=VALUE` values (a bare KEY is an empty value, as docker's).
fn labels(values: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    for value in values {
        let (key, val) = value.split_once('=').unwrap_or((value.as_str(), ""));
        if key.is_empty() {
            bail!("invalid --label '{value}': the key must not be empty");
        }
        labels.insert(key.to_string(), val.to_string());
    }
    Ok(labels)
}

fn platforms(value: Option<&str>) -> anyhow::Result<Vec<Option<Platform>>> {
    let Some(value) = value else {
        return Ok(vec![None]);
    };
    value
        .split(',')
        .map(|p| {
            Platform::parse(p)
                .map(Some)
                .map_err(|message| anyhow::anyhow!("invalid --platform: {message}"))
        })
        .collect()
}

/// Runs `berth build`.
pub fn run(args: &BuildArgs, global: &GlobalArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    if !args.check {
        return build(args, global, printer);
    }
    check(args, printer)
}

/// The real build: one platform, the engine, then tags and outputs.
fn build(args: &BuildArgs, global: &GlobalArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    let mut platforms = platforms(args.platform.as_deref())?;
    if platforms.len() > 1 {
        bail!("building for several platforms at once is not supported yet; pass one --platform");
    }
    let printer = printer.quiet_if(args.quiet);
    exec::run(
        &exec::Request {
            context: &args.context,
            dockerfile: args
                .file
                .clone()
                .unwrap_or_else(|| args.context.join("Dockerfile")),
            build_args: build_args(&args.build_args)?,
            target: args.target.clone(),
            platform: platforms.pop().flatten(),
            tags: &args.tags,
            no_cache: args.no_cache,
            progress: args.progress,
            outputs: &args.outputs,
            runtime: args.runtime.clone(),
            root: global.store_root(),
            compression: args.compression,
            secrets: &args.secrets,
            push: args.push,
            cache_from: &args.cache_from,
            cache_to: &args.cache_to,
            quiet: args.quiet,
            iidfile: args.iidfile.as_deref(),
            labels: labels(&args.labels)?,
            pull: args.pull,
            add_hosts: add_hosts(&args.add_hosts)?,
        },
        printer,
    )
}

fn check(args: &BuildArgs, printer: Printer) -> anyhow::Result<ExitCode> {
    if !args.context.is_dir() {
        bail!(
            "the build context {} is not a directory",
            args.context.display()
        );
    }
    let dockerfile_path = args
        .file
        .clone()
        .unwrap_or_else(|| args.context.join("Dockerfile"));
    let build_args = build_args(&args.build_args)?;
    let platforms = platforms(args.platform.as_deref())?;
    let (_, ignore_file) = dockerignore::for_build(&dockerfile_path, &args.context)
        .with_context(|| format!("cannot use the ignore file of {}", args.context.display()))?;
    if let Some(ignore_file) = ignore_file {
        tracing::debug!(path = %ignore_file.display(), "read ignore file");
    }
    let dockerfile = match frontend::parse_file(&dockerfile_path) {
        Ok(dockerfile) => dockerfile,
        Err(FrontendError::Invalid(diagnostic)) => {
            let source = std::fs::read(&dockerfile_path).unwrap_or_default();
            report(&String::from_utf8_lossy(&source), &[*diagnostic], printer)?;
            return Ok(ExitCode::FAILURE);
        }
        Err(err) => return Err(err.into()),
    };
    let mut diagnostics: Vec<Diagnostic> = Vec::new();
    for target_platform in platforms {
        let options = PlanOptions {
            build_args: build_args.clone(),
            target: args.target.clone(),
            target_platform,
            build_platform: None,
        };
        let found = match frontend::plan(&dockerfile, &options) {
            Ok(plan) => plan.warnings,
            Err(err) => err.diagnostics,
        };
        for diagnostic in found {
            if !diagnostics.contains(&diagnostic) {
                diagnostics.push(diagnostic);
            }
        }
    }
    report(&dockerfile.source, &diagnostics, printer)?;
    let failed = diagnostics.iter().any(|d| d.severity == Severity::Error);
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Prints the diagnostics and a summary line: they are the answer of
/// `--check`, so they go to stdout.
fn report(source: &str, diagnostics: &[Diagnostic], printer: Printer) -> std::io::Result<()> {
    let mut out = printer.stdout();
    for diagnostic in diagnostics {
        writeln!(out, "{}", diagnostic.rendered(source))?;
    }
    let errors = diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    let warnings = diagnostics.len() - errors;
    let plural = |n: usize, word: &str| {
        if n == 1 {
            format!("1 {word}")
        } else {
            format!("{n} {word}s")
        }
    };
    match (errors, warnings) {
        (0, 0) => writeln!(out, "Check complete, no warnings found."),
        (0, w) => writeln!(out, "Check complete, {} found.", plural(w, "warning")),
        (e, w) => writeln!(
            out,
            "Check failed: {} and {} found.",
            plural(e, "error"),
            plural(w, "warning")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_arg_forms() {
        let args = build_args(&["A=1".into(), "B=".into(), "C=x=y".into()]).unwrap();
        assert_eq!(args.get("A").map(String::as_str), Some("1"));
        assert_eq!(args.get("B").map(String::as_str), Some(""));
        assert_eq!(args.get("C").map(String::as_str), Some("x=y"));
        assert!(build_args(&["=1".into()]).is_err());
        let path_only = build_args(&["BERTH_TEST_SURELY_UNSET_VARIABLE".into()]).unwrap();
        assert!(path_only.is_empty());
    }

    #[test]
    fn add_host_forms() {
        let ok = add_hosts(&[
            "db:10.1.2.3".into(),
            "v6:::1".into(),
            "eq=192.0.2.9".into(),
            "br:[fe80::1]".into(),
        ])
        .unwrap();
        assert_eq!(
            ok,
            [
                ("db".to_string(), "10.1.2.3".to_string()),
                ("v6".into(), "::1".into()),
                ("eq".into(), "192.0.2.9".into()),
                ("br".into(), "fe80::1".into()),
            ]
        );
        for bad in ["nohost", ":10.0.0.1", "db:notanip"] {
            assert!(add_hosts(&[bad.into()]).is_err(), "{bad}");
        }
    }

    #[test]
    fn platform_lists() {
        assert_eq!(platforms(None).unwrap(), vec![None]);
        assert_eq!(platforms(Some("linux/amd64,linux/arm64")).unwrap().len(), 2);
        assert!(platforms(Some("linux/")).is_err());
    }
}
