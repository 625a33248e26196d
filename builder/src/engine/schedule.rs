//! The stage and step scheduler: one thread per stage of the plan, each
//! waiting only for the stages it needs; a stage's base (pulled when the
//! store lacks it), its `ONBUILD` triggers and its steps, in order, with
//! each step's history entry and progress events.

use super::step::{CopyFrom, Instruction, Step};
use super::{
    BuildError, BuildOptions, Event, Progress, StepId, convert, imported, key, metadata, progress,
};
use crate::cache::{CacheRecord, LayerRecord};
use crate::context::{Context, HashCache, Visit};
use berth_dockerfile::plan::{self, BuildPlan};
use berth_store::image::{self, ImageError};
use berth_store::oci::{History, ImageConfig, RootFs, rfc3339};
use berth_store::{Digest, Store, StoreError};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Instant;

/// A finished stage.
#[derive(Debug, Clone)]
pub(super) struct StageState {
    pub(super) config: ImageConfig,
    pub(super) layers: Vec<LayerRecord>,
    pub(super) key: Digest,
    /// The records of the filesystem steps that made this state.
    pub(super) records: Vec<(Digest, CacheRecord)>,
}

type Slot = Option<Result<StageState, ()>>;

/// Shared per-build state.
pub(super) struct Build<'a> {
    pub(super) store: &'a Store,
    plan: &'a BuildPlan,
    pub(super) options: &'a BuildOptions,
    pub(super) progress: &'a dyn Progress,
    pub(super) imported: Option<&'a dyn imported::RecordSource>,
    stage_names: BTreeMap<String, usize>,
    results: Mutex<BTreeMap<usize, Slot>>,
    ready: Condvar,
    pub(super) context: OnceLock<Result<(Context, HashCache), String>>,
    pub(super) now: i64,
    pub(super) steps_run: AtomicUsize,
    pub(super) steps_cached: AtomicUsize,
}

impl<'a> Build<'a> {
    /// The state of a build of `plan` that has not started yet.
    pub(super) fn new(
        store: &'a Store,
        plan: &'a BuildPlan,
        options: &'a BuildOptions,
        progress: &'a dyn Progress,
        imported: Option<&'a dyn imported::RecordSource>,
        now: i64,
    ) -> Self {
        Build {
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
        }
    }
}

impl Build<'_> {
    /// Builds every stage of the plan, each on its own thread, and returns
    /// each stage's result by index.
    pub(super) fn build_stages(&self) -> BTreeMap<usize, Result<StageState, BuildError>> {
        let mut results: BTreeMap<usize, Result<StageState, BuildError>> = BTreeMap::new();
        std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .plan
                .stages
                .iter()
                .map(|stage| (stage.index, scope.spawn(move || self.build_stage(stage))))
                .collect();
            for (index, handle) in handles {
                let result = handle.join().unwrap_or_else(|_| {
                    Err(BuildError::Unsupported("a build thread panicked".into()))
                });
                results.insert(index, result);
            }
        });
        results
    }

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

    pub(super) fn created(&self) -> String {
        rfc3339(self.options.source_date_epoch.unwrap_or(self.now))
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
                if self.options.pull && crate::registry::may_pull(reference) {
                    // --pull: the registry's image, even when the store has one.
                    let name = berth_store::tags::normalize(reference);
                    self.pull_base(reference, &name, id).map_err(|e| {
                        BuildError::Unsupported(format!(
                            "stage '{}': --pull of base image '{reference}' failed: {e}",
                            stage.display_name()
                        ))
                    })?;
                }
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
            // A metadata step makes nothing new in time: it takes the time of
            // the step before it (a cached layer's time is its record's), so
            // a fully cached rebuild writes the same config, as BuildKit's.
            let created = match self.options.source_date_epoch {
                Some(_) => self.created(),
                None => latest_created(&state.config).unwrap_or_else(|| self.created()),
            };
            state.config.history.push(History {
                created: Some(created),
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

    pub(super) fn context(&self) -> Result<&(Context, HashCache), BuildError> {
        let ctx = self.context.get_or_init(|| {
            let started = Instant::now();
            let ignore = &self.options.ignore;
            let visit = |rel: &str, is_dir: bool| Visit::by_ignore_rules(ignore, rel, is_dir);
            let result = Context::walk(&self.options.context, &visit)
                .map(|c| {
                    let cache = HashCache::load(self.store, &self.options.context);
                    (c, cache)
                })
                .map_err(|e| crate::text::error_chain(&e));
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

    /// The state a `--from` names: a stage of the plan or a local image.
    pub(super) fn state_of(&self, from: &CopyFrom) -> Result<StageState, BuildError> {
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
}

fn base_text(stage: &plan::Stage) -> String {
    match &stage.base {
        plan::Base::Scratch => "scratch".into(),
        plan::Base::Image { reference } => reference.clone(),
        plan::Base::Stage { index } => format!("stage {index}"),
    }
}

/// The time of the last history entry that has one.
pub(super) fn latest_created(config: &ImageConfig) -> Option<String> {
    config.history.iter().rev().find_map(|h| h.created.clone())
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
