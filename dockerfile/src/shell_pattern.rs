//! The shell patterns of `${v#p}`, `${v%p}` and `${v/p/r}`: `*` is any run of
//! characters, `?` one character, `\` escapes `*`, `?` and itself, everything
//! else (brackets included) is literal. Neither wildcard matches a newline.
//!
//! Matching follows leftmost-first semantics: a shortest-match (`#`, `%`)
//! pattern prefers short runs for `*`, a longest-match one long runs. It runs
//! as a Pike VM (threads in priority order, one per pattern position), which
//! gives the same answers as backtracking in O(pattern × value) steps and
//! without recursion, so hostile patterns neither take quadratic time per
//! match nor overflow the stack.

use thiserror::Error;

/// The most VM steps one expansion may take (well under a second). Real
/// patterns keep a handful of threads alive and take about as many steps as
/// the value has characters; only many stars against a long value come near.
const MAX_STEPS: u64 = 20_000_000;

/// Why a pattern is invalid.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PatternError {
    /// A `\` before a character that cannot be escaped.
    #[error("invalid escape '\\{0}'")]
    InvalidEscape(String),
    /// Matching would take more than [`MAX_STEPS`] steps.
    #[error(
        "a pattern of {pattern} characters against a value of {value} characters is too much work to match (limit {MAX_STEPS} steps)"
    )]
    TooComplex {
        /// The pattern's length in characters.
        pattern: usize,
        /// The value's length in characters.
        value: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    Star,
    One,
    Literal(char),
}

/// A compiled shell pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellPattern {
    tokens: Vec<Token>,
}

/// Counts VM steps against [`MAX_STEPS`].
struct Budget {
    steps: u64,
    pattern: usize,
    value: usize,
}

impl Budget {
    fn new(pattern: &ShellPattern, value: &[char]) -> Budget {
        Budget {
            steps: 0,
            pattern: pattern.tokens.len(),
            value: value.len(),
        }
    }

    fn spend(&mut self, steps: usize) -> Result<(), PatternError> {
        self.steps += steps as u64;
        if self.steps > MAX_STEPS {
            return Err(PatternError::TooComplex {
                pattern: self.pattern,
                value: self.value,
            });
        }
        Ok(())
    }
}

/// The threads of the VM at one position: (pattern position, match start) in
/// priority order, at most one per pattern position.
struct Threads {
    list: Vec<(usize, usize)>,
    /// The generation in which each pattern position was last added.
    seen: Vec<u64>,
    generation: u64,
}

impl Threads {
    fn new(states: usize) -> Threads {
        Threads {
            list: Vec::new(),
            seen: vec![0; states],
            generation: 1,
        }
    }

    fn clear(&mut self) {
        self.list.clear();
        self.generation += 1;
    }

    fn push(&mut self, state: usize, start: usize) {
        if self.seen[state] != self.generation {
            self.seen[state] = self.generation;
            self.list.push((state, start));
        }
    }
}

impl ShellPattern {
    /// Compiles a pattern as written inside `${…}` (escapes still present).
    pub fn compile(pattern: &str) -> Result<Self, PatternError> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut tokens = Vec::with_capacity(chars.len());
        let mut i = 0;
        while i < chars.len() {
            let ch = chars[i];
            i += 1;
            match ch {
                // `**` matches what `*` matches, with the same preference.
                '*' if tokens.last() == Some(&Token::Star) => {}
                '*' => tokens.push(Token::Star),
                '?' => tokens.push(Token::One),
                '\\' => {
                    // `}` and `/` are escaped only to end the `${}` parts early;
                    // the backslash is not part of the pattern.
                    if matches!(chars.get(i), Some('}' | '/')) {
                        continue;
                    }
                    match chars.get(i) {
                        Some(&escaped @ ('*' | '?' | '\\')) => {
                            tokens.push(Token::Literal(escaped));
                            i += 1;
                        }
                        Some(other) => return Err(PatternError::InvalidEscape(other.to_string())),
                        None => return Err(PatternError::InvalidEscape(String::new())),
                    }
                }
                other => tokens.push(Token::Literal(other)),
            }
        }
        Ok(ShellPattern { tokens })
    }

    /// Adds a thread at `state` and the states its empty moves reach, in
    /// priority order: a star either takes one more character (preferred
    /// when `greedy`) or lets the rest of the pattern go on. Stars never
    /// follow stars, so this needs no recursion.
    fn add(&self, threads: &mut Threads, state: usize, start: usize, greedy: bool) {
        if self.tokens.get(state) == Some(&Token::Star) {
            if greedy {
                threads.push(state, start);
                threads.push(state + 1, start);
            } else {
                threads.push(state + 1, start);
                threads.push(state, start);
            }
        } else {
            threads.push(state, start);
        }
    }

    /// The preferred match `(start, end)` in char indexes: anchored at
    /// `from`, or the leftmost one at or after it.
    fn search(
        &self,
        text: &[char],
        from: usize,
        anchored: bool,
        greedy: bool,
        budget: &mut Budget,
    ) -> Result<Option<(usize, usize)>, PatternError> {
        let accept = self.tokens.len();
        let mut current = Threads::new(accept + 1);
        let mut next = Threads::new(accept + 1);
        self.add(&mut current, 0, from, greedy);
        let mut best = None;
        let mut pos = from;
        loop {
            budget.spend(current.list.len() + 1)?;
            next.clear();
            let ch = text.get(pos).copied();
            for &(state, start) in &current.list {
                if state == accept {
                    // Threads after this one have lower priority: drop them.
                    best = Some((start, pos));
                    break;
                }
                let Some(ch) = ch else { continue };
                match self.tokens[state] {
                    Token::Literal(literal) if literal == ch => {
                        self.add(&mut next, state + 1, start, greedy);
                    }
                    Token::One if ch != '\n' => self.add(&mut next, state + 1, start, greedy),
                    Token::Star if ch != '\n' => self.add(&mut next, state, start, greedy),
                    _ => {}
                }
            }
            if pos >= text.len() {
                break;
            }
            pos += 1;
            if !anchored && best.is_none() {
                // A match starting here ranks below every earlier start.
                self.add(&mut next, 0, pos, greedy);
            }
            std::mem::swap(&mut current, &mut next);
            if current.list.is_empty() {
                break;
            }
        }
        Ok(best)
    }

    /// Replaces the leftmost (longest) match with `replacement`, literally.
    pub fn replace_first(&self, value: &str, replacement: &str) -> Result<String, PatternError> {
        let text: Vec<char> = value.chars().collect();
        let mut budget = Budget::new(self, &text);
        Ok(match self.search(&text, 0, false, true, &mut budget)? {
            Some((start, end)) => {
                let mut out: String = text[..start].iter().collect();
                out.push_str(replacement);
                out.extend(&text[end..]);
                out
            }
            None => value.to_string(),
        })
    }

    /// Replaces every non-overlapping match, as Go's `ReplaceAllString` does:
    /// an empty match right after a match is skipped, and `$0` in the
    /// replacement stands for the match, `$$` for a dollar.
    pub fn replace_all(&self, value: &str, replacement: &str) -> Result<String, PatternError> {
        let text: Vec<char> = value.chars().collect();
        let mut budget = Budget::new(self, &text);
        let mut out = String::new();
        let mut last_end = 0;
        let mut search = 0;
        while search <= text.len() {
            let Some((start, end)) = self.search(&text, search, false, true, &mut budget)? else {
                break;
            };
            out.extend(&text[last_end..start]);
            if end > last_end || start == 0 {
                expand_template(replacement, &text[start..end], &mut out);
            }
            last_end = end;
            search = if search + 1 > end { search + 1 } else { end };
        }
        if last_end <= text.len() {
            out.extend(&text[last_end..]);
        }
        Ok(out)
    }
}

/// Go's `Regexp.Expand` for a pattern without groups.
fn expand_template(template: &str, matched: &[char], out: &mut String) {
    let chars: Vec<char> = template.chars().collect();
    let mut i = 0;
    let is_name = |c: char| c.is_alphanumeric() || c == '_';
    while i < chars.len() {
        if chars[i] != '$' {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        match chars.get(i + 1) {
            Some('$') => {
                out.push('$');
                i += 2;
            }
            Some('{') => {
                let name_end = chars[i + 2..]
                    .iter()
                    .position(|&c| !is_name(c))
                    .map(|p| p + i + 2);
                match name_end {
                    Some(end) if end > i + 2 && chars[end] == '}' => {
                        let name: String = chars[i + 2..end].iter().collect();
                        if name == "0" {
                            out.extend(matched);
                        }
                        i = end + 1;
                    }
                    _ => {
                        out.push('$');
                        i += 1;
                    }
                }
            }
            Some(&c) if is_name(c) => {
                let end = chars[i + 1..]
                    .iter()
                    .position(|&c| !is_name(c))
                    .map_or(chars.len(), |p| p + i + 1);
                let name: String = chars[i + 1..end].iter().collect();
                if name == "0" {
                    out.extend(matched);
                }
                i = end;
            }
            _ => {
                out.push('$');
                i += 1;
            }
        }
    }
}

/// Removes the shortest (or, `greedy`, the longest) prefix of `value` matching `pattern`.
pub fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> Result<String, PatternError> {
    let compiled = ShellPattern::compile(pattern)?;
    let text: Vec<char> = value.chars().collect();
    let mut budget = Budget::new(&compiled, &text);
    Ok(
        match compiled.search(&text, 0, true, greedy, &mut budget)? {
            Some((_, end)) => text[end..].iter().collect(),
            None => value.to_string(),
        },
    )
}

/// Removes the shortest (or longest) suffix matching `pattern`, by matching the
/// reversed pattern against the reversed value.
pub fn trim_suffix(pattern: &str, value: &str, greedy: bool) -> Result<String, PatternError> {
    let reversed_value: String = value.chars().rev().collect();
    let trimmed = trim_prefix(&reverse_pattern(pattern), &reversed_value, greedy)?;
    Ok(trimmed.chars().rev().collect())
}

/// Reverses a pattern, keeping each escape before the character it escapes.
fn reverse_pattern(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = vec!['\0'; chars.len()];
    let last = chars.len().saturating_sub(1);
    let mut i = 0;
    while i < chars.len() {
        let out_index = last - i;
        if chars[i] == '\\' && i != last {
            out[out_index - 1] = chars[i];
            out[out_index] = chars[i + 1];
            i += 2;
        } else {
            out[out_index] = chars[i];
            i += 1;
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortest_and_longest_prefix() {
        assert_eq!(trim_prefix("*/", "a/b/c", false).unwrap(), "b/c");
        assert_eq!(trim_prefix("*/", "a/b/c", true).unwrap(), "c");
        assert_eq!(trim_suffix("/*", "a/b/c", false).unwrap(), "a/b");
        assert_eq!(trim_suffix("/*", "a/b/c", true).unwrap(), "a");
        assert_eq!(trim_suffix("\\*", "a**", false).unwrap(), "a*");
        assert_eq!(trim_prefix("[a]", "[a]b", false).unwrap(), "b");
    }

    #[test]
    fn replace_all_skips_empty_match_after_match() {
        let star = ShellPattern::compile("*").unwrap();
        assert_eq!(star.replace_all("abc", "-").unwrap(), "-");
        let prefixed = ShellPattern::compile("a*").unwrap();
        assert_eq!(prefixed.replace_all("bab", "-").unwrap(), "b-");
        let plain = ShellPattern::compile("b").unwrap();
        assert_eq!(plain.replace_all("abcb", "[$0]$$").unwrap(), "a[b]$c[b]$");
    }

    #[test]
    fn wildcards_stop_at_newline() {
        assert_eq!(trim_prefix("*", "ab\ncd", true).unwrap(), "\ncd");
    }

    #[test]
    fn preferences_match_backtracking() {
        // (pattern, value, greedy, prefix trimmed away), worked out by hand
        // with leftmost-first preferences.
        let cases = [
            ("a*b", "aXbYb", false, "Yb"),
            ("a*b", "aXbYb", true, ""),
            ("*?", "abc", false, "bc"),
            ("*?", "abc", true, ""),
            ("**x", "axbx", false, "bx"),
            ("?", "", true, ""),
            ("", "abc", true, "abc"),
            ("*", "ab\ncd", false, "ab\ncd"),
        ];
        for (pattern, value, greedy, rest) in cases {
            assert_eq!(
                trim_prefix(pattern, value, greedy).unwrap(),
                rest,
                "{pattern} on {value:?}, greedy {greedy}"
            );
        }
        let middle = ShellPattern::compile("b*d").unwrap();
        assert_eq!(middle.replace_first("abcdbd", "X").unwrap(), "aX");
        assert_eq!(middle.replace_all("ab\nbdcbd", "X").unwrap(), "ab\nX");
    }

    #[test]
    fn a_huge_pattern_neither_recurses_nor_crawls() {
        // One recursion per matched character overflowed the stack here.
        let long = "a".repeat(300_000);
        assert_eq!(trim_prefix(&long, &long, false).unwrap(), "");
        assert_eq!(trim_suffix(&long, &format!("b{long}"), true).unwrap(), "b");
        let ones = "?".repeat(300_000);
        assert_eq!(trim_prefix(&ones, "short", true).unwrap(), "short");
    }

    #[test]
    fn replacing_in_a_long_value_is_linear() {
        // Every start position restarted the match: 48 s for 20k characters.
        let value = "a".repeat(20_000);
        let star_b = ShellPattern::compile("*b").unwrap();
        let started = std::time::Instant::now();
        assert_eq!(star_b.replace_first(&value, "x").unwrap(), value);
        assert_eq!(star_b.replace_all(&value, "x").unwrap(), value);
        assert_eq!(
            star_b.replace_first(&format!("{value}bc"), "x").unwrap(),
            "xc"
        );
        let elapsed = started.elapsed();
        assert!(
            elapsed < std::time::Duration::from_secs(2),
            "took {elapsed:?}"
        );
    }

    #[test]
    fn too_much_work_is_an_error() {
        let pattern = "*a".repeat(5_000);
        let value = "a".repeat(20_000);
        let err = trim_prefix(&pattern, &value, true).unwrap_err();
        assert!(matches!(err, PatternError::TooComplex { .. }), "{err}");
        assert!(err.to_string().contains("too much work"), "{err}");
    }

    #[test]
    fn matching_is_polynomial() {
        let pattern = "*a".repeat(30);
        let value = "a".repeat(200) + "b";
        assert_eq!(trim_prefix(&pattern, &value, true).unwrap(), "b");
    }
}
