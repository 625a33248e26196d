//! Robustness of the frontend: on any input the parser, the planner, the
//! word expander and the ignore-file matcher return a result or an error,
//! never panic; and parsing grows linearly with the file.
//!
//! The property tests run a bounded number of cases so they take seconds in
//! CI; `builder/fuzz` holds the open-ended fuzz target for the same code.

// Test helpers outside #[test] functions fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use berth_dockerfile::dockerignore::{Matcher, read_patterns};
use berth_dockerfile::instruction::Instruction;
use berth_dockerfile::shell::{Lexer, NoEnvironment};
use berth_dockerfile::{PlanOptions, Platform, parse, plan};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Pieces that make random text look enough like a Dockerfile to reach deep
/// into the parser: keywords, flags, quotes, escapes, expansions, heredocs.
const PIECES: &[&str] = &[
    "FROM ",
    "RUN ",
    "COPY ",
    "ADD ",
    "ENV ",
    "ARG ",
    "LABEL ",
    "ONBUILD ",
    "HEALTHCHECK ",
    "CMD ",
    "ENTRYPOINT ",
    "SHELL ",
    "WORKDIR ",
    "USER ",
    "EXPOSE ",
    "VOLUME ",
    "STOPSIGNAL ",
    "MAINTAINER ",
    "NONE",
    "CMD",
    "AS ",
    "as ",
    "scratch",
    "alpine",
    "a",
    "b=c",
    "x=",
    "=",
    "$x",
    "$",
    "${x}",
    "${x:-y}",
    "${x:+y}",
    "${x:?m}",
    "${x#*/}",
    "${x##?}",
    "${x%.*}",
    "${x/a/b}",
    "${x//*/}",
    "${",
    "}",
    "{",
    "\"",
    "'",
    "\\",
    "`",
    "\n",
    "\n",
    "\n",
    " ",
    "  ",
    "\t",
    "\r",
    "#",
    "# escape=`\n",
    "# syntax=x\n",
    "# check=skip=all\n",
    "<<EOF",
    "<<-EOF",
    "<<'EOF'",
    "3<<E",
    "EOF\n",
    "\tEOF\n",
    "E\n",
    "[",
    "]",
    "\",\"",
    "[\"a\"]",
    "--from=a",
    "--from=0",
    "--mount=type=bind,from=a",
    "--platform=$BUILDPLATFORM",
    "--link",
    "--chown=1:1",
    "--",
    "--x",
    "*",
    "?",
    "**",
    "/",
    "..",
    "é",
    "한",
    "\u{a0}",
    "\u{feff}",
    "0",
    "99999999999999999999",
    ";",
];

fn dockerfile_text() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PIECES), 0..120).prop_map(|pieces| pieces.concat())
}

fn options() -> PlanOptions {
    PlanOptions {
        build_args: BTreeMap::from([("x".to_string(), "1".to_string())]),
        target: None,
        target_platform: Some(Platform::parse("linux/arm64").unwrap()),
        build_platform: Some(Platform::parse("linux/amd64").unwrap()),
    }
}

/// Runs everything the frontend does with a Dockerfile text.
fn exercise(text: &str) {
    if let Ok(dockerfile) = parse(text, "Dockerfile") {
        let _ = dockerfile.dump();
        for node in &dockerfile.nodes {
            let _ = Instruction::from_node(node);
        }
        let _ = plan(&dockerfile, &options());
        let _ = plan(
            &dockerfile,
            &PlanOptions {
                target: Some("a".to_string()),
                ..options()
            },
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn dockerfile_like_input_never_panics(text in dockerfile_text()) {
        exercise(&text);
    }

    #[test]
    fn arbitrary_input_never_panics(text in any::<String>()) {
        exercise(&text);
    }

    #[test]
    fn word_expansion_never_panics(word in dockerfile_text(), raw_quotes: bool, raw_escapes: bool, skip_unset: bool, backtick: bool) {
        let lexer = Lexer {
            escape: if backtick { '`' } else { '\\' },
            raw_quotes,
            raw_escapes,
            skip_unset,
        };
        let env = BTreeMap::from([("x".to_string(), "a/b.c d".to_string())]);
        let _ = lexer.expand(&word, &env);
        let _ = lexer.expand(&word, &NoEnvironment);
    }

    #[test]
    fn ignore_matching_never_panics(
        patterns in prop::collection::vec("[!*?/a-c\\[\\]\\\\^.-]{0,8}", 0..6),
        path in "[*?/a-c.\\[\\]]{0,12}",
    ) {
        if let Ok(matcher) = Matcher::new(&patterns) {
            let _ = matcher.is_excluded(&path);
            let _ = matcher.may_keep_inside(&path);
        }
        let _ = read_patterns(&patterns.join("\n"));
    }
}

/// A Dockerfile of `lines` lines mixing the constructs that could be slow:
/// continuations, heredocs, flags, expansions and many stages.
fn big_dockerfile(lines: usize) -> String {
    let mut text = String::from("# syntax=docker/dockerfile:1\nARG BASE=alpine\n");
    let mut written = 2;
    let mut stage = 0;
    while written < lines {
        text.push_str(&format!("FROM $BASE AS s{stage}\n"));
        text.push_str("ARG V=1\nENV A=${V:-x} B=\"$A two\"\n");
        text.push_str("RUN --mount=type=cache,target=/c echo $A \\\n    && echo two \\\n# dropped\n    && echo three\n");
        text.push_str("COPY --link <<EOF /etc/conf\nkey=${A}\nEOF\n");
        text.push_str("LABEL a=b c=\"d e\"\nWORKDIR /w/${A%x}\nEXPOSE 80/tcp 443\n");
        written += 13;
        stage += 1;
    }
    text
}

/// The best times of `small` and `large` over `runs` rounds, run in turn, so
/// that a burst of load on a busy machine hits both sizes alike instead of
/// one whole series.
fn best_of_interleaved(runs: usize, small: impl Fn(), large: impl Fn()) -> (Duration, Duration) {
    let time = |work: &dyn Fn()| {
        let start = Instant::now();
        work();
        start.elapsed()
    };
    (0..runs).fold((Duration::MAX, Duration::MAX), |(s, l), _| {
        (s.min(time(&small)), l.min(time(&large)))
    })
}

#[test]
fn parsing_and_planning_scale_linearly() {
    let small = big_dockerfile(1_000);
    let large = big_dockerfile(10_000);
    assert!(large.lines().count() >= 10_000);
    let parse_plan = |text: &str| {
        let dockerfile = parse(text, "Dockerfile").unwrap();
        plan(&dockerfile, &options()).unwrap();
    };
    let (small_time, large_time) =
        best_of_interleaved(7, || parse_plan(&small), || parse_plan(&large));
    eprintln!("parse+plan: 1k lines {small_time:?}, 10k lines {large_time:?}");
    // Ten times the lines should take about ten times as long; allow a wide
    // margin for noise, far below what quadratic growth (100x) would need.
    let ratio = large_time.as_secs_f64() / small_time.as_secs_f64().max(1e-6);
    assert!(
        ratio < 30.0,
        "10k lines took {large_time:?}, 1k lines {small_time:?} (ratio {ratio:.1})"
    );
    // A generous sanity bound that even an unoptimised build meets.
    assert!(
        large_time < Duration::from_secs(5),
        "10k lines took {large_time:?}"
    );
}

#[test]
fn one_huge_continued_instruction_is_linear() {
    let body = |n: usize| format!("FROM a\nRUN true{}\n", " \\\n  && echo $x".repeat(n));
    // 2k lines, not 1k: a run of a millisecond or two is too short to time
    // reliably on a loaded machine.
    let small = body(2_000);
    let large = body(20_000);
    let (small_time, large_time) = best_of_interleaved(
        7,
        || {
            parse(&small, "Dockerfile").unwrap();
        },
        || {
            parse(&large, "Dockerfile").unwrap();
        },
    );
    // Ten times the lines: about 10x when linear, 100x when quadratic.
    let ratio = large_time.as_secs_f64() / small_time.as_secs_f64().max(1e-6);
    assert!(
        ratio < 30.0,
        "20k continuation lines took {large_time:?}, 2k {small_time:?} (ratio {ratio:.1})"
    );
}

#[test]
fn deeply_nested_expansions_are_a_diagnostic_not_a_crash() {
    // 10,000 levels of `${a:-…}` (60 KB) overflowed the stack and aborted,
    // under `berth build --check` too, which runs exactly this.
    let depth = 10_000;
    let word = format!("{}x{}", "${a:-".repeat(depth), "}".repeat(depth));
    let text = format!("FROM busybox\nRUN echo {word}\nENV x={word}\n");
    let dockerfile = parse(&text, "Dockerfile").unwrap();
    let err = plan(&dockerfile, &options()).unwrap_err();
    let error = err.errors().next().unwrap();
    assert_eq!(error.start_line, 3, "{error:?}");
    assert!(
        error.message.contains("nested more than 64 deep"),
        "{}",
        error.message
    );
    assert!(error.message.len() < 400, "{}", error.message);
}

#[test]
fn huge_and_quadratic_patterns_expand_quickly() {
    let lexer = Lexer::new('\\');
    let value = "a".repeat(20_000);
    let env = BTreeMap::from([("v".to_string(), value.clone())]);
    let started = Instant::now();
    assert_eq!(lexer.expand_word("${v/*b/x}", &env).unwrap(), value);
    assert_eq!(
        lexer.expand_word("${v/*a/x}", &env).unwrap(),
        "x",
        "the longest match at the leftmost start"
    );
    // A 300k-character `${v#…}` pattern recursed once per character.
    let long = "a".repeat(300_000);
    let env = BTreeMap::from([("v".to_string(), format!("{long}b"))]);
    assert_eq!(
        lexer.expand_word(&format!("${{v#{long}}}"), &env).unwrap(),
        "b"
    );
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
}
