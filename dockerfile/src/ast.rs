//! The parse tree: one [`Node`] per instruction, as BuildKit's parser builds it
//! before instructions get their types, and its dump format.

use super::diagnostic::Diagnostic;
use super::directives::Directives;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dockerfile {
    /// The file name used in diagnostics.
    pub file: String,
    /// The whole source text (for rendering diagnostics).
    pub source: String,
    /// The parser directives at the top.
    pub directives: Directives,
    /// The escape character in effect (`\` unless `# escape=` changed it).
    pub escape: char,
    /// The instructions, in order.
    pub nodes: Vec<Node>,
    /// Warnings found while parsing (e.g. empty continuation lines).
    pub warnings: Vec<Diagnostic>,
}

/// A heredoc attached to an instruction (`<<EOF` … `EOF`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heredoc {
    /// The terminator word, quotes removed.
    pub name: String,
    /// The file descriptor written before `<<` (`3<<EOF`), 0 when none.
    pub file_descriptor: u32,
    /// Whether variables in the content are expanded (the word was not quoted).
    pub expand: bool,
    /// `<<-`: leading tabs are stripped from the content lines.
    pub chomp: bool,
    /// The content lines, each with its newline, without the terminator line.
    pub content: String,
}

/// One instruction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// The instruction keyword as written, e.g. `RUN` or `run`.
    pub keyword: String,
    /// The `--name=value` flags before the arguments, as written.
    pub flags: Vec<String>,
    /// The arguments. `ENV` and `LABEL` give (key, value, separator) triples;
    /// exec form gives one per array element; shell form the rest of the line.
    pub args: Vec<String>,
    /// The instruction nested in an `ONBUILD`.
    pub child: Option<Box<Node>>,
    /// Whether the arguments were written in exec (JSON array) form.
    pub json: bool,
    /// The heredocs of `RUN`, `COPY` and `ADD`, in order.
    pub heredocs: Vec<Heredoc>,
    /// The instruction line after continuations were joined.
    pub original: String,
    /// The comment lines right before the instruction.
    pub comments: Vec<String>,
    /// The first line of the instruction (1-based).
    pub start_line: usize,
    /// The last line, heredoc bodies included.
    pub end_line: usize,
}

impl Node {
    /// The keyword in lowercase, the form instructions are matched on.
    pub fn name(&self) -> String {
        self.keyword.to_ascii_lowercase()
    }

    /// The node written as BuildKit's `Node.Dump` writes it, without the
    /// surrounding parentheses of the top level.
    pub fn dump(&self) -> String {
        let mut out = self.keyword.to_lowercase();
        if !self.flags.is_empty() {
            out.push_str(" [");
            for (i, flag) in self.flags.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(&go_quote(flag));
            }
            out.push(']');
        }
        for arg in &self.args {
            out.push(' ');
            out.push_str(&go_quote(arg));
        }
        if let Some(child) = &self.child {
            out.push_str(" (");
            out.push_str(&child.dump());
            out.push(')');
        }
        out.trim().to_string()
    }
}

impl Dockerfile {
    /// The whole tree in BuildKit's dump format: one `(instruction …)` per line,
    /// no newline after the last.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        for node in &self.nodes {
            let _ = writeln!(out, "({})", node.dump());
        }
        out.trim().to_string()
    }
}

/// Quotes `text` as Go's `strconv.Quote` does: `\"`, `\\`, the C escapes, and
/// `\x`/`\u`/`\U` for characters that are not printable.
pub fn go_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x0b' => out.push_str("\\v"),
            c if is_go_printable(c) => out.push(c),
            c if (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// An approximation of Go's `strconv.IsPrint`: letters, marks, numbers,
/// punctuation, symbols and the ASCII space. Controls, other spaces, format
/// characters, private-use and non-characters are not printable.
fn is_go_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let code = c as u32;
    !matches!(
        code,
        0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x180e | 0x200b..=0x200f | 0x202a..=0x202e
            | 0x2060..=0x206f | 0xd800..=0xf8ff | 0xfeff | 0xfff9..=0xfffb | 0xfffe | 0xffff
            | 0xe0001..=0xe007f | 0xf0000..=0x10ffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_like_go() {
        let cases = [
            ("plain", r#""plain""#),
            ("a\"b\\c", r#""a\"b\\c""#),
            ("tab\there\nnl", r#""tab\there\nnl""#),
            ("\x01\x7f", r#""\x01\x7f""#),
            ("한국어 ☺", r#""한국어 ☺""#),
            ("\u{a0}\u{200b}", r#""\u00a0\u200b""#),
        ];
        for (input, expected) in cases {
            assert_eq!(go_quote(input), expected, "{input:?}");
        }
    }
}
