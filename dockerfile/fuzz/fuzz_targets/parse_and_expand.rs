//! Feeds arbitrary bytes to the Dockerfile frontend: the parser, the
//! instruction types, the planner, the word expander in every mode and the
//! `.dockerignore` matcher. Any panic, or a hang libFuzzer notices, is a bug.
#![no_main]

use berth_dockerfile::dockerignore::{Matcher, read_patterns};
use berth_dockerfile::instruction::Instruction;
use berth_dockerfile::shell::{Lexer, NoEnvironment};
use berth_dockerfile::{PlanOptions, parse, plan};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);

    if let Ok(dockerfile) = parse(&text, "Dockerfile") {
        let _ = dockerfile.dump();
        for node in &dockerfile.nodes {
            let _ = Instruction::from_node(node);
        }
        let options = PlanOptions {
            build_args: BTreeMap::from([("A".to_string(), "1".to_string())]),
            ..PlanOptions::default()
        };
        let _ = plan(&dockerfile, &options);
    }

    // The first byte picks the lexer mode; the rest is one word.
    if let Some((&mode, rest)) = data.split_first() {
        let word = String::from_utf8_lossy(rest);
        let lexer = Lexer {
            escape: if mode & 1 == 0 { '\\' } else { '`' },
            raw_quotes: mode & 2 != 0,
            raw_escapes: mode & 4 != 0,
            skip_unset: mode & 8 != 0,
        };
        let env = BTreeMap::from([("x".to_string(), "a/b.c d".to_string())]);
        let _ = lexer.expand(&word, &env);
        let _ = lexer.expand(&word, &NoEnvironment);
    }

    let patterns = read_patterns(&text);
    if let Ok(matcher) = Matcher::new(&patterns) {
        for path in text.lines().take(8) {
            let _ = matcher.is_excluded(path);
            let _ = matcher.may_keep_inside(path);
        }
    }
});
