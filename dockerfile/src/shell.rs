//! Word expansion with the Dockerfile's own rules (BuildKit's shell lexer), not
//! a shell's: `$v`, `${v}`, the `${v:-w}` family, the pattern forms
//! `${v#p}` `${v%p}` `${v/p/r}`, single and double quotes, the escape token,
//! and word splitting for instructions that take several words.
//!
//! Expansion never runs anything: there is no command substitution, no
//! arithmetic, no globbing. Positional and special parameters (`$1`, `$@`, …)
//! are never set.

use super::shell_pattern::{self, ShellPattern};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use thiserror::Error;

/// Where expansion looks variables up.
pub trait Environment {
    /// The value of `name`, or `None` when it is not set (set but empty is `Some("")`).
    fn lookup(&self, name: &str) -> Option<&str>;
}

impl Environment for BTreeMap<String, String> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl Environment for HashMap<String, String> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl Environment for [(String, String)] {
    fn lookup(&self, name: &str) -> Option<&str> {
        // The last definition wins, as in a process environment built in order.
        self.iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

impl Environment for Vec<(String, String)> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.as_slice().lookup(name)
    }
}

/// The empty environment.
pub struct NoEnvironment;

impl Environment for NoEnvironment {
    fn lookup(&self, _name: &str) -> Option<&str> {
        None
    }
}

/// The deepest nesting of `${…}` inside `${…}` a word may have. The
/// expander recurses once per level; real Dockerfiles nest two or three deep.
pub const MAX_EXPANSION_DEPTH: usize = 64;

/// Text shown in an error: hostile words and patterns can be megabytes long.
fn shorten(text: &str) -> String {
    const SHOWN: usize = 80;
    match text.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{}… ({} characters)", &text[..cut], text.chars().count()),
        None => text.to_string(),
    }
}

/// Why a word could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("failed to process {:?}: {reason}", shorten(word))]
pub struct ExpandError {
    /// The word as written.
    pub word: String,
    /// What went wrong, e.g. `syntax error: missing '}'`.
    pub reason: String,
}

/// The result of expanding one word.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expansion {
    /// The word with quotes removed and variables replaced, spaces kept.
    pub word: String,
    /// The same text split into words on unquoted white space.
    pub words: Vec<String>,
    /// The variables that were looked up and found.
    pub matched: BTreeSet<String>,
    /// The variables that were looked up and not set.
    pub unmatched: BTreeSet<String>,
}

/// The word expander. The default settings are the ones instructions use;
/// the `raw_*` and `skip_unset` switches serve the parser's heredoc detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lexer {
    /// The escape character: `\` or, after `# escape=`` ` ``, a backtick.
    pub escape: char,
    /// Keep quote characters in the output.
    pub raw_quotes: bool,
    /// Keep escape characters in the output.
    pub raw_escapes: bool,
    /// Leave references to unset variables as written instead of replacing them with nothing.
    pub skip_unset: bool,
}

impl Lexer {
    /// A lexer with the given escape character and the default settings.
    pub fn new(escape: char) -> Self {
        Lexer {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_unset: false,
        }
    }

    /// Expands `word` in `env`, returning the whole result and its split words.
    pub fn expand(&self, word: &str, env: &dyn Environment) -> Result<Expansion, ExpandError> {
        let mut state = State {
            lexer: *self,
            chars: word.chars().collect(),
            pos: 0,
            env,
            raw_escapes: self.raw_escapes,
            depth: 0,
            matched: BTreeSet::new(),
            unmatched: BTreeSet::new(),
        };
        match state.process_until(None, self.raw_escapes) {
            Ok((text, words)) => Ok(Expansion {
                word: text,
                words,
                matched: state.matched,
                unmatched: state.unmatched,
            }),
            Err(reason) => Err(ExpandError {
                word: word.to_string(),
                reason,
            }),
        }
    }

    /// Expands `word` as one word (quotes removed, inner spaces kept).
    pub fn expand_word(&self, word: &str, env: &dyn Environment) -> Result<String, ExpandError> {
        self.expand(word, env).map(|expansion| expansion.word)
    }

    /// Expands `word` and splits the result into words on unquoted white space.
    pub fn expand_words(
        &self,
        word: &str,
        env: &dyn Environment,
    ) -> Result<Vec<String>, ExpandError> {
        self.expand(word, env).map(|expansion| expansion.words)
    }
}

/// Collects split words while the text is expanded.
#[derive(Default)]
struct Words {
    buf: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !self.buf.is_empty() {
                self.words.push(std::mem::take(&mut self.buf));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }

    fn add_raw_char(&mut self, ch: char) {
        self.buf.push(ch);
        self.in_word = true;
    }

    fn add_string(&mut self, text: &str) {
        for ch in text.chars() {
            self.add_char(ch);
        }
    }

    fn add_raw_string(&mut self, text: &str) {
        self.buf.push_str(text);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.buf.is_empty() {
            self.words.push(std::mem::take(&mut self.buf));
        }
        self.words
    }
}

struct State<'a> {
    lexer: Lexer,
    chars: Vec<char>,
    pos: usize,
    env: &'a dyn Environment,
    raw_escapes: bool,
    /// How many `${` are open around the current position.
    depth: usize,
    matched: BTreeSet<String>,
    unmatched: BTreeSet<String>,
}

impl State<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let ch = self.peek();
        if ch.is_some() {
            self.pos += 1;
        }
        ch
    }

    fn get_env(&mut self, name: &str) -> Option<String> {
        match self.env.lookup(name) {
            Some(value) => {
                self.matched.insert(name.to_string());
                Some(value.to_string())
            }
            None => {
                self.unmatched.insert(name.to_string());
                None
            }
        }
    }

    /// Processes text up to `stop` (consumed) or the end, returning the text
    /// and its words. Each nested call has its own word buffer.
    fn process_until(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), String> {
        let saved = self.raw_escapes;
        self.raw_escapes = raw_escapes;
        let result = self.process_until_inner(stop);
        self.raw_escapes = saved;
        result
    }

    fn process_until_inner(&mut self, stop: Option<char>) -> Result<(String, Vec<String>), String> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if stop == Some(ch) {
                self.next();
                return Ok((result, words.finish()));
            }
            match ch {
                '$' => {
                    let value = self.process_dollar()?;
                    result.push_str(&value);
                    words.add_string(&value);
                }
                '<' => {
                    let value = self.process_possible_heredoc();
                    result.push_str(&value);
                    words.add_raw_string(&value);
                }
                '\'' => {
                    let value = self.process_single_quote()?;
                    result.push_str(&value);
                    words.add_raw_string(&value);
                }
                '"' => {
                    let value = self.process_double_quote()?;
                    result.push_str(&value);
                    words.add_raw_string(&value);
                }
                _ => {
                    self.next();
                    let mut ch = ch;
                    if ch == self.lexer.escape {
                        if self.raw_escapes {
                            words.add_raw_char(ch);
                            result.push(ch);
                        }
                        // The escape character escapes the next one, except at the end.
                        match self.next() {
                            Some(escaped) => ch = escaped,
                            None => break,
                        }
                        words.add_raw_char(ch);
                    } else {
                        words.add_char(ch);
                    }
                    result.push(ch);
                }
            }
        }
        if let Some(stop) = stop {
            return Err(format!(
                "unexpected end of statement while looking for matching {stop}"
            ));
        }
        Ok((result, words.finish()))
    }

    fn process_single_quote(&mut self) -> Result<String, String> {
        // Everything between single quotes is literal; a single quote cannot be escaped.
        let mut result = String::new();
        let open = self.next();
        if self.lexer.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.next() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching single-quote"
                            .to_string(),
                    );
                }
                Some('\'') => {
                    if self.lexer.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(ch) => result.push(ch),
            }
        }
    }

    fn process_double_quote(&mut self) -> Result<String, String> {
        // Everything up to the closing quote is literal except `$`, and the
        // escape character escapes only `"`, `$` and itself.
        let mut result = String::new();
        let open = self.next();
        if self.lexer.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.peek() {
                None => {
                    return Err(
                        "unexpected end of statement while looking for matching double-quote"
                            .to_string(),
                    );
                }
                Some('"') => {
                    self.next();
                    if self.lexer.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let value = self.process_dollar()?;
                    result.push_str(&value);
                }
                Some(mut ch) => {
                    self.next();
                    if ch == self.lexer.escape {
                        if self.raw_escapes {
                            result.push(ch);
                        }
                        match self.peek() {
                            None => continue,
                            Some(next)
                                if next == '"' || next == '$' || next == self.lexer.escape =>
                            {
                                self.next();
                                ch = next;
                            }
                            Some(_) => {}
                        }
                    }
                    result.push(ch);
                }
            }
        }
    }

    fn process_possible_heredoc(&mut self) -> String {
        self.next();
        if self.peek() != Some('<') {
            return "<".to_string();
        }
        self.next();
        // A heredoc may have white space between `<<` and its word.
        let mut result = "<<".to_string();
        while let Some(ch @ ('\t' | '\r' | ' ')) = self.peek() {
            result.push(ch);
            self.next();
        }
        result
    }

    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_ascii_digit() {
                while let Some(digit) = self.peek().filter(char::is_ascii_digit) {
                    name.push(digit);
                    self.next();
                }
                return name;
            }
            if name.is_empty() && is_special_param(ch) {
                self.next();
                return ch.to_string();
            }
            if !ch.is_alphanumeric() && ch != '_' {
                break;
            }
            name.push(ch);
            self.next();
        }
        name
    }

    fn process_dollar(&mut self) -> Result<String, String> {
        self.next();
        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(match self.get_env(&name) {
                Some(value) => value,
                None if self.lexer.skip_unset => format!("${name}"),
                None => String::new(),
            });
        }
        self.next();
        if self.depth >= MAX_EXPANSION_DEPTH {
            return Err(format!(
                "expansions nested more than {MAX_EXPANSION_DEPTH} deep; refusing to go deeper"
            ));
        }
        self.depth += 1;
        let result = self.process_braced();
        self.depth -= 1;
        result
    }

    /// Processes `${…}` after its `${`.
    fn process_braced(&mut self) -> Result<String, String> {
        match self.peek() {
            None => return Err("syntax error: missing '}'".to_string()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".to_string()),
            Some(_) => {}
        }
        let name = self.process_name();
        let Some(first) = self.next() else {
            return Err("syntax error: missing '}'".to_string());
        };
        match first {
            '}' => Ok(match self.get_env(&name) {
                Some(value) => value,
                None if self.lexer.skip_unset => format!("${{{name}}}"),
                None => String::new(),
            }),
            ':' | '+' | '-' | '?' | '#' | '%' => self.process_modifier(&name, first),
            '/' => self.process_replace(&name),
            other => Err(format!("unsupported modifier ({other}) in substitution")),
        }
    }

    fn process_modifier(&mut self, name: &str, first: char) -> Result<String, String> {
        let mut modifier = first.to_string();
        let mut op = first;
        let null_is_unset = first == ':';
        if null_is_unset {
            match self.next() {
                Some(ch) => {
                    op = ch;
                    modifier.push(ch);
                }
                None => return Err("syntax error: missing '}'".to_string()),
            }
        }
        let pattern_op = op == '#' || op == '%';
        if null_is_unset && pattern_op {
            return Err(format!("unsupported modifier ({modifier}) in substitution"));
        }
        let (word, _) = self.process_until(Some('}'), pattern_op).map_err(|err| {
            if self.peek().is_none() {
                "syntax error: missing '}'".to_string()
            } else {
                err
            }
        })?;
        let value = self.get_env(name);
        if self.lexer.skip_unset && value.is_none() {
            return Ok(format!("${{{name}{modifier}{word}}}"));
        }
        let empty_or_unset = match &value {
            None => true,
            Some(value) => null_is_unset && value.is_empty(),
        };
        match op {
            '-' => Ok(if empty_or_unset {
                word
            } else {
                value.unwrap_or_default()
            }),
            '+' => Ok(if empty_or_unset { String::new() } else { word }),
            '?' => match value {
                None => Err(format!(
                    "{name}: {}",
                    if word.is_empty() {
                        "is not allowed to be unset"
                    } else {
                        &word
                    }
                )),
                Some(value) if null_is_unset && value.is_empty() => Err(format!(
                    "{name}: {}",
                    if word.is_empty() {
                        "is not allowed to be empty"
                    } else {
                        &word
                    }
                )),
                Some(value) => Ok(value),
            },
            '#' | '%' => {
                // One `#`/`%` removes the shortest match, two the longest.
                let (greedy, pattern) = match word.strip_prefix(op) {
                    Some(rest) => (true, rest.to_string()),
                    None => (false, word),
                };
                let value = value.unwrap_or_default();
                let invalid = |err: shell_pattern::PatternError| {
                    format!(
                        "invalid pattern ({}) in substitution: {err}",
                        shorten(&pattern)
                    )
                };
                if op == '%' {
                    shell_pattern::trim_suffix(&pattern, &value, greedy).map_err(invalid)
                } else {
                    shell_pattern::trim_prefix(&pattern, &value, greedy).map_err(invalid)
                }
            }
            other => Err(format!("unsupported modifier ({other}) in substitution")),
        }
    }

    fn process_replace(&mut self, name: &str) -> Result<String, String> {
        let replace_all = self.peek() == Some('/');
        if replace_all {
            self.next();
        }
        let (pattern, _) = self.process_until(Some('/'), true).map_err(|err| {
            if self.peek().is_none() {
                "syntax error: missing '/' in ${}".to_string()
            } else {
                err
            }
        })?;
        let (replacement, _) = self.process_until(Some('}'), true).map_err(|err| {
            if self.peek().is_none() {
                "syntax error: missing '}'".to_string()
            } else {
                err
            }
        })?;
        let value = self.get_env(name);
        let Some(value) = value else {
            if self.lexer.skip_unset {
                return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
            }
            return replace_in("", &pattern, &replacement, replace_all);
        };
        replace_in(&value, &pattern, &replacement, replace_all)
    }
}

fn replace_in(value: &str, pattern: &str, replacement: &str, all: bool) -> Result<String, String> {
    let compiled = ShellPattern::compile(pattern).map_err(|err| {
        format!(
            "invalid pattern ({}) in substitution: {err}",
            shorten(pattern)
        )
    })?;
    if all {
        compiled.replace_all(value, replacement)
    } else {
        compiled.replace_first(value, replacement)
    }
    .map_err(|err| {
        format!(
            "invalid pattern ({}) in substitution: {err}",
            shorten(pattern)
        )
    })
}

fn is_special_param(ch: char) -> bool {
    matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn pattern_operators() {
        let env = env(&[
            ("path", "/usr/local/bin/tool.tar.gz"),
            ("v", "aXbXc"),
            ("star", "a*b"),
        ]);
        let lexer = Lexer::new('\\');
        let cases = [
            ("${path#*/}", "usr/local/bin/tool.tar.gz"),
            ("${path##*/}", "tool.tar.gz"),
            ("${path%.*}", "/usr/local/bin/tool.tar"),
            ("${path%%.*}", "/usr/local/bin/tool"),
            ("${path#/usr}", "/local/bin/tool.tar.gz"),
            ("${path%nomatch}", "/usr/local/bin/tool.tar.gz"),
            ("${v/X/-}", "a-bXc"),
            ("${v//X/-}", "a-b-c"),
            ("${v//X}", "error"),
            ("${v//?/.}", "....."),
            ("${v/X*/}", "a"),
            ("${star/\\*/+}", "a+b"),
            ("${v#?X}", "bXc"),
            ("${v%X?}", "aXb"),
            ("${unset#x}", ""),
            ("${unset/x/y}", ""),
            ("${v:#x}", "error"),
            ("${v:%x}", "error"),
            ("${v/\\q/x}", "error"),
            ("${v//X/\\/}", "a\\/b\\/c"),
        ];
        for (input, expected) in cases {
            let got = lexer.expand_word(input, &env);
            match got {
                Ok(word) => assert_eq!(word, expected, "{input}"),
                Err(err) => assert_eq!(expected, "error", "{input}: {err}"),
            }
        }
    }

    #[test]
    fn nested_default_keeps_the_text_before_it_in_words() {
        let lexer = Lexer::new('\\');
        let words = lexer
            .expand_words("hello${X:-a b}c d", &NoEnvironment)
            .unwrap();
        assert_eq!(words, ["helloa", "bc", "d"]);
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let nested = |depth: usize| format!("{}x{}", "${a:-".repeat(depth), "}".repeat(depth));
        let lexer = Lexer::new('\\');
        assert_eq!(
            lexer
                .expand_word(&nested(MAX_EXPANSION_DEPTH), &NoEnvironment)
                .unwrap(),
            "x"
        );
        for depth in [MAX_EXPANSION_DEPTH + 1, 10_000] {
            let err = lexer
                .expand_word(&nested(depth), &NoEnvironment)
                .unwrap_err();
            let message = err.to_string();
            assert!(message.contains("nested more than 64 deep"), "{message}");
            // The word is shown shortened, not 60 KB of it.
            assert!(message.len() < 400, "{message}");
        }
        let quoted = format!("{}x{}", "${a:-\"".repeat(10_000), "\"}".repeat(10_000));
        assert!(lexer.expand_word(&quoted, &NoEnvironment).is_err());
    }

    #[test]
    fn replacing_in_a_long_value_is_fast() {
        let value = "a".repeat(20_000);
        let vars = env(&[("v", &value)]);
        let lexer = Lexer::new('\\');
        let started = std::time::Instant::now();
        assert_eq!(lexer.expand_word("${v/*b/x}", &vars).unwrap(), value);
        assert_eq!(lexer.expand_word("${v//*b/x}", &vars).unwrap(), value);
        let elapsed = started.elapsed();
        assert!(
            elapsed < std::time::Duration::from_secs(2),
            "took {elapsed:?}"
        );
    }

    #[test]
    fn backtick_escape() {
        let lexer = Lexer::new('`');
        assert_eq!(
            lexer.expand_word("a`$b c\\d", &NoEnvironment).unwrap(),
            "a$b c\\d"
        );
    }

    #[test]
    fn records_matched_and_unmatched() {
        let env = env(&[("A", "1")]);
        let expansion = Lexer::new('\\').expand("$A $B ${C:-x}", &env).unwrap();
        assert_eq!(expansion.matched.into_iter().collect::<Vec<_>>(), ["A"]);
        assert_eq!(
            expansion.unmatched.into_iter().collect::<Vec<_>>(),
            ["B", "C"]
        );
    }
}
