//! Progress events: the engine reports what it does as data, and the CLI
//! decides how to show it (live bars on a terminal, plain lines in CI, JSON).

use crate::executor::Stream;
use std::time::Duration;

/// Identifies a step in events: its stage and position.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StepId {
    /// The stage label (`AS` name or `stage-N`).
    pub stage: String,
    /// 1-based position in the stage (0 is the FROM).
    pub index: usize,
    /// Number of steps in the stage, FROM included.
    pub total: usize,
}

/// One thing that happened.
#[derive(Debug, Clone)]
pub enum Event {
    /// The context was walked and hashed.
    Context {
        /// Files kept after `.dockerignore`.
        files: usize,
        /// How long the walk took.
        duration: Duration,
    },
    /// A step starts.
    StepStarted {
        /// The step.
        id: StepId,
        /// The instruction as written.
        text: String,
    },
    /// A step was found in the cache and will not run.
    StepCached {
        /// The step.
        id: StepId,
    },
    /// A line of a `RUN` step's output.
    StepOutput {
        /// The step.
        id: StepId,
        /// Which stream.
        stream: Stream,
        /// The line.
        line: String,
    },
    /// A step finished.
    StepFinished {
        /// The step.
        id: StepId,
        /// How long it took.
        duration: Duration,
        /// Whether it came from the cache.
        cached: bool,
        /// Bytes of the layer it added (compressed), if any.
        layer_bytes: Option<u64>,
    },
    /// The image was written.
    ImageWritten {
        /// The manifest digest.
        digest: String,
    },
}

/// Receives events; called from several threads when stages build in parallel.
pub trait Progress: Sync {
    /// Handles one event.
    fn event(&self, event: Event);
}

/// Discards every event.
pub struct NoProgress;

impl Progress for NoProgress {
    fn event(&self, _event: Event) {}
}
