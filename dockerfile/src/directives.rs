//! Parser directives: `# syntax=…`, `# escape=…` and `# check=…` comment
//! lines at the very top of a Dockerfile, before any instruction, blank line
//! or other comment.

use serde::{Deserialize, Serialize};

/// The directives a Dockerfile declared.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Directives {
    /// `# syntax=<frontend image>`; berth records it but always uses its own frontend.
    pub syntax: Option<String>,
    /// `# escape=<char>`, the escape and line-continuation character.
    pub escape: Option<char>,
    /// `# check=skip=…;error=true`, the build checks configuration.
    pub check: Option<String>,
}

/// Reads directives line by line until the first line that is not one.
#[derive(Debug, Default)]
pub(crate) struct DirectiveParser {
    done: bool,
    pub(crate) directives: Directives,
}

/// A recognised directive line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Found {
    /// Not a directive (or directives are over).
    None,
    /// A directive was read and stored.
    Directive,
}

impl DirectiveParser {
    /// Looks at one line (newline and leading white space already removed).
    /// Errors for a repeated directive or an invalid escape character.
    pub(crate) fn parse_line(&mut self, line: &str) -> Result<Found, String> {
        if self.done {
            return Ok(Found::None);
        }
        let Some(rest) = line.strip_prefix('#') else {
            self.done = true;
            return Ok(Found::None);
        };
        let Some((key, value)) = split_directive(rest.trim_start()) else {
            self.done = true;
            return Ok(Found::None);
        };
        let key = key.to_ascii_lowercase();
        let slot_taken = match key.as_str() {
            "syntax" => self.directives.syntax.is_some(),
            "escape" => self.directives.escape.is_some(),
            "check" => self.directives.check.is_some(),
            _ => {
                self.done = true;
                return Ok(Found::None);
            }
        };
        if slot_taken {
            return Err(format!("only one {key} parser directive can be used"));
        }
        match key.as_str() {
            "syntax" => self.directives.syntax = Some(value),
            "check" => self.directives.check = Some(value),
            _ => {
                let escape = match value.as_str() {
                    "\\" => '\\',
                    "`" => '`',
                    _ => {
                        return Err(format!(
                            "invalid escape token '{value}' does not match ` or \\"
                        ));
                    }
                };
                self.directives.escape = Some(escape);
            }
        }
        Ok(Found::Directive)
    }
}

/// Whether `c` is in Go's regexp `\s` class.
fn is_regex_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\x0c' | '\r' | ' ')
}

/// Splits `name = value` as BuildKit's `^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$` does.
fn split_directive(text: &str) -> Option<(String, String)> {
    let mut chars = text.char_indices();
    let (_, first) = chars.next()?;
    if !first.is_ascii_alphabetic() {
        return None;
    }
    let name_end = text
        .char_indices()
        .find(|(_, c)| !c.is_ascii_alphanumeric())
        .map_or(text.len(), |(i, _)| i);
    let name = &text[..name_end];
    let after_name = text[name_end..].trim_start_matches(is_regex_space);
    let after_equals = after_name.strip_prefix('=')?;
    let value = after_equals
        .trim_start_matches(is_regex_space)
        .trim_end_matches(is_regex_space);
    if !value.is_empty() {
        return Some((name.to_string(), value.to_string()));
    }
    // The lazy value group needs one character: with only white space left it
    // takes the last white space character.
    let last = after_equals.chars().last()?;
    Some((name.to_string(), last.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_directives_until_the_first_other_line() {
        let mut parser = DirectiveParser::default();
        assert_eq!(
            parser.parse_line("# syntax = docker/dockerfile:1 "),
            Ok(Found::Directive)
        );
        assert_eq!(parser.parse_line("#escape=`"), Ok(Found::Directive));
        assert_eq!(parser.parse_line("# check=skip=all"), Ok(Found::Directive));
        assert_eq!(
            parser.parse_line("# escape=\\"),
            Err("only one escape parser directive can be used".into())
        );
        let mut parser = DirectiveParser::default();
        assert_eq!(parser.parse_line("# a comment"), Ok(Found::None));
        assert_eq!(parser.parse_line("# escape=`"), Ok(Found::None));
        assert_eq!(parser.directives, Directives::default());
    }

    #[test]
    fn rejects_bad_escape_and_unknown_keys_end_directives() {
        let mut parser = DirectiveParser::default();
        assert!(parser.parse_line("# escape=x").is_err());
        let mut parser = DirectiveParser::default();
        assert_eq!(parser.parse_line("# foo=bar"), Ok(Found::None));
        assert_eq!(parser.parse_line("# syntax=x"), Ok(Found::None));
    }

    #[test]
    fn splits_like_the_upstream_expression() {
        assert_eq!(
            split_directive("escape = ` "),
            Some(("escape".into(), "`".into()))
        );
        assert_eq!(
            split_directive("escape=  "),
            Some(("escape".into(), " ".into()))
        );
        assert_eq!(split_directive("escape="), None);
        assert_eq!(split_directive("1x=a"), None);
    }
}
