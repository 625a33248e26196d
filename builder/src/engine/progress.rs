//! Progress events: the engine reports what it does as data, and the CLI
//! decides how to show it (live bars on a terminal, plain lines in CI, JSON).

use berth_containers::executor::Stream;
use std::time::{Duration, Instant};

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
    /// A step moved more bytes: layer content written or a download
    /// received. Sent at most every few hundred milliseconds, and once at the end.
    StepBytes {
        /// The step.
        id: StepId,
        /// Bytes moved so far.
        done: u64,
        /// Bytes to move in all, when known.
        total: Option<u64>,
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

/// Sends [`Event::StepBytes`] for a transfer, at most every 200 ms plus a
/// final one, so a fast copy does not flood the display.
pub struct BytesReporter<'a> {
    progress: &'a dyn Progress,
    id: &'a StepId,
    total: Option<u64>,
    last_sent: Option<Instant>,
    done: u64,
}

impl<'a> BytesReporter<'a> {
    /// A reporter for step `id` moving `total` bytes, if known.
    pub fn new(progress: &'a dyn Progress, id: &'a StepId, total: Option<u64>) -> Self {
        BytesReporter {
            progress,
            id,
            total,
            last_sent: None,
            done: 0,
        }
    }

    /// Sets the total once it is known.
    pub fn set_total(&mut self, total: Option<u64>) {
        self.total = total;
    }

    /// Records that `done` bytes have moved so far.
    pub fn report(&mut self, done: u64) {
        self.done = done;
        let due = self
            .last_sent
            .is_none_or(|t| t.elapsed() >= Duration::from_millis(200));
        if due {
            self.send();
        }
    }

    /// Sends the final count.
    pub fn finish(&mut self) {
        self.send();
    }

    fn send(&mut self) {
        self.last_sent = Some(Instant::now());
        self.progress.event(Event::StepBytes {
            id: self.id.clone(),
            done: self.done,
            total: self.total,
        });
    }
}
