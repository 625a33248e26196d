//! The Dockerfile parser: directives, line continuations (comment lines inside
//! them dropped), instruction keywords and flags, argument forms and heredocs.
//! It follows BuildKit's parser so that both read every file the same way.

use super::ast::{Dockerfile, Node};
use super::diagnostic::Diagnostic;
use super::directives::{DirectiveParser, Found};
use super::heredoc;
use super::line_parsers::{Shape, extract_flags, parse_args, split_whitespace_runs};

/// Every instruction keyword, lowercase.
pub const INSTRUCTIONS: &[&str] = &[
    "add",
    "arg",
    "cmd",
    "copy",
    "entrypoint",
    "env",
    "expose",
    "from",
    "healthcheck",
    "label",
    "maintainer",
    "onbuild",
    "run",
    "shell",
    "stopsignal",
    "user",
    "volume",
    "workdir",
];

fn shape_of(name: &str) -> Option<Shape> {
    Some(match name {
        "add" | "copy" | "volume" => Shape::MaybeJsonList,
        "arg" => Shape::NameOrNameValue,
        "cmd" | "entrypoint" | "run" | "shell" => Shape::MaybeJson,
        "env" => Shape::NameValue("ENV"),
        "label" => Shape::NameValue("LABEL"),
        "expose" | "from" => Shape::Whitespace,
        "healthcheck" => Shape::Health,
        "maintainer" | "stopsignal" | "user" | "workdir" => Shape::String,
        "onbuild" => Shape::SubCommand,
        _ => return None,
    })
}

/// Parses Dockerfile text. `file` names it in diagnostics.
pub fn parse(source: &str, file: &str) -> Result<Dockerfile, Box<Diagnostic>> {
    Parser::new(source, file).run()
}

struct Parser<'a> {
    file: &'a str,
    source: &'a str,
    lines: Vec<&'a str>,
    next: usize,
    escape: char,
    directives: DirectiveParser,
}

/// Removes trailing `\r` and `\n` characters.
fn trim_newline(line: &str) -> &str {
    line.trim_end_matches(['\r', '\n'])
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with('#')
}

impl<'a> Parser<'a> {
    fn new(source: &'a str, file: &'a str) -> Self {
        let text = source.strip_prefix('\u{feff}').unwrap_or(source);
        Parser {
            file,
            source,
            lines: text.split_inclusive('\n').collect(),
            next: 0,
            escape: '\\',
            directives: DirectiveParser::default(),
        }
    }

    fn error(&self, start: usize, end: usize, message: impl Into<String>) -> Box<Diagnostic> {
        Box::new(Diagnostic::error(self.file, start, end, message))
    }

    fn next_line(&mut self) -> Option<&'a str> {
        let line = self.lines.get(self.next).copied();
        if line.is_some() {
            self.next += 1;
        }
        line
    }

    /// Strips the newline (and, for a first line, leading white space), feeds
    /// the directive parser, and blanks comment lines. Also says whether the
    /// line was a parser directive.
    fn process_line(&mut self, raw: &'a str, strip_left: bool) -> Result<(&'a str, bool), String> {
        let mut line = trim_newline(raw);
        if strip_left {
            line = line.trim_start();
        }
        let directive = self.directives.parse_line(line)? == Found::Directive;
        if let Some(escape) = self.directives.directives.escape {
            self.escape = escape;
        }
        Ok((if is_comment(line) { "" } else { line }, directive))
    }

    /// Removes a trailing line-continuation escape; `true` when the line ends
    /// the instruction.
    fn trim_continuation(&self, line: &'a str) -> (&'a str, bool) {
        let trimmed = line.trim_end_matches([' ', '\t']);
        let Some(before) = trimmed.strip_suffix(self.escape) else {
            return (line, true);
        };
        // An escaped escape character at the end does not continue the line.
        if !before.is_empty() && before.ends_with(self.escape) {
            return (line, true);
        }
        (before, false)
    }

    fn run(mut self) -> Result<Dockerfile, Box<Diagnostic>> {
        let mut nodes = Vec::new();
        let mut warnings = Vec::new();
        let mut comments: Vec<String> = Vec::new();
        let mut current_line = 0;
        while let Some(raw) = self.next_line() {
            if is_comment(raw) {
                let comment = raw.trim_start()[1..].trim().to_string();
                if comment.is_empty() {
                    comments.clear();
                } else {
                    comments.push(comment);
                }
            }
            let (line, directive) = self
                .process_line(raw, true)
                .map_err(|message| self.error(current_line + 1, current_line + 1, message))?;
            if directive {
                // Directives are not comments of the next instruction.
                comments.pop();
            }
            current_line += 1;
            let start_line = current_line;
            let (first, mut end_of_line) = self.trim_continuation(line);
            if end_of_line && first.is_empty() {
                continue;
            }
            let mut joined = first.to_string();
            let mut empty_continuation = false;
            while !end_of_line {
                let Some(raw) = self.next_line() else {
                    break;
                };
                let (line, _) = self
                    .process_line(raw, false)
                    .map_err(|message| self.error(current_line + 1, current_line + 1, message))?;
                current_line += 1;
                if is_comment(raw) {
                    continue;
                }
                if line.trim_start().is_empty() {
                    empty_continuation = true;
                    continue;
                }
                let (part, ends) = self.trim_continuation(line);
                end_of_line = ends;
                joined.push_str(part);
            }
            if empty_continuation {
                warnings.push(
                    Diagnostic::warning(
                        self.file,
                        "NoEmptyContinuation",
                        start_line,
                        current_line,
                        format!("empty continuation line found in: {joined}"),
                    )
                    .with_hint("empty continuation lines will become errors in a future release; remove the empty line"),
                );
            }
            let mut node = self
                .node_from_line(&joined, start_line, current_line)
                .map_err(|message| self.error(start_line, current_line, message))?;
            node.comments = std::mem::take(&mut comments);
            if can_contain_heredoc(&node) && joined.contains("<<") {
                let found = heredoc::heredocs_in_line(&joined)
                    .map_err(|message| self.error(start_line, current_line, message))?;
                for mut doc in found {
                    let mut terminated = false;
                    let mut content = String::new();
                    while let Some(raw) = self.next_line() {
                        current_line += 1;
                        let mut candidate = trim_newline(raw);
                        if doc.chomp {
                            candidate = candidate.trim_start_matches('\t');
                        }
                        if candidate == doc.name {
                            terminated = true;
                            break;
                        }
                        content.push_str(raw);
                    }
                    if !terminated {
                        let diagnostic = Diagnostic::error(
                            self.file,
                            start_line,
                            current_line,
                            format!("unterminated heredoc {:?}", doc.name),
                        )
                        .with_hint(format!(
                            "end the heredoc with a line holding only {}",
                            doc.name
                        ));
                        return Err(Box::new(diagnostic));
                    }
                    doc.content = content;
                    node.heredocs.push(doc);
                }
            }
            node.start_line = start_line;
            node.end_line = current_line;
            if let Some(child) = node.child.as_mut() {
                child.start_line = start_line;
                child.end_line = current_line;
            }
            nodes.push(node);
        }
        if nodes.is_empty() {
            let diagnostic = Diagnostic::error(self.file, 0, 0, "file with no instructions")
                .with_hint("a Dockerfile needs at least a FROM instruction");
            return Err(Box::new(diagnostic));
        }
        let escape = self.escape;
        Ok(Dockerfile {
            file: self.file.to_string(),
            source: self.source.to_string(),
            directives: self.directives.directives,
            escape,
            nodes,
            warnings,
        })
    }

    /// Builds the node of one joined instruction line.
    fn node_from_line(&self, line: &str, start: usize, end: usize) -> Result<Node, String> {
        let trimmed = line.trim();
        let parts = split_whitespace_runs(trimmed, 2);
        let keyword = parts.first().cloned().unwrap_or_default();
        let (args_text, flags) = match parts.get(1) {
            Some(rest) => {
                let (args, flags) = extract_flags(rest, self.escape);
                (args.trim().to_string(), flags)
            }
            None => (String::new(), Vec::new()),
        };
        let name = keyword.to_ascii_lowercase();
        // Unknown instructions are kept, without arguments, as BuildKit keeps
        // them; giving nodes their types reports them with every other error.
        let shape = shape_of(&name);
        let mut node = Node {
            keyword,
            flags,
            args: Vec::new(),
            child: None,
            json: false,
            heredocs: Vec::new(),
            original: line.to_string(),
            comments: Vec::new(),
            start_line: start,
            end_line: end,
        };
        let Some(shape) = shape else {
            node.args = vec![String::new()];
            return Ok(node);
        };
        if shape == Shape::SubCommand {
            if !args_text.is_empty() {
                let child = self.node_from_line(&args_text, start, end)?;
                let child_name = child.name();
                if matches!(child_name.as_str(), "onbuild" | "from" | "maintainer") {
                    return Err(format!(
                        "{} isn't allowed as an ONBUILD trigger",
                        child_name.to_ascii_uppercase()
                    ));
                }
                node.child = Some(Box::new(child));
            }
            return Ok(node);
        }
        let parsed = parse_args(shape, &args_text, self.escape)?;
        node.args = parsed.args;
        node.json = parsed.json;
        Ok(node)
    }
}

/// Heredocs are read for RUN, COPY and ADD (also inside ONBUILD) in shell form.
fn can_contain_heredoc(node: &Node) -> bool {
    let node = match &node.child {
        Some(child) if node.name() == "onbuild" => child,
        _ => node,
    };
    matches!(node.name().as_str(), "add" | "copy" | "run") && !node.json
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dump(source: &str) -> String {
        parse(source, "Dockerfile").unwrap().dump()
    }

    #[test]
    fn heredoc_table() {
        type Expected<'a> = &'a [(&'a str, &'a str, bool, bool)];
        let cases: &[(&str, Expected)] = &[
            (
                "FROM a\nRUN <<EOF\necho hi\nEOF\n",
                &[("EOF", "echo hi\n", true, false)],
            ),
            (
                "FROM a\nRUN <<-EOF\n\techo hi\n\tEOF\n",
                &[("EOF", "\techo hi\n", true, true)],
            ),
            (
                "FROM a\nRUN <<\"EOF\"\n$x\nEOF\n",
                &[("EOF", "$x\n", false, false)],
            ),
            ("FROM a\nRUN <<'E'\nx\nE\n", &[("E", "x\n", false, false)]),
            (
                "FROM a\nCOPY <<one <<two /dst/\n1\none\n2\ntwo\n",
                &[("one", "1\n", true, false), ("two", "2\n", true, false)],
            ),
            (
                "FROM a\nRUN 3<<EOF cat /dev/fd/3\nx\nEOF\n",
                &[("EOF", "x\n", true, false)],
            ),
            (
                "FROM a\nRUN python3 <<EOF > out\nprint(1)\nEOF\n",
                &[("EOF", "print(1)\n", true, false)],
            ),
            ("FROM a\nRUN [\"sh\", \"<<EOF\"]\n", &[]),
            ("FROM a\nRUN echo '<<EOF'\n", &[]),
            ("FROM a\nENV X=<<EOF\n", &[]),
        ];
        for (source, expected) in cases {
            let parsed = parse(source, "Dockerfile").unwrap();
            let got: Vec<(&str, &str, bool, bool)> = parsed.nodes[1]
                .heredocs
                .iter()
                .map(|h| (h.name.as_str(), h.content.as_str(), h.expand, h.chomp))
                .collect();
            assert_eq!(got, *expected, "{source}");
        }
        let fd = parse("FROM a\nRUN 3<<EOF cat\nx\nEOF\n", "Dockerfile").unwrap();
        assert_eq!(fd.nodes[1].heredocs[0].file_descriptor, 3);
        assert_eq!(fd.nodes[1].end_line, 4);
    }

    #[test]
    fn errors_name_the_line() {
        let cases = [
            ("", "file with no instructions", 0),
            ("# only\n\n", "file with no instructions", 0),
            (
                "FROM a\nRUN <<EOF\nno end\n",
                "unterminated heredoc \"EOF\"",
                2,
            ),
            ("FROM a\nENV x\n", "ENV must have two arguments", 2),
            (
                "# escape=x\nFROM a\n",
                "invalid escape token 'x' does not match ` or \\",
                1,
            ),
            (
                "FROM a\nCMD [1]\n",
                super::super::line_parsers::NOT_STRING_ARRAY,
                2,
            ),
            (
                "FROM a\nONBUILD ONBUILD RUN x\n",
                "ONBUILD isn't allowed as an ONBUILD trigger",
                2,
            ),
        ];
        for (source, message, line) in cases {
            let err = parse(source, "Dockerfile").unwrap_err();
            assert_eq!(
                (err.message.as_str(), err.start_line),
                (message, line),
                "{source:?}"
            );
        }
    }

    #[test]
    fn continuation_and_comments() {
        assert_eq!(
            dump("FROM a\nRUN echo \\\n# dropped\n  two \\\n\n  three\n"),
            "(from \"a\")\n(run \"echo   two   three\")"
        );
        let parsed = parse("FROM a\nRUN a \\\n\n b\n", "Dockerfile").unwrap();
        assert_eq!(parsed.warnings.len(), 1);
        assert_eq!(
            dump("# escape=`\nFROM a\nRUN a `\n b \\\n"),
            "(from \"a\")\n(run \"a  b \\\\\")"
        );
        assert_eq!(
            dump("FROM a\nRUN a \\\\\n"),
            "(from \"a\")\n(run \"a \\\\\\\\\")"
        );
    }

    #[test]
    fn warns_on_empty_continuation_lines() {
        // BuildKit's TestParseWarnsOnEmptyContinutationLine.
        let source = "\nFROM alpine:3.6\n\nRUN valid \\\n    continuation\n\nRUN something \\\n\n    following \\\n\n    more\n\nRUN another \\\n\n    thing\n\nRUN non-indented \\\n# this is a comment\n   after-comment\n\nRUN indented \\\n    # this is an indented comment\n    comment\n\t";
        let parsed = parse(source, "Dockerfile").unwrap();
        let messages: Vec<&str> = parsed.warnings.iter().map(|w| w.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "empty continuation line found in: RUN something     following     more",
                "empty continuation line found in: RUN another     thing",
            ]
        );
        assert_eq!(parsed.nodes[5].original, "RUN indented     comment");
    }

    #[test]
    fn directives_are_recorded() {
        let parsed = parse(
            "# syntax=docker/dockerfile:1\n# check=skip=all\nFROM a\n",
            "Dockerfile",
        )
        .unwrap();
        assert_eq!(
            parsed.directives.syntax.as_deref(),
            Some("docker/dockerfile:1")
        );
        assert_eq!(parsed.directives.check.as_deref(), Some("skip=all"));
        assert!(parsed.nodes[0].comments.is_empty());
    }
}
