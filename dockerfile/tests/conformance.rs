//! BuildKit's and patternmatcher's own test data (in `../shared/conformance`)
//! run against berth's frontend. The data must be there: a missing directory
//! fails the test.

// Test helpers outside #[test] functions fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use berth_dockerfile::dockerignore::Matcher;
use berth_dockerfile::parse;
use berth_dockerfile::shell::Lexer;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

fn conformance() -> PathBuf {
    let dir = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/conformance"
    ));
    assert!(
        dir.join("README.md").is_file(),
        "the conformance data is missing at {}; it is shared by the workspace and must be present",
        dir.display()
    );
    dir.to_path_buf()
}

fn case_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|err| panic!("cannot list {}: {err}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    dirs
}

fn assert_no_failures(failures: &[String]) {
    assert!(
        failures.is_empty(),
        "{} cases fail:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Whether a result is the expected one, where `"error"` expects an error.
fn outcome_is<T: PartialEq<E>, E: ?Sized, Err>(
    got: &Result<T, Err>,
    expected_error: bool,
    expected: &E,
) -> bool {
    match got {
        Err(_) => expected_error,
        Ok(value) => !expected_error && value == expected,
    }
}

fn read_lossy(path: &Path) -> String {
    String::from_utf8_lossy(
        &fs::read(path).unwrap_or_else(|err| panic!("{}: {err}", path.display())),
    )
    .into_owned()
}

#[test]
fn parser_dumps_match_buildkit_results() {
    let dirs = case_dirs(&conformance().join("dockerfile-parser/testfiles"));
    assert_eq!(dirs.len(), 33, "expected the 33 upstream cases");
    let mut failures = Vec::new();
    for dir in &dirs {
        let source = read_lossy(&dir.join("Dockerfile"));
        let expected = fs::read(dir.join("result")).unwrap();
        let expected = String::from_utf8_lossy(&expected);
        match parse(&source, "Dockerfile") {
            Ok(parsed) => {
                let got = parsed.dump() + "\n";
                if got != expected {
                    failures.push(format!(
                        "{}:\n--- expected\n{expected}--- got\n{got}",
                        dir.display()
                    ));
                }
            }
            Err(err) => failures.push(format!("{}: {err}", dir.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "{} cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn negative_cases_fail() {
    let dirs = case_dirs(&conformance().join("dockerfile-parser/testfiles-negative"));
    assert_eq!(dirs.len(), 4);
    for dir in dirs {
        let source = read_lossy(&dir.join("Dockerfile"));
        assert!(
            parse(&source, "Dockerfile").is_err(),
            "{} should not parse",
            dir.display()
        );
    }
}

#[test]
fn line_spans_match() {
    let source = read_lossy(&conformance().join("dockerfile-parser/testfile-line/Dockerfile"));
    let parsed = parse(&source, "Dockerfile").unwrap();
    let spans: Vec<(usize, usize)> = parsed
        .nodes
        .iter()
        .map(|n| (n.start_line, n.end_line))
        .collect();
    assert_eq!(spans, [(5, 5), (11, 12), (17, 31)]);
}

fn env_var_test_env() -> BTreeMap<String, String> {
    [
        ("PWD", "/home"),
        ("SHELL", "bash"),
        ("KOREAN", "한국어"),
        ("NULL", ""),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

#[test]
fn env_var_test_all_and_unix_rows() {
    let text = read_lossy(&conformance().join("shell/envVarTest"));
    let env = env_var_test_env();
    let lexer = Lexer::new('\\');
    let mut checked = 0;
    let mut failures = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.splitn(3, '|').collect();
        assert_eq!(fields.len(), 3, "bad row: {line}");
        let (platform, input, expected) = (fields[0].trim(), fields[1].trim(), fields[2].trim());
        if platform != "A" && platform != "U" {
            continue;
        }
        checked += 1;
        let got = lexer.expand_word(input, &env);
        if !outcome_is(&got, expected == "error", expected) {
            failures.push(format!("{input:?}: expected {expected:?}, got {got:?}"));
        }
    }
    assert!(checked > 200, "only {checked} rows read");
    assert_no_failures(&failures);
}

#[test]
fn words_test_rows() {
    let text = read_lossy(&conformance().join("shell/wordsTest"));
    let lexer = Lexer::new('\\');
    let mut env: Vec<(String, String)> = Vec::new();
    let mut checked = 0;
    let mut failures = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if let Some(assignment) = line.strip_prefix("ENV ") {
            let (key, value) = assignment.split_once('=').expect("ENV k=v");
            env.push((key.to_string(), value.to_string()));
            continue;
        }
        let (input, expected) = line.split_once('|').expect("input|expected");
        let (input, expected) = (input.trim(), expected.trim_start());
        checked += 1;
        let got = lexer.expand_words(input, &env);
        let expected_words: Vec<String> = expected.split(',').map(str::to_string).collect();
        if !outcome_is(&got, expected == "error", &expected_words) {
            failures.push(format!("{input:?}: expected {expected:?}, got {got:?}"));
        }
    }
    assert_eq!(checked, 24, "rows read");
    assert_no_failures(&failures);
}

#[test]
fn dockerignore_matches_rows() {
    let text = read_lossy(&conformance().join("dockerignore/matches.tsv"));
    let mut checked = 0;
    let mut failures = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        assert!(fields.len() >= 3, "bad row: {line}");
        let patterns: Vec<String> = serde_json::from_str(fields[0]).expect("a JSON array");
        let (path, expected) = (fields[1], fields[2]);
        checked += 1;
        let got = Matcher::new(&patterns).map(|matcher| matcher.is_excluded(path));
        let ok = matches!(
            (&got, expected),
            (Err(_), "error") | (Ok(true), "true") | (Ok(false), "false")
        );
        if !ok {
            failures.push(format!(
                "{patterns:?} {path:?}: expected {expected}, got {got:?}"
            ));
        }
    }
    assert_eq!(checked, 137);
    assert_no_failures(&failures);
}
