//! The shell patterns of `${v#p}`, `${v%p}` and `${v/p/r}`: `*` is any run of
//! characters, `?` one character, `\` escapes `*`, `?` and itself, everything
//! else (brackets included) is literal. Neither wildcard matches a newline.
//!
//! Matching follows leftmost-first semantics: a shortest-match (`#`, `%`)
//! pattern prefers short runs for `*`, a longest-match one long runs.

use std::collections::HashSet;
use thiserror::Error;

/// Why a pattern is invalid.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PatternError {
    /// A `\` before a character that cannot be escaped.
    #[error("invalid escape '\\{0}'")]
    InvalidEscape(String),
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

    /// The end of the preferred match starting at `start`, if any.
    fn match_at(&self, text: &[char], start: usize, greedy: bool) -> Option<usize> {
        let mut failed = HashSet::new();
        self.match_from(text, 0, start, greedy, &mut failed)
    }

    fn match_from(
        &self,
        text: &[char],
        token: usize,
        pos: usize,
        greedy: bool,
        failed: &mut HashSet<(usize, usize)>,
    ) -> Option<usize> {
        if token == self.tokens.len() {
            return Some(pos);
        }
        if failed.contains(&(token, pos)) {
            return None;
        }
        let found = match self.tokens[token] {
            Token::Literal(ch) => {
                if text.get(pos) == Some(&ch) {
                    self.match_from(text, token + 1, pos + 1, greedy, failed)
                } else {
                    None
                }
            }
            Token::One => match text.get(pos) {
                Some(&ch) if ch != '\n' => {
                    self.match_from(text, token + 1, pos + 1, greedy, failed)
                }
                _ => None,
            },
            Token::Star => {
                let run = text[pos..].iter().take_while(|&&ch| ch != '\n').count();
                if greedy {
                    (0..=run)
                        .rev()
                        .find_map(|len| self.match_from(text, token + 1, pos + len, greedy, failed))
                } else {
                    (0..=run)
                        .find_map(|len| self.match_from(text, token + 1, pos + len, greedy, failed))
                }
            }
        };
        if found.is_none() {
            failed.insert((token, pos));
        }
        found
    }

    /// The leftmost match `(start, end)` at or after `from`, in char indexes.
    fn find(&self, text: &[char], from: usize) -> Option<(usize, usize)> {
        (from..=text.len())
            .find_map(|start| self.match_at(text, start, true).map(|end| (start, end)))
    }

    /// Replaces the leftmost (longest) match with `replacement`, literally.
    pub fn replace_first(&self, value: &str, replacement: &str) -> String {
        let text: Vec<char> = value.chars().collect();
        match self.find(&text, 0) {
            Some((start, end)) => {
                let mut out: String = text[..start].iter().collect();
                out.push_str(replacement);
                out.extend(&text[end..]);
                out
            }
            None => value.to_string(),
        }
    }

    /// Replaces every non-overlapping match, as Go's `ReplaceAllString` does:
    /// an empty match right after a match is skipped, and `$0` in the
    /// replacement stands for the match, `$$` for a dollar.
    pub fn replace_all(&self, value: &str, replacement: &str) -> String {
        let text: Vec<char> = value.chars().collect();
        let mut out = String::new();
        let mut last_end = 0;
        let mut search = 0;
        while search <= text.len() {
            let Some((start, end)) = self.find(&text, search) else {
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
        out
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
    Ok(match compiled.match_at(&text, 0, greedy) {
        Some(end) => text[end..].iter().collect(),
        None => value.to_string(),
    })
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
        assert_eq!(star.replace_all("abc", "-"), "-");
        let prefixed = ShellPattern::compile("a*").unwrap();
        assert_eq!(prefixed.replace_all("bab", "-"), "b-");
        let plain = ShellPattern::compile("b").unwrap();
        assert_eq!(plain.replace_all("abcb", "[$0]$$"), "a[b]$c[b]$");
    }

    #[test]
    fn wildcards_stop_at_newline() {
        assert_eq!(trim_prefix("*", "ab\ncd", true).unwrap(), "\ncd");
    }

    #[test]
    fn matching_is_polynomial() {
        let pattern = "*a".repeat(30);
        let value = "a".repeat(200) + "b";
        assert_eq!(trim_prefix(&pattern, &value, true).unwrap(), "b");
    }
}
