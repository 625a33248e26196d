//! runc's log output: `--log FILE` with `--log-format text|json`.
//!
//! JSON lines are `{"level":"error","msg":"...","time":"..."}`; containerd
//! reports the `msg` of the last error line to its user, so the final error of
//! a failed command is always written there, and also to stderr as runc does.

use crate::GlobalOptions;
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

/// Where log lines go.
#[derive(Clone)]
pub struct Log {
    file: Option<Arc<Mutex<File>>>,
    json: bool,
}

/// Sets up logging from the global flags and returns the handle the final
/// error is written through.
pub fn init(global: &GlobalOptions) -> Log {
    let file = global.log.as_ref().and_then(|path| {
        match OpenOptions::new().create(true).append(true).open(path) {
            Ok(file) => Some(Arc::new(Mutex::new(file))),
            Err(err) => {
                eprintln!(
                    "berth-runtime: opening log file {}: {err}; logging to stderr",
                    path.display()
                );
                None
            }
        }
    });
    let log = Log {
        file,
        json: global.log_format == "json",
    };
    // Errors and the runtime's own warnings (such as a failed poststop hook),
    // as runc logs them; youki's are detail for --debug (see logged_level).
    let max = if global.debug {
        Level::DEBUG
    } else {
        Level::WARN
    };
    // libcontainer logs from forked children too; a failure to install the
    // subscriber only loses those messages, never the final error.
    let _ = tracing_subscriber::registry()
        .with(LineLayer {
            log: log.clone(),
            max,
        })
        .try_init();
    log
}

impl Log {
    /// Writes one line at `level`.
    pub fn write(&self, level: Level, msg: &str) {
        let line = self.format(level, msg);
        match &self.file {
            Some(file) => {
                if let Ok(mut file) = file.lock() {
                    let _ = file.write_all(line.as_bytes());
                }
            }
            None => {
                let _ = std::io::stderr().write_all(line.as_bytes());
            }
        }
    }

    /// Reports the error that ends the command: to the log, and to stderr
    /// when the log is a file.
    /// The message is the whole chain of causes, as runc's
    /// `level=error msg="runc create failed: ..."`; orchestrators and
    /// runc's test suites look for the word "error".
    pub fn fatal(&self, err: &anyhow::Error) {
        let msg = berth_runtime::error::chain(err.as_ref());
        if self.file.is_some() {
            self.write(Level::ERROR, &msg);
        }
        eprintln!("berth-runtime: error: {msg}");
    }

    fn format(&self, level: Level, msg: &str) -> String {
        let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let level = level.as_str().to_ascii_lowercase();
        if self.json {
            let mut line =
                serde_json::json!({ "level": level, "msg": msg, "time": time }).to_string();
            line.push('\n');
            line
        } else {
            format!("time={time:?} level={level} msg={msg:?}\n")
        }
    }
}

/// Forwards tracing events (ours and libcontainer's) as log lines.
struct LineLayer {
    log: Log,
    max: Level,
}

impl<S: Subscriber> Layer<S> for LineLayer {
    fn enabled(&self, metadata: &tracing::Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        logged_level(metadata.target(), *metadata.level()) <= self.max
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let metadata = event.metadata();
        let mut visitor = Message::default();
        event.record(&mut visitor);
        self.log.write(
            logged_level(metadata.target(), *metadata.level()),
            &visitor.text,
        );
    }
}

/// The level an event is logged at. youki's libraries log a failure as an
/// error at every layer it passes through (and in the forked processes),
/// before returning it; the runtime then reports the returned error once, as
/// runc does. So their errors and warnings are detail, kept at debug level
/// for `--debug`.
fn logged_level(target: &str, level: Level) -> Level {
    let youki = ["libcontainer", "libcgroups"].iter().any(|lib| {
        target
            .strip_prefix(lib)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    });
    if youki && level < Level::DEBUG {
        Level::DEBUG
    } else {
        level
    }
}

/// The message of an event followed by its fields as `key=value`.
#[derive(Default)]
struct Message {
    text: String,
}

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let fields = std::mem::take(&mut self.text);
            let _ = write!(self.text, "{value:?}");
            if !fields.is_empty() {
                self.text.push(' ');
                self.text.push_str(&fields);
            }
        } else {
            if !self.text.is_empty() {
                self.text.push(' ');
            }
            let _ = write!(self.text, "{}={value:?}", field.name());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn youki_errors_and_warnings_are_debug_detail() {
        let cases = [
            (
                "libcontainer::process::container_main_process",
                Level::ERROR,
                Level::DEBUG,
            ),
            ("libcontainer", Level::WARN, Level::DEBUG),
            ("libcgroups::v1::manager", Level::ERROR, Level::DEBUG),
            ("libcontainer::container", Level::TRACE, Level::TRACE),
            ("berth_runtime::lifecycle", Level::ERROR, Level::ERROR),
            ("libcontainerd", Level::ERROR, Level::ERROR),
        ];
        for (target, level, want) in cases {
            assert_eq!(logged_level(target, level), want, "{target} {level}");
        }
    }
}
