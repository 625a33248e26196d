//! The build engine: it walks the frontend's plan, builds only the stages the
//! target needs (independent stages in parallel), computes each step's cache
//! key, reuses cached layers, runs the rest, and writes the image.

pub mod chmod;
pub mod convert;
pub mod copy;
pub mod fetch;
pub mod imported;
pub mod key;
pub mod metadata;
pub mod progress;
pub mod run;
pub mod step;

use crate::cache::{CacheRecord, CacheStore, LayerRecord};
use crate::context::{Context, HashCache, Visit};
use berth_containers::executor::{Runtime, view};
use berth_dockerfile::dockerignore::Matcher;
use berth_dockerfile::plan::{self, BuildPlan};
use berth_store::image::{self, ImageError};
use berth_store::layer::{Compression, LayerError, WriteOptions, extract};
use berth_store::oci::{Descriptor, History, ImageConfig, RootFs, rfc3339};
use berth_store::{Digest, Store, StoreError};
pub use progress::{Event, NoProgress, Progress, StepId};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use step::{CopyFrom, CopyStep, Instruction, Step};

/// An instruction as an error names it: its first line, shortened, and `…`
/// when more lines follow (a heredoc, a continued line).
fn shown_instruction(instruction: &str) -> String {
    let mut lines = instruction.lines();
    let first = run::shorten(lines.next().unwrap_or_default());
    if lines.next().is_some() {
        format!("{first} …")
    } else {
        first
    }
}

/// Errors of a build.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A step failed; the message names the Dockerfile line and shows the
    /// instruction's first line, shortened (the cause follows it on the same
    /// line of the report, and an argument can be megabytes long).
    #[error("{file}:{line}: {}", shown_instruction(instruction))]
    Step {
        /// The Dockerfile name.
        file: String,
        /// The line.
        line: usize,
        /// The instruction as written.
        instruction: String,
        /// What went wrong.
        source: Box<BuildError>,
    },
    /// A stage's base could not be loaded.
    #[error("stage '{stage}': loading the base image '{image}'")]
    Base {
        /// The stage.
        stage: String,
        /// The image.
        image: String,
        /// Why.
        source: ImageError,
    },
    /// A stage this one needs failed.
    #[error("stage {0} failed")]
    Dependency(usize),
    /// Converting a step.
    #[error(transparent)]
    Convert(#[from] convert::ConvertError),
    /// COPY/ADD.
    #[error(transparent)]
    Copy(#[from] copy::CopyError),
    /// An `ADD <url>` source could not be fetched.
    #[error(transparent)]
    Fetch(#[from] fetch::FetchError),
    /// RUN.
    #[error(transparent)]
    Run(#[from] run::RunError),
    /// Layers.
    #[error(transparent)]
    Layer(#[from] LayerError),
    /// Unpacking.
    #[error(transparent)]
    Extract(#[from] extract::ExtractError),
    /// Images.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The context.
    #[error(transparent)]
    Context(#[from] crate::context::walk::WalkError),
    /// A layer of a record from `--cache-from` could not be fetched.
    #[error("fetching a layer from the imported build cache (--cache-from)")]
    CacheBlob(#[source] imported::FetchError),
    /// Something the engine does not do.
    #[error("{0}")]
    Unsupported(String),
}

/// The caller's choices for a build.
pub struct BuildOptions {
    /// The context directory.
    pub context: PathBuf,
    /// The `.dockerignore` rules.
    pub ignore: Matcher,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--compression`.
    pub compression: Compression,
    /// `SOURCE_DATE_EPOCH`.
    pub source_date_epoch: Option<i64>,
    /// The runtime binary for `RUN`.
    pub runtime: Runtime,
    /// `--secret id=…,src=…`.
    pub secrets: BTreeMap<String, PathBuf>,
    /// The Dockerfile's escape character (for re-expansion).
    pub escape: char,
}

/// What a build produced.
#[derive(Debug, Clone)]
pub struct BuildOutput {
    /// The manifest descriptor in the store.
    pub manifest: Descriptor,
    /// The image configuration.
    pub config: ImageConfig,
    /// The layers, base first.
    pub layers: Vec<LayerRecord>,
    /// Steps that ran.
    pub steps_run: usize,
    /// Steps served from the cache.
    pub steps_cached: usize,
    /// The cache records of this build's filesystem steps, for `--cache-to`.
    pub cache: CacheRecords,
}

/// The cache records a build used or made, keyed by step key, in step order.
#[derive(Debug, Clone, Default)]
pub struct CacheRecords {
    /// The steps that made the target image's layers, in the target stage
    /// and the stages it is based on (`--cache-to …,mode=min`).
    pub image: Vec<(Digest, CacheRecord)>,
    /// The steps of every stage built (`mode=max`).
    pub all: Vec<(Digest, CacheRecord)>,
}

/// A finished stage.
#[derive(Debug, Clone)]
struct StageState {
    config: ImageConfig,
    layers: Vec<LayerRecord>,
    key: Digest,
    /// The records of the filesystem steps that made this state.
    records: Vec<(Digest, CacheRecord)>,
}

type Slot = Option<Result<StageState, ()>>;

/// Shared per-build state.
struct Build<'a> {
    store: &'a Store,
    plan: &'a BuildPlan,
    options: &'a BuildOptions,
    progress: &'a dyn Progress,
    imported: Option<&'a dyn imported::RecordSource>,
    stage_names: BTreeMap<String, usize>,
    results: Mutex<BTreeMap<usize, Slot>>,
    ready: Condvar,
    context: OnceLock<Result<(Context, HashCache), String>>,
    now: i64,
    steps_run: AtomicUsize,
    steps_cached: AtomicUsize,
}

/// Builds `plan`'s target stage into an image in `store` (not tagged).
pub fn build(
    store: &Store,
    plan: &BuildPlan,
    options: &BuildOptions,
    progress: &dyn Progress,
) -> Result<BuildOutput, BuildError> {
    build_with_import(store, plan, options, progress, None)
}

/// [`build`], also reusing the records of `imported` (`--cache-from`) for
/// the keys the local store misses.
pub fn build_with_import(
    store: &Store,
    plan: &BuildPlan,
    options: &BuildOptions,
    progress: &dyn Progress,
    imported: Option<&dyn imported::RecordSource>,
) -> Result<BuildOutput, BuildError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    // The lease keeps `rmi` and `prune` from removing what this build reuses.
    let _lease = store.lease()?;
    let b = Build {
        store,
        plan,
        options,
        progress,
        imported,
        stage_names: plan
            .stages
            .iter()
            .filter_map(|s| s.name.clone().map(|n| (n, s.index)))
            .collect(),
        results: Mutex::new(plan.stages.iter().map(|s| (s.index, None)).collect()),
        ready: Condvar::new(),
        context: OnceLock::new(),
        now,
        steps_run: AtomicUsize::new(0),
        steps_cached: AtomicUsize::new(0),
    };
    let mut results: BTreeMap<usize, Result<StageState, BuildError>> = BTreeMap::new();
    std::thread::scope(|scope| {
        let handles: Vec<_> = plan
            .stages
            .iter()
            .map(|stage| {
                let b = &b;
                (stage.index, scope.spawn(move || b.build_stage(stage)))
            })
            .collect();
        for (index, handle) in handles {
            let result = handle
                .join()
                .unwrap_or_else(|_| Err(BuildError::Unsupported("a build thread panicked".into())));
            results.insert(index, result);
        }
    });
    if let Some(Ok((context, cache))) = b.context.get() {
        // The hash cache only saves work next time; failing to save it must
        // not fail the build, but it should not go unnoticed either.
        if let Err(error) = cache.save(&|rel| context.get(rel).is_some()) {
            tracing::warn!(%error, "could not save the context hash cache; the next build re-reads the context");
        }
    }
    // Report the root cause: the first stage that failed on its own, not a
    // stage that only waited for it.
    let state = match results.remove(&plan.target) {
        Some(Ok(state)) => state,
        Some(Err(BuildError::Dependency(_))) => {
            let cause = results
                .into_values()
                .filter_map(Result::err)
                .find(|e| !matches!(e, BuildError::Dependency(_)));
            return Err(cause.unwrap_or(BuildError::Unsupported("a stage failed".into())));
        }
        Some(Err(e)) => return Err(e),
        None => {
            return Err(BuildError::Unsupported(
                "the plan has no target stage".into(),
            ));
        }
    };
    let mut all = Vec::new();
    for other in results.values().flatten().chain([&state]) {
        for (key, record) in &other.records {
            if !all.iter().any(|(k, _)| k == key) {
                all.push((key.clone(), record.clone()));
            }
        }
    }
    // Layers served by imported records are fetched only now that the image
    // needs them.
    b.fetch_missing(&state.layers)?;
    let mut config = state.config.clone();
    config.created = Some(rfc3339(options.source_date_epoch.unwrap_or(now)));
    let manifest = image::write(store, &config, &state.layers)?;
    progress.event(Event::ImageWritten {
        digest: manifest.digest.to_string(),
    });
    Ok(BuildOutput {
        manifest,
        config,
        layers: state.layers,
        steps_run: b.steps_run.load(Ordering::Relaxed),
        steps_cached: b.steps_cached.load(Ordering::Relaxed),
        cache: CacheRecords {
            image: state.records,
            all,
        },
    })
}

impl Build<'_> {
    fn publish(&self, index: usize, result: Result<StageState, ()>) {
        if let Ok(mut results) = self.results.lock() {
            results.insert(index, Some(result));
        }
        self.ready.notify_all();
    }

    /// Waits for another stage of the plan.
    fn wait_for(&self, index: usize) -> Result<StageState, BuildError> {
        let Ok(mut results) = self.results.lock() else {
            return Err(BuildError::Dependency(index));
        };
        loop {
            match results.get(&index) {
                None => {
                    return Err(BuildError::Unsupported(format!(
                        "stage {index} is not part of the plan"
                    )));
                }
                Some(Some(Ok(state))) => return Ok(state.clone()),
                Some(Some(Err(()))) => return Err(BuildError::Dependency(index)),
                Some(None) => {
                    results = match self.ready.wait(results) {
                        Ok(r) => r,
                        Err(_) => return Err(BuildError::Dependency(index)),
                    };
                }
            }
        }
    }

    fn build_stage(&self, stage: &plan::Stage) -> Result<StageState, BuildError> {
        let result = self.build_stage_inner(stage);
        self.publish(
            stage.index,
            result.as_ref().map(Clone::clone).map_err(|_| ()),
        );
        result
    }

    fn created(&self) -> String {
        rfc3339(self.options.source_date_epoch.unwrap_or(self.now))
    }

    fn write_options(&self) -> WriteOptions {
        WriteOptions {
            compression: self.options.compression,
            source_date_epoch: self.options.source_date_epoch,
        }
    }

    fn base(&self, stage: &plan::Stage, id: &StepId) -> Result<StageState, BuildError> {
        let platform = format!(
            "{}/{}{}",
            stage.platform.os,
            stage.platform.architecture,
            if stage.platform.variant.is_empty() {
                String::new()
            } else {
                format!("/{}", stage.platform.variant)
            }
        );
        match &stage.base {
            plan::Base::Scratch => Ok(StageState {
                config: ImageConfig {
                    architecture: stage.platform.architecture.clone(),
                    os: stage.platform.os.clone(),
                    variant: (!stage.platform.variant.is_empty())
                        .then(|| stage.platform.variant.clone()),
                    rootfs: RootFs::default(),
                    ..Default::default()
                },
                layers: Vec::new(),
                key: key::base_key("scratch", "", &platform),
                records: Vec::new(),
            }),
            plan::Base::Stage { index } => self.wait_for(*index),
            plan::Base::Image { reference } => {
                let base_err = |source| BuildError::Base {
                    stage: stage.display_name(),
                    image: reference.clone(),
                    source,
                };
                let loaded = match image::load(self.store, reference) {
                    Err(ImageError::Store(StoreError::UnknownImage(name)))
                        if crate::registry::may_pull(reference) =>
                    {
                        // Not in the local store: pull it (only the blobs the
                        // store lacks); the manifest digest then pins the base.
                        tracing::info!(image = %reference, "pulling the base image");
                        // Said before the network is touched, as docker does.
                        self.progress.event(Event::StepOutput {
                            id: id.clone(),
                            stream: berth_containers::executor::Stream::Stderr,
                            line: format!(
                                "Unable to find image '{name}' locally; pulling it from its registry"
                            ),
                        });
                        self.pull_base(reference, &name, id).map_err(|e| {
                            BuildError::Unsupported(format!(
                                "stage '{}': base image '{reference}' is not in the local store, and {e}",
                                stage.display_name()
                            ))
                        })?;
                        image::load(self.store, reference).map_err(base_err)?
                    }
                    other => other.map_err(base_err)?,
                };
                let layers = loaded.layers();
                Ok(StageState {
                    config: loaded.config.clone(),
                    layers,
                    key: key::base_key("image", loaded.descriptor.digest.as_str(), &platform),
                    records: Vec::new(),
                })
            }
        }
    }

    fn build_stage_inner(&self, stage: &plan::Stage) -> Result<StageState, BuildError> {
        let total = stage.steps.len() + 1;
        let label = stage.display_name();
        let id = |index| StepId {
            stage: label.clone(),
            index,
            total,
        };
        let from_started = Instant::now();
        self.progress.event(Event::StepStarted {
            id: id(0),
            text: format!("FROM {}", base_text(stage)),
        });
        let mut state = self.base(stage, &id(0))?;
        self.progress.event(Event::StepFinished {
            id: id(0),
            duration: from_started.elapsed(),
            cached: true,
            layer_bytes: None,
        });

        // ONBUILD triggers of the base run first, and are not inherited further.
        let triggers = state.config.config.on_build.take().unwrap_or_default();
        for trigger in triggers {
            let step = onbuild_step(
                &trigger,
                stage,
                &state.config.config.env,
                &self.stage_names,
                self.options.escape,
            )?;
            self.execute_step(stage, &mut state, &step, id(0))?;
        }

        for (i, planned) in stage.steps.iter().enumerate() {
            let step = convert::convert(
                planned,
                &state.config.config.env,
                &self.stage_names,
                self.options.escape,
            )?;
            self.execute_step(stage, &mut state, &step, id(i + 1))?;
        }
        Ok(state)
    }

    fn execute_step(
        &self,
        stage: &plan::Stage,
        state: &mut StageState,
        step: &Step,
        id: StepId,
    ) -> Result<(), BuildError> {
        let started = Instant::now();
        self.progress.event(Event::StepStarted {
            id: id.clone(),
            text: step.text.clone(),
        });
        let wrap = |e: BuildError| BuildError::Step {
            file: self.plan.file.clone(),
            line: step.line,
            instruction: step.text.clone(),
            source: Box::new(e),
        };
        let normalized = key::normalize(&step.instruction);
        if !step.instruction.touches_filesystem() {
            metadata::apply(&mut state.config, &step.instruction);
            state.key = key::step_key(Some(&state.key), &normalized, &step.build_args, &[]);
            // Every step has a history entry, ARG included, as BuildKit writes them.
            state.config.history.push(History {
                created: Some(self.created()),
                created_by: Some(history_text(step)),
                comment: Some("berth.build".into()),
                empty_layer: true,
            });
            self.progress.event(Event::StepFinished {
                id,
                duration: started.elapsed(),
                cached: false,
                layer_bytes: None,
            });
            return Ok(());
        }
        let (key, record, cached) = match &step.instruction {
            Instruction::Copy(copy) => self.copy_step(state, step, copy, &normalized, &id),
            Instruction::Run(run) => self.run_step(stage, state, step, run, &normalized, &id),
            other => Err(BuildError::Unsupported(format!(
                "{other:?} is not a filesystem step"
            ))),
        }
        .map_err(wrap)?;
        state.key = key.clone();
        state.records.push((key, record.clone()));
        if cached {
            self.steps_cached.fetch_add(1, Ordering::Relaxed);
        } else {
            self.steps_run.fetch_add(1, Ordering::Relaxed);
        }
        let layer_bytes = record.layer.as_ref().map(|l| l.descriptor.size);
        if let Some(layer) = &record.layer {
            state.config.rootfs.diff_ids.push(layer.diff_id.clone());
            state.layers.push(layer.clone());
        }
        state.config.history.push(History {
            created: Some(record.created.clone()),
            created_by: Some(history_text(step)),
            comment: Some("berth.build".into()),
            empty_layer: record.layer.is_none(),
        });
        self.progress.event(Event::StepFinished {
            id,
            duration: started.elapsed(),
            cached,
            layer_bytes,
        });
        Ok(())
    }

    fn lookup(&self, key: &Digest, id: &StepId) -> Result<Option<CacheRecord>, BuildError> {
        if self.options.no_cache {
            return Ok(None);
        }
        let mut hit = self.store.cache_lookup(key)?;
        if hit.is_none()
            && let Some(record) = self.imported.and_then(|i| i.lookup(key))
        {
            // Kept locally too: the next build finds it once the blob is here.
            self.store.cache_store(key, &record)?;
            tracing::debug!(%key, "step found in the imported build cache");
            hit = Some(record);
        }
        if hit.is_some() {
            self.progress.event(Event::StepCached { id: id.clone() });
        }
        Ok(hit)
    }

    /// Fetches the blobs of `layers` the store lacks from the imported cache.
    fn fetch_missing(&self, layers: &[LayerRecord]) -> Result<(), BuildError> {
        let missing: Vec<Descriptor> = layers
            .iter()
            .filter(|l| !self.store.blobs().contains(&l.descriptor.digest))
            .map(|l| l.descriptor.clone())
            .collect();
        match self.imported {
            Some(imported) if !missing.is_empty() => imported
                .fetch_blobs(self.store, &missing)
                .map_err(BuildError::CacheBlob),
            _ => Ok(()),
        }
    }

    fn context(&self) -> Result<&(Context, HashCache), BuildError> {
        let ctx = self.context.get_or_init(|| {
            let started = Instant::now();
            let ignore = &self.options.ignore;
            let visit = |rel: &str, is_dir: bool| Visit::by_ignore_rules(ignore, rel, is_dir);
            let result = Context::walk(&self.options.context, &visit)
                .map(|c| {
                    let cache = HashCache::load(self.store, &self.options.context);
                    (c, cache)
                })
                .map_err(|e| fetch::error_chain(&e));
            if let Ok((c, _)) = &result {
                self.progress.event(Event::Context {
                    files: c.files().count(),
                    duration: started.elapsed(),
                });
            }
            result
        });
        ctx.as_ref().map_err(|e| BuildError::Unsupported(e.clone()))
    }

    /// Writes a layer blob from `entries` and, at the same time, its snapshot
    /// straight from the same sources (no second pass through the blob).
    fn layer_and_snapshot(
        &self,
        entries: Vec<berth_store::layer::Entry>,
        id: &StepId,
    ) -> Result<LayerRecord, BuildError> {
        let ordered = berth_store::layer::entry::canonical_order(entries);
        let total: u64 = ordered.iter().map(|e| e.content_size()).sum();
        let mut bytes = progress::BytesReporter::new(self.progress, id, Some(total));
        let staging = self.store.snapshot_staging()?;
        let epoch = self.options.source_date_epoch;
        let (layer, snapshot) = std::thread::scope(|scope| {
            let snapshot = scope
                .spawn(|| berth_store::layer::materialize::materialize(&ordered, &staging, epoch));
            let layer = berth_store::layer::write::write_layer_reporting(
                self.store.blobs(),
                ordered.clone(),
                self.write_options(),
                &mut |done| bytes.report(done),
            );
            bytes.finish();
            (layer, snapshot.join())
        });
        let layer = match layer {
            Ok(layer) => layer,
            Err(e) => {
                let _ = berth_store::tmp::remove_tree(&staging);
                return Err(e.into());
            }
        };
        match snapshot {
            Ok(Ok(())) => {
                self.store.commit_snapshot(&staging, &layer.diff_id)?;
            }
            other => {
                // The blob is good; unpack it instead.
                tracing::warn!(error = ?other.map_err(|_| "panicked"), "writing a snapshot directly failed; unpacking the layer");
                let _ = berth_store::tmp::remove_tree(&staging);
                extract::ensure_snapshot(self.store, &layer.descriptor.digest, &layer.diff_id)?;
            }
        }
        Ok(layer)
    }

    /// Pulls a base image, reporting the bytes received. The pull runs on
    /// its own thread so this one can forward its byte counts.
    fn pull_base(
        &self,
        reference: &str,
        name: &str,
        id: &StepId,
    ) -> Result<(), crate::registry::RegistryError> {
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::scope(|scope| {
            let pull = scope.spawn(|| crate::registry::pull(self.store, reference, name, sender));
            let mut bytes = progress::BytesReporter::new(self.progress, id, None);
            let mut moved = false;
            for (done, total) in receiver {
                moved = true;
                bytes.set_total(Some(total));
                bytes.report(done);
            }
            if moved {
                bytes.finish();
            }
            pull.join().unwrap_or_else(|_| {
                Err(crate::registry::RegistryError::Transfer {
                    action: "pulling",
                    reference: reference.to_string(),
                    message: "the pull thread panicked".into(),
                })
            })
        })
    }

    /// Downloads an `ADD` URL source, reporting the bytes received.
    fn download(
        &self,
        url: &str,
        dir: &Path,
        checksum: Option<&str>,
        id: &StepId,
    ) -> Result<fetch::Downloaded, BuildError> {
        let mut bytes = progress::BytesReporter::new(self.progress, id, None);
        let downloaded = fetch::download(url, dir, checksum, &mut |done, total| {
            bytes.set_total(total);
            bytes.report(done);
        })?;
        bytes.finish();
        Ok(downloaded)
    }

    /// The snapshots of `layers`, top first, unpacking any that are missing.
    fn lowers(&self, layers: &[LayerRecord]) -> Result<Vec<PathBuf>, BuildError> {
        let unpacked = |l: &&LayerRecord| self.store.has_snapshot(&l.diff_id);
        let needed: Vec<LayerRecord> = layers.iter().filter(|l| !unpacked(l)).cloned().collect();
        self.fetch_missing(&needed)?;
        let mut out = Vec::with_capacity(layers.len());
        for l in layers.iter().rev() {
            out.push(extract::ensure_snapshot(
                self.store,
                &l.descriptor.digest,
                &l.diff_id,
            )?);
        }
        Ok(out)
    }

    /// The state a `--from` names: a stage of the plan or a local image.
    fn state_of(&self, from: &CopyFrom) -> Result<StageState, BuildError> {
        match from {
            CopyFrom::Stage(i) => self.wait_for(*i),
            CopyFrom::Image(name) => {
                let loaded = image::load(self.store, name)?;
                Ok(StageState {
                    config: loaded.config.clone(),
                    layers: loaded.layers(),
                    key: key::base_key("image", loaded.descriptor.digest.as_str(), ""),
                    records: Vec::new(),
                })
            }
        }
    }

    fn copy_step(
        &self,
        state: &StageState,
        step: &Step,
        copy: &CopyStep,
        normalized: &str,
        id: &StepId,
    ) -> Result<(Digest, CacheRecord, bool), BuildError> {
        // http(s) sources of ADD are downloaded; the rest come from the context.
        let (urls, local_sources): (Vec<String>, Vec<String>) = copy
            .sources
            .iter()
            .cloned()
            .partition(|s| copy.add && copy.from.is_none() && fetch::is_url(s));
        if let Some(git) = local_sources
            .iter()
            .find(|s| s.contains("://") || s.starts_with("git@"))
        {
            return Err(BuildError::Unsupported(format!(
                "ADD from a git repository or a non-http URL is not supported: {git}"
            )));
        }
        let checksum = match (&copy.checksum, urls.len()) {
            (None, _) => None,
            (Some(c), 1) => Some(fetch::parse_checksum(c)?),
            (Some(_), _) => {
                return Err(BuildError::Unsupported(format!(
                    "ADD --checksum needs exactly one http(s) source: {}",
                    copy.sources.join(" ")
                )));
            }
        };
        let local = CopyStep {
            sources: local_sources,
            ..copy.clone()
        };
        let copy = &local;
        let download_dir = if urls.is_empty() {
            None
        } else {
            Some(TreeGuard(self.store.snapshot_staging()?))
        };
        let mut downloads = Vec::new();
        let mut url_inputs = Vec::new();
        for url in &urls {
            match (&checksum, &download_dir) {
                // The checksum pins the content: no download unless the step runs.
                (Some(sum), _) => {
                    url_inputs.push(format!("url\0{}\0{sum}", fetch::file_name(url)));
                }
                (None, Some(dir)) => {
                    let d = self.download(url, &dir.0, None, id)?;
                    url_inputs.push(format!(
                        "url\0{}\0{}\0{}",
                        d.name,
                        d.digest,
                        d.mtime.unwrap_or(0)
                    ));
                    downloads.push(d);
                }
                (None, None) => {}
            }
        }
        let started = Instant::now();
        let parent = (!copy.link).then_some(&state.key);
        // Sources from another stage or image are pinned by that state's key;
        // sources from the context by their content.
        let inputs = match &copy.from {
            Some(from) => vec![format!("from\0{}", self.state_of(from)?.key)],
            None if copy.sources.is_empty() => {
                copy::key_inputs(&HashCache::in_memory(), Path::new("/"), &[], &copy.heredocs)?
            }
            None => {
                let (ctx, cache) = self.context()?;
                let selected = copy::select(ctx, copy)?;
                copy::key_inputs(cache, ctx.root(), &selected, &copy.heredocs)?
            }
        };
        let mut key_inputs = inputs;
        key_inputs.append(&mut url_inputs);
        key_inputs.push(format!(
            "workdir\0{}",
            state.config.config.working_dir.as_deref().unwrap_or("/")
        ));
        let key = key::step_key(parent, normalized, &step.build_args, &key_inputs);
        tracing::debug!(step = %step.text, key = %key, elapsed = ?started.elapsed(), "copy key computed");
        if let Some(record) = self.lookup(&key, id)? {
            return Ok((key, record, true));
        }
        if let (Some(sum), Some(dir)) = (&checksum, &download_dir) {
            for url in &urls {
                downloads.push(self.download(url, &dir.0, Some(sum), id)?);
            }
        }
        let fetched: Vec<copy::Selected> = downloads
            .iter()
            .map(|d| copy::Selected {
                // An absolute path ending in the file name: the entry reads it
                // wherever the other sources' root is, and is named `d.name`.
                path: d.path.to_string_lossy().into_owned(),
                wildcard: false,
                files: vec![crate::context::ContextFile {
                    rel: d.path.to_string_lossy().into_owned(),
                    kind: crate::context::FileKind::File,
                    mode: 0o600,
                    size: d.size,
                    mtime: d.mtime.unwrap_or(0),
                    mtime_nsec: 0,
                    ino: 0,
                    link: None,
                }],
            })
            .collect();

        let lowers = if copy.link {
            Vec::new()
        } else {
            self.lowers(&state.layers)?
        };
        let lower_view = view::View::mount(self.store, &lowers)?;
        let owner = match &copy.chown {
            Some(spec) => copy::resolve_chown(spec, Some(lower_view.root()))?,
            None => (0, 0),
        };
        let chmod = copy::parse_chmod(copy)?;
        let workdir = state
            .config
            .config
            .working_dir
            .clone()
            .unwrap_or_else(|| "/".into());
        let options = copy::EntryOptions {
            workdir: &workdir,
            lower: (!copy.link).then(|| lower_view.root()),
            owner,
            chmod,
            created_dir_mtime: self.options.source_date_epoch.unwrap_or(self.now),
        };
        let layer = match &copy.from {
            Some(from) => {
                let other = self.state_of(from)?;
                let other_lowers = self.lowers(&other.layers)?;
                let source_view = view::View::mount(self.store, &other_lowers)?;
                let mut selected = Vec::new();
                for source in &copy.sources {
                    // Symlinks along the literal part resolve inside the
                    // stage's filesystem; the wildcard part is matched below it.
                    let trimmed = source.trim_start_matches('/');
                    let literal = literal_prefix(source);
                    let resolved = view::resolve_in_root(source_view.root(), &literal, true)
                        .map_err(|e| {
                            BuildError::Unsupported(format!("resolving '{source}': {e}"))
                        })?;
                    let tree = Context::walk_under(source_view.root(), &resolved)?;
                    let mut single = copy.clone();
                    single.sources = vec![format!(
                        "{resolved}{}",
                        trimmed.get(literal.len()..).unwrap_or("")
                    )];
                    single.heredocs.clear();
                    let mut found = copy::select(&tree, &single).map_err(|e| match e {
                        copy::CopyError::Missing(_) => copy::CopyError::Missing(source.clone()),
                        other => other,
                    })?;
                    selected.append(&mut found);
                }
                let entries = copy::plan_entries(copy, &selected, source_view.root(), &options)?;
                self.layer_and_snapshot(entries, id)?
            }
            None => {
                let mut selected = if copy.sources.is_empty() {
                    Vec::new()
                } else {
                    let (ctx, _) = self.context()?;
                    copy::select(ctx, copy)?
                };
                let fetched_count = fetched.len();
                selected.extend(fetched);
                let root = self.options.context.clone();
                let mut unpacked = Vec::new();
                let entries = if copy.add {
                    add_entries(
                        self.store,
                        copy,
                        &selected,
                        fetched_count,
                        &root,
                        &options,
                        &mut unpacked,
                    )?
                } else {
                    copy::plan_entries(copy, &selected, &root, &options)?
                };
                let layer = self.layer_and_snapshot(entries, id);
                for dir in unpacked {
                    let _ = berth_store::tmp::remove_tree(&dir);
                }
                layer?
            }
        };
        drop(lower_view);
        tracing::debug!(step = %step.text, elapsed = ?started.elapsed(), bytes = layer.descriptor.size, "copy layer and snapshot written");
        let record = CacheRecord {
            layer: Some(layer),
            created: self.created(),
        };
        self.store.cache_store(&key, &record)?;
        Ok((key, record, false))
    }

    fn run_step(
        &self,
        _stage: &plan::Stage,
        state: &StageState,
        step: &Step,
        run: &step::RunStep,
        normalized: &str,
        id: &StepId,
    ) -> Result<(Digest, CacheRecord, bool), BuildError> {
        let mut inputs = Vec::new();
        let mut from_roots_states = Vec::new();
        for m in &run.mounts {
            if let step::MountSpec::Bind { source, from, .. } = m {
                match from {
                    None => {
                        let (ctx, cache) = self.context()?;
                        let probe = CopyStep {
                            sources: vec![if source.is_empty() {
                                ".".into()
                            } else {
                                source.clone()
                            }],
                            ..Default::default()
                        };
                        let selected = copy::select(ctx, &probe)?;
                        inputs.extend(copy::key_inputs(cache, ctx.root(), &selected, &[])?);
                    }
                    Some(f) => {
                        let other = self.state_of(f)?;
                        inputs.push(format!("bind-from\0{}", other.key));
                        from_roots_states.push((format!("{f:?}"), other));
                    }
                }
            }
        }
        let key = key::step_key(Some(&state.key), normalized, &step.build_args, &inputs);
        if let Some(record) = self.lookup(&key, id)? {
            return Ok((key, record, true));
        }
        let lowers = self.lowers(&state.layers)?;
        let mut views = Vec::new();
        let mut from_roots = BTreeMap::new();
        for (name, other) in from_roots_states {
            let view = view::View::mount(self.store, &self.lowers(&other.layers)?)?;
            from_roots.insert(name, view.root().to_path_buf());
            views.push(view);
        }
        let binds_context = run
            .mounts
            .iter()
            .any(|m| matches!(m, step::MountSpec::Bind { from: None, .. }));
        let context_tree = if binds_context {
            Some(&self.context()?.0)
        } else {
            None
        };
        let inputs = run::RunInputs {
            context: &self.options.context,
            from_roots: &from_roots,
            secrets: &self.options.secrets,
            context_tree,
        };
        let progress = self.progress;
        let on_line = |stream, line: &str| {
            progress.event(Event::StepOutput {
                id: id.clone(),
                stream,
                line: line.to_string(),
            });
        };
        let layer = run::execute(
            self.store,
            &self.options.runtime,
            &state.config,
            &lowers,
            run,
            &step.build_args,
            &inputs,
            self.write_options(),
            &on_line,
            &mut progress::BytesReporter::new(progress, id, None),
        )?;
        drop(views);
        let record = CacheRecord {
            layer,
            created: self.created(),
        };
        self.store.cache_store(&key, &record)?;
        Ok((key, record, false))
    }
}

/// The part of a source path before its first wildcard component.
fn literal_prefix(source: &str) -> String {
    let trimmed = source.trim_start_matches('/');
    let mut parts = Vec::new();
    for part in trimmed.split('/') {
        if part.contains(['*', '?', '[']) {
            break;
        }
        parts.push(part);
    }
    if parts.len() == trimmed.split('/').count() {
        trimmed.to_string()
    } else {
        parts.join("/")
    }
}

fn base_text(stage: &plan::Stage) -> String {
    match &stage.base {
        plan::Base::Scratch => "scratch".into(),
        plan::Base::Image { reference } => reference.clone(),
        plan::Base::Stage { index } => format!("stage {index}"),
    }
}

/// The history `created_by` text, as BuildKit writes it.
fn history_text(step: &Step) -> String {
    let text = step.text.trim();
    match &step.instruction {
        Instruction::Run(_) => {
            let rest = text
                .split_once(char::is_whitespace)
                .map_or("", |(_, r)| r.trim());
            format!("RUN {rest} # buildkit")
        }
        Instruction::Copy(_) => format!("{text} # buildkit"),
        _ => text.to_string(),
    }
}

/// Turns an `ONBUILD` trigger into a step of the stage that uses the image.
fn onbuild_step(
    trigger: &str,
    stage: &plan::Stage,
    env: &[String],
    stage_names: &BTreeMap<String, usize>,
    escape: char,
) -> Result<Step, BuildError> {
    let source = format!("FROM scratch\n{trigger}\n");
    let parsed = berth_dockerfile::parse(&source, "ONBUILD")
        .map_err(|d| BuildError::Unsupported(format!("ONBUILD trigger '{trigger}': {d}")))?;
    let planned = plan::plan(&parsed, &plan::PlanOptions::default())
        .map_err(|e| BuildError::Unsupported(format!("ONBUILD trigger '{trigger}': {e}")))?;
    let Some(step) = planned.stages.first().and_then(|s| s.steps.first()) else {
        return Err(BuildError::Unsupported(format!(
            "ONBUILD trigger '{trigger}' has no instruction"
        )));
    };
    let mut step = step.clone();
    step.start_line = stage.line;
    step.unresolved = vec!["*".into()];
    Ok(convert::convert(&step, env, stage_names, escape)?)
}

/// `ADD`: local tar archives (gzip, zstd or plain, detected by content) are
/// extracted into the destination; other sources are copied as `COPY` does.
fn add_entries(
    store: &Store,
    copy: &CopyStep,
    selected: &[copy::Selected],
    downloaded: usize,
    root: &Path,
    options: &copy::EntryOptions<'_>,
    unpacked: &mut Vec<PathBuf>,
) -> Result<Vec<berth_store::layer::Entry>, BuildError> {
    let mut plain = Vec::new();
    let mut entries = Vec::new();
    // Downloaded sources (the last `downloaded` ones) are never extracted.
    let local = selected.len().saturating_sub(downloaded);
    for (i, s) in selected.iter().enumerate() {
        let is_archive = i < local
            && s.files.len() == 1
            && s.files[0].kind == crate::context::FileKind::File
            && is_tar_archive(&root.join(&s.files[0].rel));
        if !is_archive {
            plain.push(s.clone());
            continue;
        }
        let staging = store.snapshot_staging()?;
        unpacked.push(staging.clone());
        let file = std::fs::File::open(root.join(&s.files[0].rel))
            .map_err(berth_store::io_err("opening", &root.join(&s.files[0].rel)))?;
        extract::unpack(std::io::BufReader::new(file), &staging, &s.path)?;
        let dest = metadata::resolve_path(options.workdir, &copy.dest);
        let dest_rel = dest.trim_start_matches('/');
        let scanned = berth_store::layer::scan::scan_tree(
            &staging,
            berth_store::layer::scan::TreeKind::Plain,
        )
        .map_err(|e| BuildError::Unsupported(fetch::error_chain(&e)))?;
        for mut e in scanned {
            e.path = if dest_rel.is_empty() {
                e.path
            } else {
                format!("{dest_rel}/{}", e.path)
            };
            if let berth_store::layer::EntryKind::Hardlink(t) = &e.kind {
                e.kind = berth_store::layer::EntryKind::Hardlink(if dest_rel.is_empty() {
                    t.clone()
                } else {
                    format!("{dest_rel}/{t}")
                });
            }
            entries.push(e);
        }
    }
    let mut rest_step = copy.clone();
    rest_step.sources = plain.iter().map(|s| s.path.clone()).collect();
    let mut planned = if plain.is_empty() && copy.heredocs.is_empty() {
        Vec::new()
    } else {
        copy::plan_entries(&rest_step, &plain, root, options)?
    };
    planned.append(&mut entries);
    Ok(planned)
}

/// Whether a file is a tar archive, compressed or not, judged by its content.
fn is_tar_archive(path: &Path) -> bool {
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    let Ok(mut reader) = berth_store::layer::compress::decompress(std::io::BufReader::new(file))
    else {
        return false;
    };
    let mut header = [0u8; 512];
    let mut read = 0;
    while read < header.len() {
        match std::io::Read::read(&mut reader, &mut header[read..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => read += n,
        }
    }
    read == 512 && &header[257..262] == b"ustar"
}

/// A staging directory removed when dropped.
struct TreeGuard(PathBuf);

impl Drop for TreeGuard {
    fn drop(&mut self) {
        let _ = berth_store::tmp::remove_tree(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_step_names_its_instruction_in_one_short_line() {
        let long = format!("RUN echo {}", "a".repeat(1 << 20));
        let cases = [
            ("RUN true", "Dockerfile:2: RUN true"),
            ("RUN <<EOF\necho hi\nEOF", "Dockerfile:2: RUN <<EOF …"),
        ];
        for (instruction, want) in cases {
            let err = BuildError::Step {
                file: "Dockerfile".into(),
                line: 2,
                instruction: instruction.into(),
                source: Box::new(BuildError::Dependency(0)),
            };
            assert_eq!(err.to_string(), want);
        }
        let err = BuildError::Step {
            file: "Dockerfile".into(),
            line: 2,
            instruction: long,
            source: Box::new(BuildError::Dependency(0)),
        };
        let text = err.to_string();
        assert!(text.len() < 300 && !text.contains('\n'), "{text}");
    }
}
