//! `events`: container statistics as runc's JSON events.

use crate::GlobalOptions;
use anyhow::Context;
use serde::Serialize;
use std::io::Write;
use std::time::Duration;

/// Flags of `events`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print one stats event and exit.
    #[arg(long)]
    pub stats: bool,
    /// How often to print stats events when streaming (e.g. 5s, 500ms).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub interval: Duration,
    /// The container id.
    pub id: String,
}

#[derive(Serialize)]
struct Event<'a, T> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
    data: T,
}

/// Runs `events`: one event with `--stats`, otherwise one per interval until
/// the container stops.
pub fn run(global: &GlobalOptions, args: Args) -> anyhow::Result<i32> {
    let runtime = super::runtime(global);
    let stdout = std::io::stdout();
    loop {
        let stats = match runtime.stats(&args.id) {
            Ok(stats) => stats,
            // A container that stopped while streaming ends the stream.
            Err(berth_runtime::Error::NotRunning { .. }) if !args.stats => return Ok(0),
            Err(err) => return Err(err.into()),
        };
        let event = Event {
            kind: "stats",
            id: &args.id,
            data: stats,
        };
        let mut out = stdout.lock();
        serde_json::to_writer(&mut out, &event)?;
        writeln!(out)?;
        out.flush()?;
        if args.stats {
            return Ok(0);
        }
        std::thread::sleep(args.interval);
    }
}

/// Parses Go-style durations: a number with `ms`, `s`, `m` or `h`.
fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .with_context(|| format!("invalid duration {text:?}; hint: use 5s or 500ms"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" | "" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => anyhow::bail!("invalid duration unit in {text:?}; hint: use ms, s, m or h"),
    };
    if seconds <= 0.0 {
        anyhow::bail!("the interval must be positive, not {text:?}");
    }
    Ok(Duration::from_secs_f64(seconds))
}
