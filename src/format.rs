//! `--format` for every listing and `inspect`: docker's formats (`table`,
//! `table TEMPLATE`, `json`, `TEMPLATE`) over rows that are JSON objects
//! keyed by docker's field names, and the part of Go's `text/template` that
//! docker users write: fields and nested fields, `$` variables, pipelines,
//! `if`/`else`/`range`/`with`, Go's builtins (`len`, `index`, `eq`…,
//! `print`, `printf`) and docker's (`json`, `join`, `split`, `upper`,
//! `lower`, `title`, `pad`, `truncate`).
//!
//! Written here rather than taken from the `gtmpl` crate: its lexer runs on a
//! thread that panics when the parser stops early, and its errors carry
//! neither positions nor Go's wording, which docker users grep for.

use serde_json::Value;
use std::io::{self, Write};

/// How deep blocks and parentheses may nest in a template.
const MAX_DEPTH: usize = 64;

/// What a `--format` flag asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputFormat {
    /// Aligned columns with one header line: the command's own columns, or
    /// the cells of `template` separated by tabs.
    Table {
        /// The row template after `table `, with `\t` and `\n` already tabs and newlines.
        template: Option<String>,
    },
    /// One JSON object per row and line.
    Json,
    /// A template printed once per row, with no header.
    Template(String),
}

impl OutputFormat {
    /// Reads a `--format` flag as docker does: none or `table` is the default
    /// table, `table TEMPLATE` a table of that template, `json` JSON lines,
    /// anything else a template; the two-character `\t` and `\n` become a
    /// tab and a newline. The template is parsed now so that a mistake is
    /// reported before any work.
    pub fn parse(flag: Option<&str>) -> Result<OutputFormat, FormatError> {
        let Some(flag) = flag else {
            return Ok(OutputFormat::Table { template: None });
        };
        let unescape = |text: &str| text.trim().replace("\\t", "\t").replace("\\n", "\n");
        let format = if flag.trim() == "table" {
            OutputFormat::Table { template: None }
        } else if let Some(rest) = flag
            .strip_prefix("table ")
            .filter(|rest| !rest.trim().is_empty())
        {
            OutputFormat::Table {
                template: Some(unescape(rest)),
            }
        } else if flag.trim() == "json" {
            OutputFormat::Json
        } else {
            OutputFormat::Template(unescape(flag))
        };
        match &format {
            OutputFormat::Table {
                template: Some(text),
            }
            | OutputFormat::Template(text) => {
                Template::parse(text)?;
            }
            _ => {}
        }
        Ok(format)
    }
}

/// A template that could not be parsed or executed, worded as Go's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// The template is not valid Go template text.
    #[error("template parsing error: template: :{line}: {message}")]
    Parse {
        /// The line of the template, from 1.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The template failed on a value, e.g. an unknown field.
    #[error("template: :{line}:{column}: executing \"\" at <{at}>: {message}")]
    Exec {
        /// The line of the template, from 1.
        line: usize,
        /// The byte offset in that line, from 0 as Go counts.
        column: usize,
        /// The action's text at fault, as `.Field`.
        at: String,
        /// What failed.
        message: String,
    },
}

/// Renders `template` against a row whose keys are the only fields there are,
/// as docker's formatter structs: an unknown field is an error
/// ("can't evaluate field X").
// The API other commands (stats, inspect's fields) call; the listings here go
// through `write_rows`.
#[allow(dead_code)]
pub fn render(template: &str, row: &Value) -> Result<String, FormatError> {
    Template::parse(template)?.execute(row, Fields::Strict)
}

/// Renders `template` against a document as `docker inspect -f` does (a
/// decoded JSON map): a missing key is `<no value>`, not an error.
pub fn render_document(template: &str, document: &Value) -> Result<String, FormatError> {
    Template::parse(template)?.execute(document, Fields::Lenient)
}

/// Writes `rows` in `format`. `columns` are (docker's header, field name)
/// pairs: the default table's columns, and the headers a `table TEMPLATE`
/// shows for the fields it names. Tables are aligned as docker's tabwriter
/// (cells padded to 10 characters or to the widest plus 3), header once;
/// `json` prints one object per line.
pub fn write_rows(
    out: &mut dyn Write,
    format: &OutputFormat,
    columns: &[(&str, &str)],
    rows: &[Value],
) -> io::Result<()> {
    let invalid = |e: FormatError| io::Error::new(io::ErrorKind::InvalidInput, e);
    match format {
        OutputFormat::Json => {
            for row in rows {
                writeln!(out, "{}", go_json(row))?;
            }
        }
        OutputFormat::Template(text) => {
            let template = Template::parse(text).map_err(invalid)?;
            for row in rows {
                writeln!(
                    out,
                    "{}",
                    template.execute(row, Fields::Strict).map_err(invalid)?
                )?;
            }
        }
        OutputFormat::Table { template } => {
            let text = match template {
                Some(text) => text.clone(),
                None => columns
                    .iter()
                    .map(|(_, field)| format!("{{{{.{field}}}}}"))
                    .collect::<Vec<_>>()
                    .join("\t"),
            };
            let template = Template::parse(&text).map_err(invalid)?;
            // The header is the template run on a row whose fields hold their
            // headers, as docker's formatter does: the given ones, else the
            // field's words in capitals (`LocalVolumes` is `LOCAL VOLUMES`).
            let mut header: serde_json::Map<String, Value> = rows
                .iter()
                .filter_map(Value::as_object)
                .flat_map(|row| row.keys())
                .map(|field| (field.clone(), Value::from(header_of(field))))
                .collect();
            for (title, field) in columns {
                header.insert(field.to_string(), Value::from(*title));
            }
            let mut lines = vec![
                template
                    .execute(&Value::Object(header), Fields::Strict)
                    .map_err(invalid)?,
            ];
            for row in rows {
                lines.push(template.execute(row, Fields::Strict).map_err(invalid)?);
            }
            out.write_all(tabwriter(&lines.join("\n")).as_bytes())?;
        }
    }
    Ok(())
}

/// docker's header for a field without one of its own: its words in capitals.
fn header_of(field: &str) -> String {
    let mut out = String::new();
    let mut previous_lower = false;
    for c in field.chars() {
        if c.is_uppercase() && previous_lower {
            out.push(' ');
        }
        previous_lower = c.is_lowercase() || c.is_ascii_digit();
        out.extend(c.to_uppercase());
    }
    out
}

/// Aligns tab-separated cells as Go's `tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)`
/// that docker uses: a cell ended by a tab is padded to the column's widest
/// cell plus 3, at least 10; the last cell of a line is not padded.
pub fn tabwriter(text: &str) -> String {
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    let mut widths: Vec<usize> = Vec::new();
    for cells in &lines {
        for (i, cell) in cells.iter().enumerate().take(cells.len().saturating_sub(1)) {
            let width = cell.chars().count();
            match widths.get_mut(i) {
                Some(w) => *w = (*w).max(width),
                None => widths.push(width),
            }
        }
    }
    let mut out = String::new();
    for cells in &lines {
        let last = cells.len().saturating_sub(1);
        for (i, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if i < last {
                let column = (widths[i] + 3).max(10);
                out.push_str(&" ".repeat(column - cell.chars().count()));
            }
        }
        out.push('\n');
    }
    out
}

/// JSON as Go's `json.Marshal` writes it: compact, keys sorted, and `<`,
/// `>`, `&` escaped (they occur only inside strings).
pub fn go_json(value: &Value) -> String {
    value
        .to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// Whether a field a row does not have is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fields {
    Strict,
    Lenient,
}

/// A value while a template runs: a JSON value, or Go's "no value" of a
/// missing map key.
#[derive(Debug, Clone, PartialEq)]
enum Val {
    NoValue,
    Json(Value),
}

impl Val {
    fn truthy(&self) -> bool {
        match self {
            Val::NoValue | Val::Json(Value::Null) => false,
            Val::Json(Value::Bool(b)) => *b,
            Val::Json(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0),
            Val::Json(Value::String(s)) => !s.is_empty(),
            Val::Json(Value::Array(a)) => !a.is_empty(),
            Val::Json(Value::Object(o)) => !o.is_empty(),
        }
    }

    /// Go's `%v`.
    fn print(&self) -> String {
        match self {
            Val::NoValue => "<no value>".into(),
            Val::Json(value) => print_json(value),
        }
    }

    fn json(&self) -> Value {
        match self {
            Val::NoValue => Value::Null,
            Val::Json(value) => value.clone(),
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Val::NoValue | Val::Json(Value::Null) => "interface {}",
            Val::Json(Value::Bool(_)) => "bool",
            Val::Json(Value::Number(n)) if n.is_f64() => "float64",
            Val::Json(Value::Number(_)) => "int",
            Val::Json(Value::String(_)) => "string",
            Val::Json(Value::Array(_)) => "[]interface {}",
            Val::Json(Value::Object(_)) => "map[string]interface {}",
        }
    }
}

/// Go's `%v` of a decoded JSON value: `[a b]`, `map[k:v]`, `<nil>`.
fn print_json(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(print_json).collect();
            format!("[{}]", items.join(" "))
        }
        Value::Object(map) => {
            let items: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}:{}", print_json(v)))
                .collect();
            format!("map[{}]", items.join(" "))
        }
    }
}

// ---------------------------------------------------------------------------
// Lexing and parsing.

/// Where a token starts: line from 1, byte column from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pos {
    line: usize,
    column: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// `.A.B` (empty for `.`); `attached` when it follows `)` directly.
    Field {
        path: Vec<String>,
        attached: bool,
    },
    /// `$name.A.B` (`$` alone is the root).
    Variable {
        name: String,
        path: Vec<String>,
    },
    Ident(String),
    Str(String),
    Number(Value),
    Pipe,
    Open,
    Close,
    Declare,
    Comma,
}

#[derive(Debug, Clone, PartialEq)]
enum Arg {
    Field(Vec<String>),
    Variable(String, Vec<String>),
    Function(String),
    Literal(Value),
    Nil,
    Pipeline(Box<Pipeline>, Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
struct Command {
    args: Vec<(Arg, Pos)>,
}

#[derive(Debug, Clone, PartialEq, Default)]
struct Pipeline {
    /// `$a` or `$k, $v` before `:=`.
    declare: Vec<String>,
    commands: Vec<Command>,
    text: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Action(Pipeline, Pos),
    If(Pipeline, Pos, Vec<Node>, Vec<Node>),
    Range(Pipeline, Pos, Vec<Node>, Vec<Node>),
    With(Pipeline, Pos, Vec<Node>, Vec<Node>),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq)]
struct Template {
    nodes: Vec<Node>,
}

/// One `{{…}}` after lexing.
struct Action {
    tokens: Vec<(Token, Pos)>,
    pos: Pos,
    text: String,
}

enum Piece {
    Text(String),
    Action(Action),
}

fn parse_error(pos: Pos, message: impl Into<String>) -> FormatError {
    FormatError::Parse {
        line: pos.line,
        message: message.into(),
    }
}

/// Splits the template into text and lexed actions, honouring `{{-` and `-}}`.
fn lex(source: &str) -> Result<Vec<Piece>, FormatError> {
    let mut pieces = Vec::new();
    let mut i = 0;
    let bytes = source.as_bytes();
    let pos_at = |at: usize| {
        let before = &source[..at];
        let line = before.matches('\n').count() + 1;
        let column = at - before.rfind('\n').map_or(0, |n| n + 1);
        Pos { line, column }
    };
    let mut trim_next = false;
    while i < source.len() {
        let Some(found) = source[i..].find("{{") else {
            let mut text = &source[i..];
            if trim_next {
                text = text.trim_start();
            }
            pieces.push(Piece::Text(text.to_string()));
            break;
        };
        let open = i + found;
        let mut text = &source[i..open];
        if trim_next {
            text = text.trim_start();
        }
        let mut j = open + 2;
        if source[j..].starts_with("- ") {
            text = text.trim_end();
            j += 2;
        }
        pieces.push(Piece::Text(text.to_string()));
        let start = j;
        // A comment: `{{/* … */}}`.
        if source[j..].starts_with("/*") {
            let Some(end) = source[j..].find("*/") else {
                return Err(parse_error(pos_at(open), "unclosed comment"));
            };
            j += end + 2;
            trim_next = source[j..].starts_with(" -}}");
            if trim_next {
                j += 1;
            }
            if !source[j..].starts_with("}}") {
                return Err(parse_error(
                    pos_at(open),
                    "comment ends before closing delimiter",
                ));
            }
            i = j + 2;
            continue;
        }
        let mut tokens = Vec::new();
        let mut last_close = false;
        loop {
            let Some(&c) = bytes.get(j) else {
                return Err(parse_error(pos_at(open), "unclosed action"));
            };
            let here = pos_at(j);
            if source[j..].starts_with("}}") {
                trim_next = false;
                i = j + 2;
                break;
            }
            if source[j..].starts_with(" -}}") {
                trim_next = true;
                i = j + 4;
                break;
            }
            let after_close = last_close;
            last_close = false;
            match c {
                b' ' | b'\t' | b'\r' | b'\n' => j += 1,
                b'|' => {
                    tokens.push((Token::Pipe, here));
                    j += 1;
                }
                b'(' => {
                    tokens.push((Token::Open, here));
                    j += 1;
                }
                b')' => {
                    tokens.push((Token::Close, here));
                    last_close = true;
                    j += 1;
                }
                b',' => {
                    tokens.push((Token::Comma, here));
                    j += 1;
                }
                b':' if source[j..].starts_with(":=") => {
                    tokens.push((Token::Declare, here));
                    j += 2;
                }
                b'"' | b'`' => {
                    let (text, len) = lex_string(&source[j..])
                        .ok_or_else(|| parse_error(here, "unterminated quoted string"))?;
                    tokens.push((Token::Str(text), here));
                    j += len;
                }
                b'.' if !bytes.get(j + 1).is_some_and(u8::is_ascii_digit) => {
                    let len = word_len(&source[j..], true);
                    let path = split_path(&source[j..j + len])
                        .ok_or_else(|| parse_error(here, "bad character in field name"))?;
                    tokens.push((
                        Token::Field {
                            path,
                            attached: after_close,
                        },
                        here,
                    ));
                    j += len;
                }
                b'$' => {
                    let len = 1 + source[j + 1..]
                        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
                        .unwrap_or(source.len() - j - 1);
                    let word = &source[j + 1..j + len];
                    let (name, rest) = match word.find('.') {
                        Some(dot) => (&word[..dot], &word[dot..]),
                        None => (word, ""),
                    };
                    let path = if rest.is_empty() {
                        Vec::new()
                    } else {
                        split_path(rest)
                            .ok_or_else(|| parse_error(here, "bad character in field name"))?
                    };
                    tokens.push((
                        Token::Variable {
                            name: format!("${name}"),
                            path,
                        },
                        here,
                    ));
                    j += len;
                }
                b'-' | b'+' | b'0'..=b'9' | b'.' => {
                    let len = word_len(&source[j..], true);
                    let word = &source[j..j + len];
                    let number = word
                        .parse::<i64>()
                        .map(Value::from)
                        .ok()
                        .or_else(|| word.parse::<f64>().ok().map(Value::from))
                        .filter(|v| !v.is_null())
                        .ok_or_else(|| parse_error(here, format!("bad number syntax: {word:?}")))?;
                    tokens.push((Token::Number(number), here));
                    j += len;
                }
                c if c.is_ascii_alphabetic() || c == b'_' => {
                    let len = word_len(&source[j..], false);
                    tokens.push((Token::Ident(source[j..j + len].to_string()), here));
                    j += len;
                }
                _ => {
                    let ch = source[j..].chars().next().unwrap_or('?');
                    return Err(parse_error(here, format!("unexpected {ch:?} in command")));
                }
            }
        }
        let end = i - if trim_next { 4 } else { 2 };
        pieces.push(Piece::Action(Action {
            tokens,
            pos: pos_at(open),
            text: source[start..end].trim().to_string(),
        }));
    }
    Ok(pieces)
}

/// The length of a word: letters, digits, `_`, and `.` when `dots`.
fn word_len(text: &str, dots: bool) -> usize {
    text.char_indices()
        .skip(1)
        .find(|&(_, c)| !(c.is_alphanumeric() || c == '_' || (dots && c == '.')))
        .map_or(text.len(), |(i, _)| i)
}

/// `.A.B` into `["A", "B"]`; `.` into `[]`.
fn split_path(text: &str) -> Option<Vec<String>> {
    let fields = text.strip_prefix('.')?;
    if fields.is_empty() {
        return Some(Vec::new());
    }
    fields
        .split('.')
        .map(|f| (!f.is_empty()).then(|| f.to_string()))
        .collect()
}

/// A Go string literal at the start of `text`: its value and length.
fn lex_string(text: &str) -> Option<(String, usize)> {
    let mut chars = text.char_indices();
    let (_, quote) = chars.next()?;
    let mut value = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            c if c == quote => return Some((value, i + 1)),
            '\\' if quote == '"' => {
                let (_, escaped) = chars.next()?;
                value.push(match escaped {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    '0' => '\0',
                    other => other,
                });
            }
            '\n' if quote == '"' => return None,
            c => value.push(c),
        }
    }
    None
}

impl Template {
    fn parse(source: &str) -> Result<Template, FormatError> {
        let pieces = lex(source)?;
        let mut iter = pieces.into_iter().peekable();
        let (nodes, end) = parse_list(&mut iter, 0)?;
        match end {
            Some(Close::End(pos)) => return Err(parse_error(pos, "unexpected {{end}}")),
            Some(Close::Else(pos) | Close::ElseIf(_, pos)) => {
                return Err(parse_error(pos, "unexpected {{else}}"));
            }
            None => {}
        }
        Ok(Template { nodes })
    }

    fn execute(&self, dot: &Value, fields: Fields) -> Result<String, FormatError> {
        let mut state = State {
            fields,
            vars: vec![("$".to_string(), Val::Json(dot.clone()))],
            out: String::new(),
        };
        state.walk(&self.nodes, &Val::Json(dot.clone()))?;
        Ok(state.out)
    }
}

type Pieces = std::iter::Peekable<std::vec::IntoIter<Piece>>;

/// Nodes up to a closing keyword, and that keyword with its position.
type List = (Vec<Node>, Option<Close>);

/// What closed a list of nodes.
enum Close {
    End(Pos),
    Else(Pos),
    /// `{{else if PIPELINE}}`: a nested `if` that shares the `{{end}}`.
    ElseIf(Pipeline, Pos),
}

/// Parses nodes until `{{end}}` or `{{else}}` (returned with its position) or
/// the end of the template (`None`).
fn parse_list(pieces: &mut Pieces, depth: usize) -> Result<List, FormatError> {
    let mut nodes = Vec::new();
    while let Some(piece) = pieces.next() {
        let action = match piece {
            Piece::Text(text) => {
                if !text.is_empty() {
                    nodes.push(Node::Text(text));
                }
                continue;
            }
            Piece::Action(action) => action,
        };
        let keyword = match action.tokens.first() {
            Some((Token::Ident(word), _)) => word.as_str(),
            _ => "",
        };
        match keyword {
            "else" if matches!(action.tokens.get(1), Some((Token::Ident(w), _)) if w == "if") => {
                let text = action.text["else".len()..].trim()["if".len()..]
                    .trim()
                    .to_string();
                let pipeline = parse_pipeline(&action.tokens[2..], text, action.pos, depth)?;
                if pipeline.commands.is_empty() {
                    return Err(parse_error(action.pos, "missing value for if"));
                }
                return Ok((nodes, Some(Close::ElseIf(pipeline, action.pos))));
            }
            "end" | "else" => {
                if action.tokens.len() > 1 {
                    return Err(parse_error(
                        action.pos,
                        format!("unexpected {:?} in {keyword}", action.text),
                    ));
                }
                let end = if keyword == "end" {
                    Close::End(action.pos)
                } else {
                    Close::Else(action.pos)
                };
                return Ok((nodes, Some(end)));
            }
            "if" | "range" | "with" => {
                if depth >= MAX_DEPTH {
                    return Err(parse_error(action.pos, "blocks nest too deeply"));
                }
                let text = action.text[keyword.len()..].trim().to_string();
                let pipeline = parse_pipeline(&action.tokens[1..], text, action.pos, depth)?;
                if pipeline.commands.is_empty() {
                    return Err(parse_error(
                        action.pos,
                        format!("missing value for {keyword}"),
                    ));
                }
                let (body, otherwise) = parse_branches(pieces, depth + 1, action.pos)?;
                nodes.push(match keyword {
                    "if" => Node::If(pipeline, action.pos, body, otherwise),
                    "range" => Node::Range(pipeline, action.pos, body, otherwise),
                    _ => Node::With(pipeline, action.pos, body, otherwise),
                });
            }
            "define" | "template" | "block" | "break" | "continue" => {
                return Err(parse_error(
                    action.pos,
                    format!("{{{{{keyword}}}}} is not supported by berth's templates"),
                ));
            }
            _ => {
                let pipeline = parse_pipeline(&action.tokens, action.text, action.pos, depth)?;
                if pipeline.commands.is_empty() {
                    return Err(parse_error(action.pos, "missing value for command"));
                }
                nodes.push(Node::Action(pipeline, action.pos));
            }
        }
    }
    Ok((nodes, None))
}

/// The body of a block and its `else` part, up to its `{{end}}`; an
/// `{{else if}}` becomes an `if` in the `else` part.
fn parse_branches(
    pieces: &mut Pieces,
    depth: usize,
    pos: Pos,
) -> Result<(Vec<Node>, Vec<Node>), FormatError> {
    if depth >= MAX_DEPTH {
        return Err(parse_error(pos, "blocks nest too deeply"));
    }
    let (body, end) = parse_list(pieces, depth)?;
    match end {
        Some(Close::End(_)) => Ok((body, Vec::new())),
        Some(Close::Else(pos)) => match parse_list(pieces, depth)? {
            (nodes, Some(Close::End(_))) => Ok((body, nodes)),
            _ => Err(parse_error(pos, "unexpected EOF")),
        },
        Some(Close::ElseIf(pipeline, pos)) => {
            let (inner, otherwise) = parse_branches(pieces, depth + 1, pos)?;
            Ok((body, vec![Node::If(pipeline, pos, inner, otherwise)]))
        }
        None => Err(parse_error(pos, "unexpected EOF")),
    }
}

fn parse_pipeline(
    tokens: &[(Token, Pos)],
    text: String,
    pos: Pos,
    depth: usize,
) -> Result<Pipeline, FormatError> {
    let mut declare = Vec::new();
    let mut rest = tokens;
    if let Some(at) = tokens.iter().position(|(t, _)| *t == Token::Declare) {
        for (i, (token, p)) in tokens[..at].iter().enumerate() {
            match token {
                Token::Variable { name, path } if path.is_empty() && i % 2 == 0 => {
                    declare.push(name.clone())
                }
                Token::Comma if i % 2 == 1 => {}
                _ => return Err(parse_error(*p, "bad variable declaration")),
            }
        }
        if declare.is_empty() || declare.len() > 2 {
            return Err(parse_error(pos, "bad variable declaration"));
        }
        rest = &tokens[at + 1..];
    }
    let mut commands = Vec::new();
    let mut i = 0;
    let mut command = Command { args: Vec::new() };
    while i < rest.len() {
        let (token, p) = &rest[i];
        i += 1;
        let arg = match token {
            Token::Pipe => {
                if command.args.is_empty() {
                    return Err(parse_error(*p, "missing command"));
                }
                commands.push(std::mem::replace(
                    &mut command,
                    Command { args: Vec::new() },
                ));
                continue;
            }
            Token::Field { path, .. } => Arg::Field(path.clone()),
            Token::Variable { name, path } => Arg::Variable(name.clone(), path.clone()),
            Token::Ident(word) => match word.as_str() {
                "true" => Arg::Literal(Value::Bool(true)),
                "false" => Arg::Literal(Value::Bool(false)),
                "nil" => Arg::Nil,
                name if FUNCTIONS.contains(&name) => Arg::Function(name.to_string()),
                name => {
                    return Err(parse_error(*p, format!("function {name:?} not defined")));
                }
            },
            Token::Str(text) => Arg::Literal(Value::from(text.as_str())),
            Token::Number(n) => Arg::Literal(n.clone()),
            Token::Open => {
                if depth >= MAX_DEPTH {
                    return Err(parse_error(*p, "parentheses nest too deeply"));
                }
                let mut level = 1;
                let start = i;
                while i < rest.len() && level > 0 {
                    match rest[i].0 {
                        Token::Open => level += 1,
                        Token::Close => level -= 1,
                        _ => {}
                    }
                    i += 1;
                }
                if level > 0 {
                    return Err(parse_error(*p, "unclosed left paren"));
                }
                let inner = parse_pipeline(&rest[start..i - 1], String::new(), *p, depth + 1)?;
                let mut path = Vec::new();
                while let Some((
                    Token::Field {
                        path: more,
                        attached: true,
                    },
                    _,
                )) = rest.get(i)
                {
                    path.extend(more.iter().cloned());
                    i += 1;
                }
                Arg::Pipeline(Box::new(inner), path)
            }
            Token::Close => return Err(parse_error(*p, "unexpected right paren")),
            Token::Declare | Token::Comma => {
                return Err(parse_error(*p, "unexpected declaration"));
            }
        };
        command.args.push((arg, *p));
    }
    if !command.args.is_empty() {
        commands.push(command);
    } else if !commands.is_empty() {
        return Err(parse_error(pos, "missing command"));
    }
    Ok(Pipeline {
        declare,
        commands,
        text,
    })
}

// ---------------------------------------------------------------------------
// Execution.

const FUNCTIONS: &[&str] = &[
    "and", "or", "not", "len", "index", "eq", "ne", "lt", "le", "gt", "ge", "print", "printf",
    "println", "json", "join", "split", "upper", "lower", "title", "pad", "truncate",
];

struct State {
    fields: Fields,
    vars: Vec<(String, Val)>,
    out: String,
}

impl State {
    fn walk(&mut self, nodes: &[Node], dot: &Val) -> Result<(), FormatError> {
        for node in nodes {
            match node {
                Node::Text(text) => self.out.push_str(text),
                Node::Action(pipeline, pos) => {
                    let value = self.pipeline(pipeline, *pos, dot)?;
                    if pipeline.declare.is_empty() {
                        self.out.push_str(&value.print());
                    } else {
                        self.declare(&pipeline.declare, None, value);
                    }
                }
                Node::If(pipeline, pos, body, otherwise) => {
                    let mark = self.vars.len();
                    let value = self.pipeline(pipeline, *pos, dot)?;
                    self.declare(&pipeline.declare, None, value.clone());
                    let branch = if value.truthy() { body } else { otherwise };
                    self.walk(branch, dot)?;
                    self.vars.truncate(mark);
                }
                Node::With(pipeline, pos, body, otherwise) => {
                    let mark = self.vars.len();
                    let value = self.pipeline(pipeline, *pos, dot)?;
                    self.declare(&pipeline.declare, None, value.clone());
                    if value.truthy() {
                        self.walk(body, &value)?;
                    } else {
                        self.walk(otherwise, dot)?;
                    }
                    self.vars.truncate(mark);
                }
                Node::Range(pipeline, pos, body, otherwise) => {
                    let value = self.pipeline(pipeline, *pos, dot)?;
                    let items: Vec<(Value, Value)> = match value.json() {
                        Value::Array(items) => items
                            .into_iter()
                            .enumerate()
                            .map(|(i, v)| (Value::from(i), v))
                            .collect(),
                        Value::Object(map) => {
                            map.into_iter().map(|(k, v)| (Value::from(k), v)).collect()
                        }
                        Value::Null => Vec::new(),
                        other => {
                            return Err(exec_error(
                                *pos,
                                &pipeline.text,
                                format!("range can't iterate over {}", Val::Json(other).print()),
                            ));
                        }
                    };
                    if items.is_empty() {
                        self.walk(otherwise, dot)?;
                    }
                    for (key, item) in items {
                        let mark = self.vars.len();
                        let item = Val::Json(item);
                        self.declare(&pipeline.declare, Some(key), item.clone());
                        self.walk(body, &item)?;
                        self.vars.truncate(mark);
                    }
                }
            }
        }
        Ok(())
    }

    /// Binds `$v` (or `$k, $v` in a range) to a value.
    fn declare(&mut self, names: &[String], key: Option<Value>, value: Val) {
        match (names, key) {
            ([k, v], Some(key)) => {
                self.vars.push((k.clone(), Val::Json(key)));
                self.vars.push((v.clone(), value));
            }
            ([v], _) | ([_, v], None) => self.vars.push((v.clone(), value)),
            _ => {}
        }
    }

    fn pipeline(&mut self, pipeline: &Pipeline, pos: Pos, dot: &Val) -> Result<Val, FormatError> {
        let mut piped: Option<Val> = None;
        for command in &pipeline.commands {
            piped = Some(self.command(command, pos, dot, piped)?);
        }
        Ok(piped.unwrap_or(Val::NoValue))
    }

    fn command(
        &mut self,
        command: &Command,
        pos: Pos,
        dot: &Val,
        piped: Option<Val>,
    ) -> Result<Val, FormatError> {
        let Some(((first, first_pos), rest)) = command.args.split_first() else {
            return Err(exec_error(pos, "", "empty command"));
        };
        if let Arg::Function(name) = first {
            let mut args = Vec::new();
            for (arg, p) in rest {
                args.push(self.arg(arg, *p, dot)?);
            }
            args.extend(piped);
            return call(name, &args).map_err(|message| {
                exec_error(*first_pos, name, format!("error calling {name}: {message}"))
            });
        }
        if !rest.is_empty() || piped.is_some() {
            return Err(exec_error(
                *first_pos,
                &describe(first),
                format!("can't give argument to non-function {}", describe(first)),
            ));
        }
        self.arg(first, *first_pos, dot)
    }

    fn arg(&mut self, arg: &Arg, pos: Pos, dot: &Val) -> Result<Val, FormatError> {
        match arg {
            Arg::Field(path) => self.walk_path(dot.clone(), path, pos, ""),
            Arg::Variable(name, path) => {
                let Some((_, value)) = self.vars.iter().rev().find(|(n, _)| n == name) else {
                    return Err(exec_error(pos, name, format!("undefined variable: {name}")));
                };
                self.walk_path(value.clone(), path, pos, name)
            }
            Arg::Function(name) => call(name, &[]).map_err(|message| {
                exec_error(pos, name, format!("error calling {name}: {message}"))
            }),
            Arg::Literal(value) => Ok(Val::Json(value.clone())),
            Arg::Nil => Ok(Val::Json(Value::Null)),
            Arg::Pipeline(pipeline, path) => {
                let value = self.pipeline(pipeline, pos, dot)?;
                self.walk_path(value, path, pos, "(…)")
            }
        }
    }

    fn walk_path(
        &self,
        mut value: Val,
        path: &[String],
        pos: Pos,
        base: &str,
    ) -> Result<Val, FormatError> {
        for (i, field) in path.iter().enumerate() {
            let at = format!("{base}.{}", path[..=i].join("."));
            value = match &value {
                Val::Json(Value::Object(map)) => match map.get(field) {
                    Some(next) => Val::Json(next.clone()),
                    None if self.fields == Fields::Lenient => Val::NoValue,
                    None => {
                        return Err(exec_error(
                            pos,
                            &at,
                            format!("can't evaluate field {field} in type {}", value.type_name()),
                        ));
                    }
                },
                Val::NoValue | Val::Json(Value::Null) => {
                    return Err(exec_error(
                        pos,
                        &at,
                        format!("nil pointer evaluating interface {{}}.{field}"),
                    ));
                }
                other => {
                    return Err(exec_error(
                        pos,
                        &at,
                        format!("can't evaluate field {field} in type {}", other.type_name()),
                    ));
                }
            };
        }
        Ok(value)
    }
}

fn describe(arg: &Arg) -> String {
    match arg {
        Arg::Field(path) => format!(".{}", path.join(".")),
        Arg::Variable(name, path) if path.is_empty() => name.clone(),
        Arg::Variable(name, path) => format!("{name}.{}", path.join(".")),
        Arg::Function(name) => name.clone(),
        Arg::Literal(value) => value.to_string(),
        Arg::Nil => "nil".into(),
        Arg::Pipeline(..) => "(…)".into(),
    }
}

fn exec_error(pos: Pos, at: &str, message: impl Into<String>) -> FormatError {
    FormatError::Exec {
        line: pos.line,
        column: pos.column,
        at: at.to_string(),
        message: message.into(),
    }
}

/// Calls a builtin; the error is Go's text after "error calling NAME: ".
fn call(name: &str, args: &[Val]) -> Result<Val, String> {
    let want = |n: usize| {
        if args.len() == n {
            Ok(())
        } else {
            Err(format!(
                "wrong number of args for {name}: want {n} got {}",
                args.len()
            ))
        }
    };
    let text = |i: usize| -> Result<String, String> {
        match &args[i] {
            Val::Json(Value::String(s)) => Ok(s.clone()),
            other => Err(format!(
                "wrong type for value; expected string; got {}",
                other.type_name()
            )),
        }
    };
    let int = |i: usize| -> Result<i64, String> {
        match &args[i] {
            Val::Json(Value::Number(n)) => n
                .as_i64()
                .ok_or_else(|| format!("expected integer; found {n}")),
            other => Err(format!("expected integer; found {}", other.print())),
        }
    };
    let string = |s: String| Ok(Val::Json(Value::String(s)));
    match name {
        "json" => {
            want(1)?;
            string(go_json(&args[0].json()))
        }
        "upper" => {
            want(1)?;
            string(text(0)?.to_uppercase())
        }
        "lower" => {
            want(1)?;
            string(text(0)?.to_lowercase())
        }
        "title" => {
            want(1)?;
            let mut out = String::new();
            let mut start = true;
            for c in text(0)?.chars() {
                if start {
                    out.extend(c.to_uppercase());
                } else {
                    out.push(c);
                }
                start = !c.is_alphanumeric();
            }
            string(out)
        }
        "join" => {
            want(2)?;
            let sep = text(1)?;
            match args[0].json() {
                Value::Array(items) => {
                    string(items.iter().map(print_json).collect::<Vec<_>>().join(&sep))
                }
                other => Err(format!(
                    "wrong type for value; expected []string; got {}",
                    Val::Json(other).type_name()
                )),
            }
        }
        "split" => {
            want(2)?;
            let (s, sep) = (text(0)?, text(1)?);
            let parts: Vec<Value> = if sep.is_empty() {
                s.chars().map(|c| Value::from(c.to_string())).collect()
            } else {
                s.split(sep.as_str()).map(Value::from).collect()
            };
            Ok(Val::Json(Value::Array(parts)))
        }
        "pad" => {
            want(3)?;
            let (left, right) = (int(1)?.clamp(0, 4096), int(2)?.clamp(0, 4096));
            string(format!(
                "{}{}{}",
                " ".repeat(left as usize),
                text(0)?,
                " ".repeat(right as usize)
            ))
        }
        "truncate" => {
            want(2)?;
            let n = int(1)?.max(0) as usize;
            string(text(0)?.chars().take(n).collect())
        }
        "len" => {
            want(1)?;
            match args[0].json() {
                Value::String(s) => Ok(Val::Json(Value::from(s.len()))),
                Value::Array(a) => Ok(Val::Json(Value::from(a.len()))),
                Value::Object(o) => Ok(Val::Json(Value::from(o.len()))),
                _ => Err(format!("len of type {}", args[0].type_name())),
            }
        }
        "index" => {
            let Some((first, keys)) = args.split_first() else {
                return Err("wrong number of args for index: want at least 1 got 0".into());
            };
            let mut value = first.clone();
            for key in keys {
                value = match (value.json(), key.json()) {
                    (Value::Array(items), Value::Number(n)) => {
                        let i = n.as_u64().ok_or("index out of range")? as usize;
                        Val::Json(
                            items
                                .get(i)
                                .cloned()
                                .ok_or(format!("index out of range: {i}"))?,
                        )
                    }
                    (Value::Object(map), Value::String(k)) => {
                        map.get(&k).cloned().map_or(Val::NoValue, Val::Json)
                    }
                    (Value::Null, _) => Val::NoValue,
                    (_, k) => {
                        return Err(format!(
                            "can't index item of type {} with {}",
                            value.type_name(),
                            print_json(&k)
                        ));
                    }
                };
            }
            Ok(value)
        }
        "not" => {
            want(1)?;
            Ok(Val::Json(Value::Bool(!args[0].truthy())))
        }
        "and" => Ok(args
            .iter()
            .find(|a| !a.truthy())
            .or(args.last())
            .cloned()
            .unwrap_or(Val::NoValue)),
        "or" => Ok(args
            .iter()
            .find(|a| a.truthy())
            .or(args.last())
            .cloned()
            .unwrap_or(Val::NoValue)),
        "eq" | "ne" => {
            let Some((first, rest)) = args.split_first() else {
                return Err("missing argument for comparison".to_string());
            };
            let first = first.json();
            let equal = rest.iter().any(|v| same(&first, &v.json()));
            Ok(Val::Json(Value::Bool(if name == "eq" {
                equal
            } else {
                !equal
            })))
        }
        "lt" | "le" | "gt" | "ge" => {
            want(2)?;
            let ordering = match (args[0].json(), args[1].json()) {
                (Value::Number(a), Value::Number(b)) => a
                    .as_f64()
                    .zip(b.as_f64())
                    .and_then(|(a, b)| a.partial_cmp(&b)),
                (Value::String(a), Value::String(b)) => Some(a.cmp(&b)),
                _ => None,
            }
            .ok_or("incompatible types for comparison")?;
            let result = match name {
                "lt" => ordering.is_lt(),
                "le" => ordering.is_le(),
                "gt" => ordering.is_gt(),
                _ => ordering.is_ge(),
            };
            Ok(Val::Json(Value::Bool(result)))
        }
        "print" => {
            // Go's Sprint: a space between operands when neither is a string.
            let mut out = String::new();
            for (i, arg) in args.iter().enumerate() {
                let is_string = |v: &Val| matches!(v, Val::Json(Value::String(_)));
                if i > 0 && !is_string(arg) && !is_string(&args[i - 1]) {
                    out.push(' ');
                }
                out.push_str(&arg.print());
            }
            string(out)
        }
        "println" => {
            let parts: Vec<String> = args.iter().map(Val::print).collect();
            string(parts.join(" ") + "\n")
        }
        "printf" => {
            let Some((format, rest)) = args.split_first() else {
                return Err("wrong number of args for printf: want at least 1 got 0".into());
            };
            let Val::Json(Value::String(format)) = format else {
                return Err("wrong type for value; expected string".into());
            };
            string(printf(format, rest))
        }
        other => Err(format!("function {other:?} not defined")),
    }
}

/// Equality as Go's `eq` on decoded JSON: numbers by value.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// Go's `fmt.Sprintf` for the verbs templates use: `%s %v %d %q %t %f %x %%`,
/// with `-`, `0` and width/precision.
fn printf(format: &str, args: &[Val]) -> String {
    let mut out = String::new();
    let mut chars = format.chars().peekable();
    let mut next = args.iter();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut left = false;
        let mut zero = false;
        while let Some(&flag) = chars.peek() {
            match flag {
                '-' => left = true,
                '0' => zero = true,
                '+' | ' ' | '#' => {}
                _ => break,
            }
            chars.next();
        }
        let mut width = String::new();
        while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
            width.push(d);
            chars.next();
        }
        let mut precision: Option<usize> = None;
        if chars.peek() == Some(&'.') {
            chars.next();
            let mut digits = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                digits.push(d);
                chars.next();
            }
            precision = Some(digits.parse().unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = next.next() else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        let value = arg.json();
        let text = match (verb, &value) {
            ('d', Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
            ('f' | 'g' | 'e', Value::Number(n)) => {
                let f = n.as_f64().unwrap_or(0.0);
                format!("{f:.*}", precision.unwrap_or(6).min(4096))
            }
            ('x', Value::Number(n)) if n.is_i64() => format!("{:x}", n.as_i64().unwrap_or(0)),
            ('x', Value::String(s)) => s.bytes().map(|b| format!("{b:02x}")).collect(),
            ('q', Value::String(s)) => format!("{s:?}"),
            ('t', Value::Bool(b)) => b.to_string(),
            ('s' | 'v', _) => {
                let text = arg.print();
                match precision {
                    Some(p) => text.chars().take(p).collect(),
                    None => text,
                }
            }
            _ => format!("%!{verb}({}={})", arg.type_name(), arg.print()),
        };
        let width: usize = width.parse().unwrap_or(0).min(4096);
        let len = text.chars().count();
        if len >= width {
            out.push_str(&text);
        } else if left {
            out.push_str(&text);
            out.push_str(&" ".repeat(width - len));
        } else {
            let fill = if zero { "0" } else { " " };
            out.push_str(&fill.repeat(width - len));
            out.push_str(&text);
        }
    }
    for extra in next {
        out.push_str(&format!(
            "%!(EXTRA {}={})",
            extra.type_name(),
            extra.print()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row() -> Value {
        json!({
            "ID": "abc123",
            "Repository": "busybox",
            "Tag": "latest",
            "Size": 4261000,
            "Labels": {"b": "2", "a": "1"},
            "Names": ["one", "two"],
            "Empty": "",
            "Nothing": [],
            "Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]},
            "State": {"Status": "running", "Pid": 42, "Running": true},
        })
    }

    #[test]
    fn templates_render_like_go() {
        for (template, want) in [
            ("{{.ID}}", "abc123"),
            ("{{ .Repository }}:{{.Tag}}", "busybox:latest"),
            ("{{.State.Status}} {{.State.Pid}}", "running 42"),
            ("{{.Names}}", "[one two]"),
            ("{{.Labels}}", "map[a:1 b:2]"),
            ("{{json .Names}}", r#"["one","two"]"#),
            (
                "{{json .State}}",
                r#"{"Pid":42,"Running":true,"Status":"running"}"#,
            ),
            ("{{.Repository | upper}}", "BUSYBOX"),
            ("{{upper .Repository}}", "BUSYBOX"),
            ("{{lower \"ABC\"}}", "abc"),
            ("{{title \"hello world\"}}", "Hello World"),
            ("{{join .Names \", \"}}", "one, two"),
            ("{{split \"a:b\" \":\"}}", "[a b]"),
            ("{{truncate .ID 3}}", "abc"),
            ("{{pad .Tag 1 2}}|", " latest  |"),
            ("{{len .Names}}", "2"),
            ("{{index .Names 1}}", "two"),
            ("{{index .Labels \"a\"}}", "1"),
            ("{{if .State.Running}}up{{else}}down{{end}}", "up"),
            ("{{if .Empty}}set{{else}}empty{{end}}", "empty"),
            (
                "{{if .Empty}}a{{else if eq .Tag \"x\"}}b{{else if .State.Running}}c{{else}}d{{end}}",
                "c",
            ),
            ("{{if .Empty}}a{{else if .Empty}}b{{end}}", ""),
            ("{{if eq .Tag \"latest\"}}L{{end}}", "L"),
            ("{{if ne .State.Pid 42}}x{{else}}pid{{end}}", "pid"),
            ("{{range .Names}}[{{.}}]{{end}}", "[one][two]"),
            (
                "{{range $i, $n := .Names}}{{$i}}={{$n}} {{end}}",
                "0=one 1=two ",
            ),
            ("{{range $k, $v := .Labels}}{{$k}}{{$v}}{{end}}", "a1b2"),
            (
                "{{range $p, $c := .Ports}}{{$p}}->{{(index $c 0).HostPort}}{{end}}",
                "80/tcp->8080",
            ),
            ("{{with .State}}{{.Status}}{{end}}", "running"),
            ("{{range .Nothing}}x{{else}}none{{end}}", "none"),
            ("{{printf \"%-8s|%5d\" .Tag .State.Pid}}", "latest  |   42"),
            ("{{printf \"%.2f\" 1.5}}", "1.50"),
            ("{{print .Tag 1 2}}", "latest1 2"),
            ("{{$.ID}}", "abc123"),
            ("a {{- \" b \" -}} c", "a b c"),
            ("{{/* a comment */}}x", "x"),
            ("{{json .}}", ""),
        ] {
            let got = render(template, &row());
            if template == "{{json .}}" {
                assert!(got.unwrap().starts_with("{\"Empty\":\"\""), "{template}");
                continue;
            }
            assert_eq!(got.as_deref(), Ok(want), "{template}");
        }
    }

    #[test]
    fn unknown_fields_fail_as_docker_says() {
        let err = render("{{.Nope}}", &row()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "template: :1:2: executing \"\" at <.Nope>: can't evaluate field Nope in type map[string]interface {}"
        );
        let err = render("x\n {{.State.Nope}}", &row()).unwrap_err();
        assert!(
            err.to_string().starts_with(
                "template: :2:3: executing \"\" at <.State.Nope>: can't evaluate field Nope"
            ),
            "{err}"
        );
        // inspect's documents are maps: a missing key prints "<no value>".
        assert_eq!(
            render_document("{{.Nope}}", &row()).as_deref(),
            Ok("<no value>")
        );
        assert!(
            render_document("{{.Nope.Deeper}}", &row())
                .unwrap_err()
                .to_string()
                .contains("nil pointer evaluating interface {}.Deeper")
        );
    }

    #[test]
    fn bad_templates_fail_to_parse() {
        for (template, message) in [
            ("{{.ID", "unclosed action"),
            ("{{nosuch .ID}}", "function \"nosuch\" not defined"),
            ("{{if .ID}}x", "unexpected EOF"),
            ("{{end}}", "unexpected {{end}}"),
            ("{{else}}", "unexpected {{else}}"),
            ("{{if .ID}}x{{else if}}y{{end}}", "missing value for if"),
            ("{{if .ID}}x{{else if .ID}}y", "unexpected EOF"),
            ("{{\"open}}", "unterminated quoted string"),
            ("{{(.ID}}", "unclosed left paren"),
            ("{{template \"x\"}}", "not supported"),
            ("{{.ID | }}", "missing command"),
            ("{{ ; }}", "unexpected ';' in command"),
        ] {
            let err = Template::parse(template).unwrap_err().to_string();
            assert!(
                err.starts_with("template parsing error: template: :1: "),
                "{err}"
            );
            assert!(err.contains(message), "{template}: {err}");
        }
        assert!(render("{{.ID .Tag}}", &row()).is_err());
        assert!(render("{{upper .Size}}", &row()).is_err());
    }

    #[test]
    fn deep_nesting_is_refused_not_recursed() {
        let deep = "{{if .ID}}".repeat(10_000) + &"{{end}}".repeat(10_000);
        assert!(Template::parse(&deep).is_err());
        let parens = format!("{{{{{}.ID{}}}}}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(Template::parse(&parens).is_err());
    }

    #[test]
    fn flags_parse_as_docker_reads_them() {
        for (flag, want) in [
            (None, OutputFormat::Table { template: None }),
            (Some("table"), OutputFormat::Table { template: None }),
            (Some("table  "), OutputFormat::Table { template: None }),
            (
                Some("table {{.ID}}\\t{{.Tag}}"),
                OutputFormat::Table {
                    template: Some("{{.ID}}\t{{.Tag}}".into()),
                },
            ),
            (Some("json"), OutputFormat::Json),
            (
                Some("{{.Repository}}:{{.Tag}}\\t{{.Size}}\\n"),
                OutputFormat::Template("{{.Repository}}:{{.Tag}}\t{{.Size}}\n".into()),
            ),
        ] {
            assert_eq!(OutputFormat::parse(flag), Ok(want), "{flag:?}");
        }
        assert!(OutputFormat::parse(Some("{{.ID")).is_err());
    }

    fn written(format: &OutputFormat, rows: &[Value]) -> String {
        let mut out = Vec::new();
        let columns = [("IMAGE ID", "ID"), ("REPOSITORY", "Repository")];
        write_rows(&mut out, format, &columns, rows).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn rows_are_written_in_each_format() {
        let rows = [
            json!({"ID": "abc", "Repository": "<none>"}),
            json!({"ID": "defdefdefdefdef", "Repository": "busybox"}),
        ];
        assert_eq!(
            written(&OutputFormat::Table { template: None }, &rows),
            "IMAGE ID          REPOSITORY\nabc               <none>\ndefdefdefdefdef   busybox\n"
        );
        // A table template has one header line, not a prefix on each row.
        assert_eq!(
            written(
                &OutputFormat::parse(Some("table {{.Repository}}\\t{{.ID}}")).unwrap(),
                &rows
            ),
            "REPOSITORY   IMAGE ID\n<none>       abc\nbusybox      defdefdefdefdef\n"
        );
        assert_eq!(
            written(
                &OutputFormat::parse(Some("{{.Repository}}\\t{{.ID}}")).unwrap(),
                &rows
            ),
            "<none>\tabc\nbusybox\tdefdefdefdefdef\n"
        );
        assert_eq!(
            written(&OutputFormat::Json, &rows),
            "{\"ID\":\"abc\",\"Repository\":\"\\u003cnone\\u003e\"}\n{\"ID\":\"defdefdefdefdef\",\"Repository\":\"busybox\"}\n"
        );
        // A field outside the default columns gets its words as header.
        let rows = [json!({"ID": "abc", "Repository": "r", "LocalVolumes": "0"})];
        assert_eq!(
            written(
                &OutputFormat::parse(Some("table {{.ID}}\\t{{.LocalVolumes}}")).unwrap(),
                &rows
            ),
            "IMAGE ID   LOCAL VOLUMES\nabc        0\n"
        );
        let mut out = Vec::new();
        let bad = OutputFormat::Template("{{.Nope}}".into());
        assert!(write_rows(&mut out, &bad, &[], &rows).is_err());
    }
}
