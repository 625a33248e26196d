//! Executing a `RUN` step: its cache key (bind mounts from the context or
//! other stages included), the views it mounts, and running it through
//! [`super::run::execute`].

use super::schedule::{Build, StageState};
use super::step::{self, CopyStep, Step};
use super::{BuildError, Event, StepId, copy, key, progress, run};
use crate::cache::{CacheRecord, CacheStore};
use berth_containers::executor::view;
use berth_dockerfile::plan;
use berth_store::Digest;
use std::collections::BTreeMap;

impl Build<'_> {
    pub(super) fn run_step(
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
            extra_hosts: &self.options.add_hosts,
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
