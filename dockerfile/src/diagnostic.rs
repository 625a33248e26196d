//! Errors and warnings about a Dockerfile, located by file and line, and their
//! rendering with the offending line and a caret, as `docker build --check`
//! shows them.

use serde::{Deserialize, Serialize};
use std::fmt;

/// How serious a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The Dockerfile cannot be built.
    Error,
    /// The Dockerfile builds, but probably not as its author meant.
    Warning,
}

/// One error or warning, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// A short name of the check that fired, e.g. `UndefinedArgInFrom`, for warnings.
    pub rule: Option<String>,
    /// What is wrong, lowercase, naming the thing involved.
    pub message: String,
    /// A hint on how to fix it, if there is a useful one.
    pub hint: Option<String>,
    /// The file the problem is in, as the user named it.
    pub file: String,
    /// The first line involved (1-based); 0 when the problem has no line.
    pub start_line: usize,
    /// The last line involved (1-based, inclusive).
    pub end_line: usize,
    /// The columns of the offending word on the first line (0-based, in
    /// characters, end exclusive), when known; the caret underlines them.
    #[serde(default)]
    pub columns: Option<(usize, usize)>,
}

impl Diagnostic {
    /// An error at the given lines.
    pub fn error(
        file: &str,
        start_line: usize,
        end_line: usize,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Error,
            rule: None,
            message: message.into(),
            hint: None,
            file: file.to_string(),
            start_line,
            end_line: end_line.max(start_line),
            columns: None,
        }
    }

    /// A warning from the named rule at the given lines.
    pub fn warning(
        file: &str,
        rule: &str,
        start_line: usize,
        end_line: usize,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            rule: Some(rule.to_string()),
            message: message.into(),
            hint: None,
            file: file.to_string(),
            start_line,
            end_line: end_line.max(start_line),
            columns: None,
        }
    }

    /// The same diagnostic pointing at `token` on its first line of
    /// `source`, if the token is there.
    pub fn at_token(mut self, source: &str, token: &str) -> Self {
        let line = source
            .lines()
            .nth(self.start_line.wrapping_sub(1))
            .unwrap_or_default();
        if let Some(index) = line.find(token).filter(|_| !token.is_empty()) {
            let start = line[..index].chars().count();
            self.columns = Some((start, start + token.chars().count()));
        }
        self
    }

    /// The same diagnostic with a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Writes the diagnostic as a header line followed by the source lines it
    /// covers, each numbered, with a caret line under the first one.
    ///
    /// `source` is the whole Dockerfile text; lines outside it are left out.
    pub fn render(&self, source: &str, out: &mut impl fmt::Write) -> fmt::Result {
        let label = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        match &self.rule {
            Some(rule) => write!(out, "{label}: {rule}: {}", self.message)?,
            None => write!(out, "{label}: {}", self.message)?,
        }
        writeln!(out)?;
        if self.start_line == 0 {
            writeln!(out, " --> {}", self.file)?;
        } else {
            writeln!(out, " --> {}:{}", self.file, self.start_line)?;
        }
        let lines: Vec<&str> = source.lines().collect();
        // Long spans (a heredoc, a huge RUN) are cut so the report stays readable.
        const MAX_SHOWN: usize = 6;
        if self.start_line > 0 && self.start_line <= lines.len() {
            let last = self.end_line.min(lines.len());
            let width = last.to_string().len();
            let shown_last = last.min(self.start_line + MAX_SHOWN - 1);
            for number in self.start_line..=shown_last {
                let text = lines[number - 1].trim_end_matches('\r');
                writeln!(out, "{number:>width$} | {text}")?;
                if number == self.start_line {
                    let (start, end) = self.columns.unwrap_or_else(|| {
                        let indent = text.chars().take_while(|c| c.is_whitespace()).count();
                        (indent, indent + text.trim().chars().count())
                    });
                    // Tabs are kept so the caret lines up under them.
                    let indent: String = text
                        .chars()
                        .take(start)
                        .map(|c| if c == '\t' { '\t' } else { ' ' })
                        .collect();
                    writeln!(
                        out,
                        "{:>width$} | {indent}{}",
                        "",
                        "^".repeat(end.saturating_sub(start).max(1))
                    )?;
                }
            }
            if shown_last < last {
                writeln!(out, "{:>width$} | ...", "")?;
            }
        }
        if let Some(hint) = &self.hint {
            writeln!(out, "hint: {hint}")?;
        }
        Ok(())
    }

    /// The rendered text, see [`Diagnostic::render`].
    pub fn rendered(&self, source: &str) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = self.render(source, &mut text);
        text
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start_line == 0 {
            write!(f, "{}: {}", self.file, self.message)?;
        } else if self.end_line > self.start_line {
            write!(
                f,
                "{}:{}-{}: {}",
                self.file, self.start_line, self.end_line, self.message
            )?;
        } else {
            write!(f, "{}:{}: {}", self.file, self.start_line, self.message)?;
        }
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

/// Returns the candidate closest to `word` by edit distance, if it is close
/// enough to be a plausible typo (used for "did you mean" hints).
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        let distance = edit_distance(&word, &candidate.to_ascii_lowercase());
        let limit = (candidate.len() / 3).max(1);
        if distance <= limit && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_header_line_and_caret() {
        let source = "FROM alpine\n  RUNN echo hi\n";
        let diagnostic = Diagnostic::error("Dockerfile", 2, 2, "unknown instruction: RUNN")
            .with_hint("did you mean RUN?");
        let text = diagnostic.rendered(source);
        assert_eq!(
            text,
            "error: unknown instruction: RUNN\n --> Dockerfile:2\n2 |   RUNN echo hi\n  |   ^^^^^^^^^^^^\nhint: did you mean RUN?\n"
        );
    }

    #[test]
    fn caret_points_at_the_token() {
        let source = "FROM alpine\n\tCOPY --bogus=1 a b\n";
        let diagnostic = Diagnostic::error("Dockerfile", 2, 2, "unknown flag: --bogus for COPY")
            .at_token(source, "--bogus");
        assert_eq!(diagnostic.columns, Some((6, 13)));
        assert_eq!(
            diagnostic.rendered(source),
            "error: unknown flag: --bogus for COPY\n --> Dockerfile:2\n2 | \tCOPY --bogus=1 a b\n  | \t     ^^^^^^^\n"
        );
        let missing = Diagnostic::error("Dockerfile", 2, 2, "x").at_token(source, "--nope");
        assert_eq!(missing.columns, None);
    }

    #[test]
    fn display_names_file_and_lines() {
        let diagnostic = Diagnostic::error("a/Dockerfile", 3, 5, "unterminated heredoc");
        assert_eq!(
            diagnostic.to_string(),
            "a/Dockerfile:3-5: unterminated heredoc"
        );
    }

    #[test]
    fn suggests_close_names_only() {
        let names = ["run", "copy", "entrypoint"];
        assert_eq!(suggest("runn", names), Some("run"));
        assert_eq!(suggest("entrypiont", names), Some("entrypoint"));
        assert_eq!(suggest("xyz", names), None);
    }
}
