//! Showing what a pull or push does, from the registry client's events: one
//! live bar per blob on a terminal (bytes, rate, then its outcome), plain
//! lines without one (one per blob event worth reporting, no carriage
//! returns), nothing when quiet. Also the registry flags `pull` and `push`
//! share. The mode comes from the printer.

use crate::printer::{self, Printer};
use berth_builder::registry::{BlobOutcome, Event, Progress, ProgressSink, TransferOptions};
use indicatif::{HumanBytes, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Registry flags of `berth pull` and `berth push`.
#[derive(Debug, clap::Args)]
pub struct RegistryArgs {
    /// Reach this registry (host[:port]) over plain HTTP; loopback registries
    /// always are. Repeatable; BERTH_INSECURE_REGISTRIES adds more.
    #[arg(long = "insecure-registry", value_name = "HOST")]
    pub insecure_registries: Vec<String>,
}

impl RegistryArgs {
    /// The transfer options these flags and the environment ask for.
    pub fn options(&self) -> TransferOptions {
        let mut options = TransferOptions::from_env();
        options
            .insecure_registries
            .extend(self.insecure_registries.iter().cloned());
        options
    }
}

/// Which way the bytes go; it decides the words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From a registry into the store.
    Pull,
    /// From the store to a registry.
    Push,
}

/// Renders transfer events on stderr.
pub struct TransferProgress {
    direction: Direction,
    printer: Printer,
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

/// The short form of a digest Docker shows: 12 hex digits.
fn short(digest: &impl std::fmt::Display) -> String {
    let text = digest.to_string();
    let hex = text.split_once(':').map_or(text.as_str(), |(_, hex)| hex);
    hex.chars().take(12).collect()
}

impl TransferProgress {
    /// A renderer: live bars when stderr is a terminal, plain lines
    /// otherwise, nothing at all when the printer is quiet.
    pub fn new(direction: Direction, printer: Printer) -> Arc<TransferProgress> {
        let target = if printer.mode() == printer::Mode::Terminal {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Arc::new(TransferProgress {
            direction,
            printer,
            multi: MultiProgress::with_draw_target(target),
            bars: Mutex::new(HashMap::new()),
        })
    }

    /// The sink to hand to the library.
    pub fn sink(self: &Arc<Self>) -> ProgressSink {
        Arc::clone(self) as ProgressSink
    }

    /// Leaves the finished bars on screen.
    pub fn finish(&self) {
        if let Ok(mut bars) = self.bars.lock() {
            for (_, bar) in bars.drain() {
                if !bar.is_finished() {
                    bar.abandon();
                }
            }
        }
    }

    fn line(&self, text: &str) {
        let _ = writeln!(self.printer.stderr(), "{text}");
    }

    fn moving_word(&self) -> &'static str {
        match self.direction {
            Direction::Pull => "downloading",
            Direction::Push => "uploading",
        }
    }

    fn outcome_text(&self, outcome: &BlobOutcome) -> String {
        match (outcome, self.direction) {
            (BlobOutcome::Downloaded, _) => "downloaded".to_string(),
            (BlobOutcome::Uploaded, _) => "pushed".to_string(),
            (BlobOutcome::AlreadyPresent, Direction::Pull) => "already present".to_string(),
            (BlobOutcome::AlreadyPresent, Direction::Push) => "exists".to_string(),
            (BlobOutcome::Mounted { from }, _) => format!("mounted from {from}"),
        }
    }

    fn bar_style() -> ProgressStyle {
        ProgressStyle::with_template(
            "{prefix} {bar:30.cyan/blue} {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
    }

    fn done_style() -> ProgressStyle {
        ProgressStyle::with_template("{prefix} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
    }

    fn render_tty(&self, event: Event) {
        let Ok(mut bars) = self.bars.lock() else {
            return;
        };
        match event {
            Event::BlobStarted { digest, size } => {
                let key = digest.to_string();
                let bar = bars.entry(key).or_insert_with(|| {
                    // Styled before it is added, so its first frame is right.
                    let bar = ProgressBar::new(size)
                        .with_style(Self::bar_style())
                        .with_prefix(short(&digest));
                    let bar = self.multi.add(bar);
                    bar.enable_steady_tick(Duration::from_millis(200));
                    bar
                });
                bar.set_style(Self::bar_style());
                bar.set_length(size);
                bar.set_position(0);
                bar.set_message(self.moving_word());
                bar.reset_eta();
            }
            Event::BlobProgress { digest, done, .. } => {
                if let Some(bar) = bars.get(&digest.to_string()) {
                    bar.set_position(done);
                }
            }
            Event::BlobResumed { digest, offset } => {
                if let Some(bar) = bars.get(&digest.to_string()) {
                    bar.set_position(offset);
                    bar.set_message(format!("resumed at {}", HumanBytes(offset)));
                }
            }
            Event::BlobDone { digest, outcome } => {
                let key = digest.to_string();
                let bar = bars.entry(key).or_insert_with(|| {
                    self.multi.add(
                        ProgressBar::new(0)
                            .with_style(Self::done_style())
                            .with_prefix(short(&digest)),
                    )
                });
                let text = match outcome {
                    BlobOutcome::Downloaded | BlobOutcome::Uploaded => format!(
                        "{} {}",
                        self.outcome_text(&outcome),
                        HumanBytes(bar.length().unwrap_or(0))
                    ),
                    other => self.outcome_text(&other),
                };
                bar.set_style(Self::done_style());
                bar.finish_with_message(text);
            }
            Event::ManifestDone { digest, .. } => {
                let _ = self.multi.println(self.manifest_text(&digest));
            }
            Event::Retrying {
                request,
                reason,
                attempt,
                wait,
            } => {
                let _ = self
                    .multi
                    .println(retry_text(&request, &reason, attempt, wait));
            }
        }
    }

    fn manifest_text(&self, digest: &impl std::fmt::Display) -> String {
        match self.direction {
            Direction::Pull => format!("manifest {digest}: stored"),
            Direction::Push => format!("manifest {digest}: pushed"),
        }
    }

    fn render_plain(&self, event: Event) {
        let Ok(mut sizes) = self.bars.lock() else {
            return;
        };
        let size = match &event {
            Event::BlobStarted { digest, size } => {
                // A bar that never draws keeps the size for the done line.
                sizes
                    .entry(digest.to_string())
                    .or_insert_with(ProgressBar::hidden)
                    .set_length(*size);
                Some(*size)
            }
            Event::BlobDone { digest, .. } => {
                sizes.get(&digest.to_string()).and_then(ProgressBar::length)
            }
            _ => None,
        };
        if let Some(text) = self.plain_text(&event, size) {
            self.line(&text);
        }
    }

    /// The plain line an event gets, if any; `size` is the blob's size when
    /// known.
    fn plain_text(&self, event: &Event, size: Option<u64>) -> Option<String> {
        Some(match event {
            Event::BlobStarted { digest, size } => format!(
                "{}: {} {}",
                short(digest),
                self.moving_word(),
                HumanBytes(*size)
            ),
            Event::BlobProgress { .. } => return None,
            Event::BlobResumed { digest, offset } => {
                format!("{}: resuming after {}", short(digest), HumanBytes(*offset))
            }
            Event::BlobDone { digest, outcome } => {
                let text = match (outcome, size) {
                    (BlobOutcome::Downloaded | BlobOutcome::Uploaded, Some(size)) => {
                        format!("{} {}", self.outcome_text(outcome), HumanBytes(size))
                    }
                    _ => self.outcome_text(outcome),
                };
                format!("{}: {text}", short(digest))
            }
            Event::ManifestDone { digest, .. } => self.manifest_text(digest),
            Event::Retrying {
                request,
                reason,
                attempt,
                wait,
            } => retry_text(request, reason, *attempt, *wait),
        })
    }
}

fn retry_text(request: &str, reason: &str, attempt: u32, wait: Duration) -> String {
    format!(
        "retrying {request} in {:.1}s (attempt {attempt} failed: {reason})",
        wait.as_secs_f64()
    )
}

impl Progress for TransferProgress {
    fn event(&self, event: Event) {
        match self.printer.mode() {
            printer::Mode::Quiet => {}
            printer::Mode::Terminal => self.render_tty(event),
            printer::Mode::Plain => self.render_plain(event),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn plain_lines_say_what_happened_to_each_blob() {
        let quiet = Printer::new(printer::Mode::Quiet);
        let pull = TransferProgress::new(Direction::Pull, quiet);
        let push = TransferProgress::new(Direction::Push, quiet);
        let digest = || DIGEST.parse().unwrap();
        let cases: Vec<(&TransferProgress, Event, Option<u64>, Option<String>)> = vec![
            (
                &pull,
                Event::BlobStarted {
                    digest: digest(),
                    size: 2048,
                },
                Some(2048),
                Some("0123456789ab: downloading 2.00 KiB".to_string()),
            ),
            (
                &push,
                Event::BlobStarted {
                    digest: digest(),
                    size: 10,
                },
                Some(10),
                Some("0123456789ab: uploading 10 B".to_string()),
            ),
            (
                &pull,
                Event::BlobProgress {
                    digest: digest(),
                    done: 1,
                    total: 2,
                },
                None,
                None,
            ),
            (
                &pull,
                Event::BlobResumed {
                    digest: digest(),
                    offset: 3 << 20,
                },
                None,
                Some("0123456789ab: resuming after 3.00 MiB".to_string()),
            ),
            (
                &pull,
                Event::BlobDone {
                    digest: digest(),
                    outcome: BlobOutcome::Downloaded,
                },
                Some(1024),
                Some("0123456789ab: downloaded 1.00 KiB".to_string()),
            ),
            (
                &pull,
                Event::BlobDone {
                    digest: digest(),
                    outcome: BlobOutcome::AlreadyPresent,
                },
                None,
                Some("0123456789ab: already present".to_string()),
            ),
            (
                &push,
                Event::BlobDone {
                    digest: digest(),
                    outcome: BlobOutcome::AlreadyPresent,
                },
                None,
                Some("0123456789ab: exists".to_string()),
            ),
            (
                &push,
                Event::BlobDone {
                    digest: digest(),
                    outcome: BlobOutcome::Mounted {
                        from: "team/base".into(),
                    },
                },
                None,
                Some("0123456789ab: mounted from team/base".to_string()),
            ),
            (
                &push,
                Event::ManifestDone {
                    digest: digest(),
                    media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                },
                None,
                Some(format!("manifest {DIGEST}: pushed")),
            ),
            (
                &pull,
                Event::Retrying {
                    request: "GET http://r/v2/".into(),
                    reason: "HTTP 503".into(),
                    attempt: 1,
                    wait: Duration::from_millis(200),
                },
                None,
                Some("retrying GET http://r/v2/ in 0.2s (attempt 1 failed: HTTP 503)".to_string()),
            ),
        ];
        for (renderer, event, size, want) in cases {
            let got = renderer.plain_text(&event, size);
            assert_eq!(got, want, "{event:?}");
            if let Some(line) = got {
                assert!(!line.contains('\r') && !line.contains('\n'), "{line:?}");
            }
        }
    }
}
