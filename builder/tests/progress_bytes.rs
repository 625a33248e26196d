//! The engine reports byte progress for steps that move bytes: a COPY's layer
//! writing sends `StepBytes` events that end at the content size; steps that
//! move nothing send none.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use berth_builder::engine::{self, BuildOptions, Event, Progress};
use berth_containers::executor::Runtime;
use berth_dockerfile::{self as frontend, PlanOptions, dockerignore};
use berth_store::Store;
use berth_store::layer::Compression;
use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Default)]
struct Collect(Mutex<Vec<Event>>);

impl Progress for Collect {
    fn event(&self, event: Event) {
        self.0.lock().unwrap().push(event);
    }
}

#[test]
fn copy_steps_report_the_bytes_they_write() {
    let ctx = tempfile::tempdir().unwrap();
    let store_dir = tempfile::tempdir().unwrap();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(ctx.path().join("big.bin"), &big).unwrap();
    std::fs::write(ctx.path().join("small.txt"), "small\n").unwrap();
    let dockerfile = ctx.path().join("Dockerfile");
    std::fs::write(
        &dockerfile,
        "FROM scratch\nCOPY big.bin small.txt /data/\nENV A=1\n",
    )
    .unwrap();

    let parsed = frontend::parse_file(&dockerfile).unwrap();
    let plan = frontend::plan(
        &parsed,
        &PlanOptions {
            build_args: BTreeMap::new(),
            target: None,
            target_platform: None,
            build_platform: None,
        },
    )
    .unwrap();
    let (ignore, _) = dockerignore::for_build(&dockerfile, ctx.path()).unwrap();
    let store = Store::open(store_dir.path()).unwrap();
    let options = BuildOptions {
        context: ctx.path().canonicalize().unwrap(),
        ignore,
        no_cache: false,
        compression: Compression::Gzip,
        source_date_epoch: None,
        runtime: Runtime {
            binary: Runtime::default_binary(),
        },
        secrets: BTreeMap::new(),
        escape: parsed.escape,
        pull: false,
        add_hosts: Vec::new(),
    };
    let collected = Collect::default();
    engine::build(&store, &plan, &options, &collected).unwrap();

    let events = collected.0.into_inner().unwrap();
    let bytes: Vec<(usize, u64, Option<u64>)> = events
        .iter()
        .filter_map(|e| match e {
            Event::StepBytes { id, done, total } => Some((id.index, *done, *total)),
            _ => None,
        })
        .collect();
    let expected = big.len() as u64 + 6;
    assert!(!bytes.is_empty(), "no byte progress in {events:?}");
    // Only the COPY (step 1) moves bytes; the counts grow to the total.
    assert!(bytes.iter().all(|(step, ..)| *step == 1), "{bytes:?}");
    assert!(bytes.windows(2).all(|w| w[0].1 <= w[1].1), "{bytes:?}");
    assert_eq!(bytes.last().unwrap().1, expected);
    assert!(bytes.iter().all(|(_, _, total)| *total == Some(expected)));
    // Events arrive between the step's start and its end.
    let position = |pred: &dyn Fn(&Event) -> bool| events.iter().position(pred).unwrap();
    let started = position(&|e| matches!(e, Event::StepStarted { id, .. } if id.index == 1));
    let finished = position(&|e| matches!(e, Event::StepFinished { id, .. } if id.index == 1));
    let first_bytes = position(&|e| matches!(e, Event::StepBytes { .. }));
    assert!(started < first_bytes && first_bytes < finished);
}
