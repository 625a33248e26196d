//! The real build path of `berth build`: plan the Dockerfile, run the engine
//! against the local store, then tag and write the requested outputs.

use super::progress::{Mode, Renderer};
use crate::printer::Printer;
use anyhow::{Context as _, bail};
use berth_builder::engine::imported::RecordSource;
use berth_builder::engine::{self, BuildOptions};
use berth_builder::output::{self, Output};
use berth_builder::remote_cache::{self, ExportSpec, ImportSpec};
use berth_containers::executor::Runtime;
use berth_dockerfile::{self as frontend, FrontendError, PlanOptions, dockerignore};
use berth_store::Store;
use berth_store::image;
use berth_store::layer::Compression;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// What `berth build` was asked for, beyond `--check`.
pub struct Request<'a> {
    /// The context directory.
    pub context: &'a Path,
    /// The Dockerfile.
    pub dockerfile: PathBuf,
    /// `--build-arg` values.
    pub build_args: BTreeMap<String, String>,
    /// `--target`.
    pub target: Option<String>,
    /// `--platform` (one).
    pub platform: Option<frontend::Platform>,
    /// `-t`.
    pub tags: &'a [String],
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--progress`.
    pub progress: Mode,
    /// `--output`.
    pub outputs: &'a [String],
    /// `--runtime`.
    pub runtime: Option<PathBuf>,
    /// The local store's root (`--root`).
    pub root: PathBuf,
    /// `--compression`.
    pub compression: Compression,
    /// `--secret id=…,src=…`.
    pub secrets: &'a [String],
    /// `--push`.
    pub push: bool,
    /// `--cache-from`.
    pub cache_from: &'a [String],
    /// `--cache-to`.
    pub cache_to: &'a [String],
    /// `-q`: print only the image id.
    pub quiet: bool,
    /// `--iidfile`.
    pub iidfile: Option<&'a Path>,
    /// `--label`.
    pub labels: BTreeMap<String, String>,
    /// `--pull`.
    pub pull: bool,
    /// `--add-host`.
    pub add_hosts: Vec<(String, String)>,
}

/// The built image with the `--label` values added to its configuration
/// (no history entry, as BuildKit's); the image itself when there are none.
fn labelled(
    store: &Store,
    built: &engine::BuildOutput,
    labels: &BTreeMap<String, String>,
) -> anyhow::Result<berth_store::oci::Descriptor> {
    if labels.is_empty() {
        return Ok(built.manifest.clone());
    }
    let mut config = built.config.clone();
    config.config.labels.extend(labels.clone());
    image::write(store, &config, &built.layers).context("writing the labelled image")
}

fn parse_secrets(values: &[String]) -> anyhow::Result<BTreeMap<String, PathBuf>> {
    let mut secrets = BTreeMap::new();
    for value in values {
        let mut id = None;
        let mut src = None;
        for part in value.split(',') {
            match part.split_once('=') {
                Some(("id", v)) => id = Some(v.to_string()),
                Some(("src" | "source", v)) => src = Some(PathBuf::from(v)),
                _ => bail!("invalid --secret '{value}': expected id=NAME,src=FILE"),
            }
        }
        let (Some(id), Some(src)) = (id, src) else {
            bail!("invalid --secret '{value}': expected id=NAME,src=FILE");
        };
        if !src.is_file() {
            bail!("--secret {id}: {} is not a file", src.display());
        }
        secrets.insert(id, src);
    }
    Ok(secrets)
}

/// Builds, tags and writes outputs.
pub fn run(request: &Request<'_>, printer: Printer) -> anyhow::Result<ExitCode> {
    if !request.context.is_dir() {
        bail!(
            "the build context {} is not a directory",
            request.context.display()
        );
    }
    let outputs: Vec<Output> = request
        .outputs
        .iter()
        .map(|o| o.parse::<Output>())
        .collect::<Result<_, _>>()?;
    let secrets = parse_secrets(request.secrets)?;
    let cache_from: Vec<ImportSpec> = request
        .cache_from
        .iter()
        .map(|s| s.parse())
        .collect::<Result<_, _>>()?;
    let cache_to: Vec<ExportSpec> = request
        .cache_to
        .iter()
        .map(|s| s.parse())
        .collect::<Result<_, _>>()?;
    let dockerfile = match frontend::parse_file(&request.dockerfile) {
        Ok(d) => d,
        Err(FrontendError::Invalid(diagnostic)) => {
            let source = std::fs::read(&request.dockerfile).unwrap_or_default();
            let text = diagnostic.rendered(&String::from_utf8_lossy(&source));
            writeln!(printer.stderr_data(), "{text}")?;
            return Ok(ExitCode::FAILURE);
        }
        Err(e) => return Err(e.into()),
    };
    let plan = match frontend::plan(
        &dockerfile,
        &PlanOptions {
            build_args: request.build_args.clone(),
            target: request.target.clone(),
            target_platform: request.platform.clone(),
            build_platform: None,
        },
    ) {
        Ok(plan) => plan,
        Err(err) => {
            let mut errors = printer.stderr_data();
            for d in &err.diagnostics {
                writeln!(errors, "{}", d.rendered(&dockerfile.source))?;
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    for warning in &plan.warnings {
        tracing::warn!("{}", warning.rendered(&dockerfile.source));
    }
    let (ignore, _) = dockerignore::for_build(&request.dockerfile, request.context)
        .with_context(|| format!("reading the ignore file of {}", request.context.display()))?;
    let root = &request.root;
    let store =
        Store::open(root).with_context(|| format!("opening the local store {}", root.display()))?;
    // Before the build starts any thread: see the cancel module.
    super::cancel::install(store.tmp_dir(), printer)?;
    let source_date_epoch = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.is_empty() => Some(
            v.parse::<i64>()
                .with_context(|| format!("SOURCE_DATE_EPOCH='{v}' is not a number of seconds"))?,
        ),
        _ => None,
    };
    let options = BuildOptions {
        context: request
            .context
            .canonicalize()
            .with_context(|| format!("resolving {}", request.context.display()))?,
        ignore,
        no_cache: request.no_cache,
        compression: request.compression,
        source_date_epoch,
        runtime: Runtime {
            binary: request
                .runtime
                .clone()
                .unwrap_or_else(Runtime::default_binary),
        },
        secrets,
        escape: dockerfile.escape,
        pull: request.pull,
        add_hosts: request.add_hosts.clone(),
    };
    // Held until the image is tagged, written out and pushed, so that a
    // concurrent `rmi` or `prune` cannot remove the result in between.
    let _lease = store.lease().context("taking a lease on the local store")?;
    // --no-cache reuses nothing, imported caches included, as BuildKit does.
    let import = (!cache_from.is_empty() && !request.no_cache).then(|| {
        let (import, warnings) = remote_cache::Import::open(&store, &cache_from);
        for warning in warnings {
            printer.warn(warning);
        }
        import
    });
    let renderer = Renderer::new(request.progress, printer);
    let result = engine::build_with_import(
        &store,
        &plan,
        &options,
        &renderer,
        import.as_ref().map(|i| i as &dyn RecordSource),
    );
    super::cancel::wait_if_cancelling();
    renderer.finish();
    let built = result?;
    let manifest = labelled(&store, &built, &request.labels)?;
    let mut status = printer.stderr();
    for tag in request.tags {
        store
            .tag(tag, &manifest)
            .with_context(|| format!("tagging the image as {tag}"))?;
        writeln!(status, "naming to {}", berth_store::tags::normalize(tag))?;
    }
    if !outputs.is_empty() {
        let stored = image::load_descriptor(&store, "(built image)", manifest.clone())?;
        for out in &outputs {
            output::write(&store, &stored, request.tags, out)?;
        }
    }
    if request.push {
        if request.tags.is_empty() {
            bail!("--push needs at least one -t NAME to push to");
        }
        for tag in request.tags {
            let name = berth_store::tags::normalize(tag);
            // The same per-blob progress as `berth push`.
            let progress = crate::commands::transfer_progress::TransferProgress::new(
                crate::commands::transfer_progress::Direction::Push,
                printer,
            );
            let result = berth_builder::registry::push_image(
                &store,
                &name,
                tag,
                &berth_builder::registry::TransferOptions::from_env(),
                progress.sink(),
            );
            progress.finish();
            let digest = result?.digest;
            writeln!(status, "pushed {tag}@{digest}")?;
        }
    }
    for spec in &cache_to {
        match remote_cache::export(&store, &built.cache, spec, import.as_ref()) {
            Ok(report) => writeln!(
                status,
                "exported the build cache to {} ({} records, {} layers): {}",
                spec.location, report.records, report.layers, report.digest
            )?,
            Err(e) if spec.ignore_error => {
                printer.warn(crate::printer::report(&e));
            }
            Err(e) => return Err(e.into()),
        }
    }
    writeln!(
        status,
        "built {} ({} steps run, {} cached)",
        manifest.digest, built.steps_run, built.steps_cached
    )?;
    let id = image::load_descriptor(&store, "(built image)", manifest.clone())?
        .manifest
        .config
        .digest;
    if let Some(path) = request.iidfile {
        std::fs::write(path, id.to_string())
            .with_context(|| format!("writing the image id to {}", path.display()))?;
    }
    // docker prints only the image id with -q; otherwise berth prints the
    // manifest digest, which scripts already read.
    if request.quiet {
        writeln!(printer.stdout(), "{id}")?;
    } else {
        writeln!(printer.stdout(), "{}", manifest.digest)?;
    }
    Ok(ExitCode::SUCCESS)
}
