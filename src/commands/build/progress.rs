//! Showing build progress: live bars on a terminal (indicatif), plain
//! numbered lines without one (CI logs), or one JSON object per event.

use crate::printer::{self, Printer};
use berth_builder::engine::{Event, Progress, StepId};
use berth_containers::executor::Stream;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

/// `--progress`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// tty on a terminal, plain otherwise.
    Auto,
    /// Live bars.
    Tty,
    /// Plain lines.
    Plain,
    /// JSON lines.
    Json,
}

/// Renders events on stderr.
pub struct Renderer {
    mode: Mode,
    printer: Printer,
    state: Mutex<State>,
    multi: MultiProgress,
}

#[derive(Default)]
struct State {
    numbers: HashMap<StepId, usize>,
    bars: HashMap<StepId, ProgressBar>,
    next: usize,
}

fn label(id: &StepId) -> String {
    format!("[{} {}/{}]", id.stage, id.index, id.total.saturating_sub(1))
}

fn seconds(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "kB", "MB", "GB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n}B")
    } else {
        format!("{value:.1}{}", UNITS[unit])
    }
}

/// `1.2MB / 3.4MB`, or just the count when the total is unknown.
fn bytes_moved(done: u64, total: Option<u64>) -> String {
    match total {
        Some(total) => format!("{} / {}", human_bytes(done), human_bytes(total)),
        None => human_bytes(done),
    }
}

impl Renderer {
    /// A renderer for the chosen mode (`auto` asks the printer whether
    /// stderr is a terminal).
    pub fn new(mode: Mode, printer: Printer) -> Renderer {
        let mode = match mode {
            Mode::Auto if printer.mode() == printer::Mode::Terminal => Mode::Tty,
            Mode::Auto => Mode::Plain,
            other => other,
        };
        let target = if mode == Mode::Tty {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Renderer {
            mode,
            printer,
            state: Mutex::new(State::default()),
            multi: MultiProgress::with_draw_target(target),
        }
    }

    fn number(state: &mut State, id: &StepId) -> usize {
        if let Some(n) = state.numbers.get(id) {
            return *n;
        }
        state.next += 1;
        state.numbers.insert(id.clone(), state.next);
        state.next
    }

    fn line(&self, text: &str) {
        if self.mode == Mode::Tty {
            let _ = self.multi.println(text);
        } else {
            let _ = writeln!(self.printer.stderr(), "{text}");
        }
    }

    fn json(&self, event: &Event) {
        let value = match event {
            Event::Context { files, duration } => serde_json::json!({
                "event": "context", "files": files, "seconds": duration.as_secs_f64()
            }),
            Event::StepStarted { id, text } => serde_json::json!({
                "event": "started", "stage": id.stage, "step": id.index, "total": id.total, "instruction": text
            }),
            Event::StepCached { id } => serde_json::json!({
                "event": "cached", "stage": id.stage, "step": id.index
            }),
            Event::StepOutput { id, stream, line } => serde_json::json!({
                "event": "output", "stage": id.stage, "step": id.index,
                "stream": if *stream == Stream::Stdout { "stdout" } else { "stderr" }, "line": line
            }),
            Event::StepFinished {
                id,
                duration,
                cached,
                layer_bytes,
            } => serde_json::json!({
                "event": "finished", "stage": id.stage, "step": id.index, "cached": cached,
                "seconds": duration.as_secs_f64(), "layer_bytes": layer_bytes
            }),
            Event::ImageWritten { digest } => {
                serde_json::json!({"event": "image", "digest": digest})
            }
            // Byte counts are for the live display only.
            Event::StepBytes { .. } => return,
        };
        let _ = writeln!(self.printer.stderr(), "{value}");
    }

    /// Clears the live display.
    pub fn finish(&self) {
        let _ = self.multi.clear();
    }
}

impl Progress for Renderer {
    fn event(&self, event: Event) {
        if self.mode == Mode::Json {
            self.json(&event);
            return;
        }
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        match event {
            Event::Context { files, duration } => {
                self.line(&format!(
                    "#0 context: {files} files after .dockerignore, walked in {}",
                    seconds(duration)
                ));
            }
            Event::StepStarted { id, text } => {
                let n = Self::number(&mut state, &id);
                let title = format!("#{n} {} {text}", label(&id));
                if self.mode == Mode::Tty {
                    let bar = self.multi.add(ProgressBar::new_spinner());
                    bar.set_style(
                        ProgressStyle::with_template("{spinner} {prefix} {msg} {elapsed}")
                            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                    );
                    bar.set_prefix(title);
                    bar.enable_steady_tick(Duration::from_millis(120));
                    state.bars.insert(id, bar);
                } else {
                    self.line(&title);
                }
            }
            // The finish line says CACHED, with the layer size.
            Event::StepCached { .. } => {}
            // Live only: the finish line gives the layer size.
            Event::StepBytes { id, done, total } => {
                if let Some(bar) = state.bars.get(&id) {
                    bar.set_message(bytes_moved(done, total));
                }
            }
            Event::StepOutput { id, line, .. } => {
                let n = Self::number(&mut state, &id);
                self.line(&format!("#{n} {line}"));
            }
            Event::StepFinished {
                id,
                duration,
                cached,
                layer_bytes,
            } => {
                let n = Self::number(&mut state, &id);
                let size = layer_bytes
                    .map(|b| format!(" ({})", human_bytes(b)))
                    .unwrap_or_default();
                let status = if cached && id.index > 0 {
                    "CACHED"
                } else {
                    "DONE"
                };
                if let Some(bar) = state.bars.remove(&id) {
                    let title = bar.prefix();
                    bar.finish_and_clear();
                    self.multi.remove(&bar);
                    self.line(&format!("{title} {status} {}{size}", seconds(duration)));
                } else {
                    self.line(&format!("#{n} {status} {}{size}", seconds(duration)));
                }
            }
            Event::ImageWritten { digest } => {
                self.line(&format!("#{} writing image {digest} done", state.next + 1));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_labels_read_well() {
        assert_eq!(human_bytes(512), "512B");
        assert_eq!(human_bytes(1_500_000), "1.5MB");
        assert_eq!(bytes_moved(1_500_000, Some(3_000_000)), "1.5MB / 3.0MB");
        assert_eq!(bytes_moved(512, None), "512B");
        let id = StepId {
            stage: "build".into(),
            index: 2,
            total: 4,
        };
        assert_eq!(label(&id), "[build 2/3]");
    }

    #[test]
    fn byte_counts_update_the_live_step_line_only() {
        let id = StepId {
            stage: "stage-0".into(),
            index: 1,
            total: 2,
        };
        let tty = Renderer::new(Mode::Tty, Printer::new(printer::Mode::Plain));
        tty.event(Event::StepStarted {
            id: id.clone(),
            text: "COPY big /big".into(),
        });
        tty.event(Event::StepBytes {
            id: id.clone(),
            done: 1_500_000,
            total: Some(3_000_000),
        });
        {
            let state = tty.state.lock().unwrap();
            let bar = &state.bars[&id];
            assert_eq!(bar.prefix(), "#1 [stage-0 1/1] COPY big /big");
            assert_eq!(bar.message(), "1.5MB / 3.0MB");
        }
        // Plain mode keeps no live lines, so bytes change nothing there.
        let plain = Renderer::new(Mode::Plain, Printer::new(printer::Mode::Plain));
        plain.event(Event::StepBytes {
            id: id.clone(),
            done: 1,
            total: None,
        });
        assert!(plain.state.lock().unwrap().bars.is_empty());
    }
}
