//! The build engine: it walks the frontend's plan, builds only the stages the
//! target needs (independent stages in parallel), computes each step's cache
//! key, reuses cached layers, runs the rest, and writes the image.
//!
//! This module is the entry point and the image at the end; `schedule` runs
//! the stages and their steps, `copy_step` and `run_step` execute the
//! filesystem steps, and `layers` finds, writes and unpacks their layers.

pub mod chmod;
pub mod convert;
pub mod copy;
mod copy_step;
pub mod fetch;
pub mod imported;
pub mod key;
mod layers;
pub mod metadata;
pub mod progress;
pub mod run;
mod run_step;
mod schedule;
pub mod step;

use crate::cache::{CacheRecord, LayerRecord};
use berth_containers::executor::Runtime;
use berth_dockerfile::dockerignore::Matcher;
use berth_dockerfile::plan::BuildPlan;
use berth_store::image::{self, ImageError};
use berth_store::layer::{Compression, LayerError, extract};
use berth_store::oci::{Descriptor, ImageConfig, rfc3339};
use berth_store::{Digest, Store, StoreError};
pub use progress::{Event, NoProgress, Progress, StepId};
use schedule::Build;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

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
    /// `--pull`: fetch every base image from its registry, even when the
    /// store has it.
    pub pull: bool,
    /// `--add-host`: `(name, address)` entries of `RUN` steps' `/etc/hosts`.
    pub add_hosts: Vec<(String, String)>,
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
    let b = Build::new(store, plan, options, progress, imported, now);
    let mut results = b.build_stages();
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
    // The image is as old as its last step (cached steps keep their time),
    // so a fully cached rebuild gives the same image id.
    config.created = Some(match options.source_date_epoch {
        Some(epoch) => rfc3339(epoch),
        None => schedule::latest_created(&config).unwrap_or_else(|| rfc3339(now)),
    });
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
