//! How each instruction's rest of line becomes its argument list: exec form
//! (JSON) with the shell-form fallback, whitespace-separated lists, `name=value`
//! pairs, and the `--flag` words before the arguments.

/// The arguments of one instruction and whether they were exec form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Parsed {
    pub(crate) args: Vec<String>,
    pub(crate) json: bool,
}

/// How an instruction's arguments are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// Exec form, or else the whole rest as one argument (RUN, CMD, …).
    MaybeJson,
    /// Exec form, or else whitespace-separated words (ADD, COPY, VOLUME).
    MaybeJsonList,
    /// Whitespace-separated words (FROM, EXPOSE).
    Whitespace,
    /// The whole rest as one argument (USER, WORKDIR, …).
    String,
    /// `name=value …` or the old `name value` (ENV, LABEL).
    NameValue(&'static str),
    /// `name` or `name=value`, several (ARG).
    NameOrNameValue,
    /// `NONE`, or `CMD` followed by a command (HEALTHCHECK).
    Health,
    /// Another instruction (ONBUILD); parsed by the caller.
    SubCommand,
}

/// Go's `regexp` `[\t\v\f\r ]`, the separator BuildKit splits words on.
pub(crate) fn is_split_space(c: char) -> bool {
    matches!(c, '\t' | '\x0b' | '\x0c' | '\r' | ' ')
}

/// Splits on runs of [`is_split_space`], at most `limit` parts (0: no limit).
pub(crate) fn split_whitespace_runs(text: &str, limit: usize) -> Vec<String> {
    let mut parts = Vec::new();
    let mut rest = text;
    loop {
        if limit != 0 && parts.len() + 1 == limit {
            parts.push(rest.to_string());
            break;
        }
        match rest.find(is_split_space) {
            Some(start) => {
                parts.push(rest[..start].to_string());
                rest = rest[start..].trim_start_matches(is_split_space);
            }
            None => {
                parts.push(rest.to_string());
                break;
            }
        }
    }
    parts
}

pub(crate) const NOT_STRING_ARRAY: &str =
    "when using JSON array syntax, arrays must be comprised of strings only";

/// Exec form: `Ok(Some(args))` for a JSON array of strings, `Ok(None)` when
/// the text is not a JSON array, an error when it is an array of other things.
fn parse_json(rest: &str) -> Result<Option<Vec<String>>, String> {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return Ok(None);
    }
    let Ok(values) = serde_json::from_str::<Vec<serde_json::Value>>(rest) else {
        return Ok(None);
    };
    values
        .into_iter()
        .map(|value| match value {
            serde_json::Value::String(text) => Ok(text),
            _ => Err(NOT_STRING_ARRAY.to_string()),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

fn maybe_json(rest: &str) -> Result<Parsed, String> {
    if rest.is_empty() {
        return Ok(Parsed::default());
    }
    Ok(match parse_json(rest)? {
        Some(args) => Parsed { args, json: true },
        None => Parsed {
            args: vec![rest.to_string()],
            json: false,
        },
    })
}

fn whitespace_list(rest: &str) -> Parsed {
    if rest.is_empty() {
        return Parsed::default();
    }
    Parsed {
        args: split_whitespace_runs(rest, 0),
        json: false,
    }
}

/// Reads the arguments of an instruction of the given shape.
pub(crate) fn parse_args(shape: Shape, rest: &str, escape: char) -> Result<Parsed, String> {
    match shape {
        Shape::MaybeJson => maybe_json(rest),
        Shape::MaybeJsonList => Ok(match parse_json(rest)? {
            Some(args) => Parsed { args, json: true },
            None => whitespace_list(rest),
        }),
        Shape::Whitespace => Ok(whitespace_list(rest)),
        Shape::String => Ok(Parsed {
            args: if rest.is_empty() {
                Vec::new()
            } else {
                vec![rest.to_string()]
            },
            json: false,
        }),
        Shape::NameValue(keyword) => name_value(rest, keyword, escape),
        Shape::NameOrNameValue => Ok(Parsed {
            args: parse_words(rest, escape),
            json: false,
        }),
        Shape::Health => {
            let Some(kind) = rest
                .split(char::is_whitespace)
                .next()
                .filter(|k| !k.is_empty())
            else {
                return Ok(Parsed::default());
            };
            let command = rest[kind.len()..].trim_start();
            let parsed = maybe_json(command)?;
            let mut args = vec![kind.to_string()];
            args.extend(parsed.args);
            Ok(Parsed {
                args,
                json: parsed.json,
            })
        }
        Shape::SubCommand => Ok(Parsed::default()),
    }
}

fn name_value(rest: &str, keyword: &str, escape: char) -> Result<Parsed, String> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else {
        return Ok(Parsed::default());
    };
    if !first.contains('=') {
        // The old form: `ENV name value with spaces`.
        let parts = split_whitespace_runs(rest, 2);
        if parts.len() < 2 {
            return Err(format!("{keyword} must have two arguments"));
        }
        return Ok(Parsed {
            args: vec![parts[0].clone(), parts[1].clone(), String::new()],
            json: false,
        });
    }
    let mut args = Vec::with_capacity(words.len() * 3);
    for word in words {
        let Some((key, value)) = word.split_once('=') else {
            return Err(format!(
                "Syntax error - can't find = in {word:?}. Must be of the form: name=value"
            ));
        };
        args.extend([key.to_string(), value.to_string(), "=".to_string()]);
    }
    Ok(Parsed { args, json: false })
}

/// Splits into words on white space, keeping quotes and escapes for the
/// later expansion (BuildKit's `parseWords`).
pub(crate) fn parse_words(rest: &str, escape: char) -> Vec<String> {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut word = String::new();
    let mut pos = 0;
    loop {
        let at_end = pos >= chars.len();
        let mut ch = if at_end { '\0' } else { chars[pos] };
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if ch.is_whitespace() {
                pos += 1;
                continue;
            }
            phase = Phase::Word;
        }
        if at_end {
            if blank_ok || !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            break;
        }
        if phase == Phase::Word {
            if ch.is_whitespace() {
                phase = Phase::Spaces;
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                word.clear();
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
            }
            if ch == escape {
                if pos + 1 == chars.len() {
                    pos += 1;
                    continue;
                }
                // Outside quotes an escape keeps itself and the next character,
                // even a quote.
                word.push(ch);
                pos += 1;
                ch = chars[pos];
            }
            word.push(ch);
            pos += 1;
            continue;
        }
        // Inside quotes.
        if ch == quote {
            phase = Phase::Word;
        }
        if ch == escape && quote != '\'' {
            if pos + 1 == chars.len() {
                phase = Phase::Word;
                pos += 1;
                continue;
            }
            pos += 1;
            word.push(ch);
            ch = chars[pos];
        }
        word.push(ch);
        pos += 1;
    }
    words
}

/// Splits the leading `--flag` words off an instruction's arguments
/// (BuildKit's `extractBuilderFlags`). Returns the rest and the flags.
pub(crate) fn extract_flags(line: &str, escape: char) -> (String, Vec<String>) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut pos = 0;
    loop {
        let at_end = pos >= chars.len();
        let mut ch = if at_end { '\0' } else { chars[pos].1 };
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if ch.is_whitespace() {
                pos += 1;
                continue;
            }
            // Only words starting with `--` are flags.
            if ch != '-' || chars.get(pos + 1).map(|c| c.1) != Some('-') {
                return (line[chars[pos].0..].to_string(), words);
            }
            phase = Phase::Word;
        }
        if at_end {
            if word != "--" && (blank_ok || !word.is_empty()) {
                words.push(word);
            }
            break;
        }
        if phase == Phase::Word {
            if ch.is_whitespace() {
                phase = Phase::Spaces;
                if word == "--" {
                    return (line[chars[pos].0..].to_string(), words);
                }
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                word.clear();
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
                pos += 1;
                continue;
            }
            if ch == escape {
                if pos + 1 == chars.len() {
                    pos += 1;
                    continue;
                }
                pos += 1;
                ch = chars[pos].1;
            }
            word.push(ch);
            pos += 1;
            continue;
        }
        if ch == quote {
            phase = Phase::Word;
            pos += 1;
            continue;
        }
        if ch == escape {
            if pos + 1 == chars.len() {
                phase = Phase::Word;
                pos += 1;
                continue;
            }
            pos += 1;
            ch = chars[pos].1;
        }
        word.push(ch);
        pos += 1;
    }
    (String::new(), words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_keep_quotes_and_escapes() {
        let cases: &[(&str, &[&str])] = &[
            ("foo", &["foo"]),
            ("foo bar", &["foo", "bar"]),
            ("foo\\ bar", &["foo\\ bar"]),
            ("foo=bar", &["foo=bar"]),
            ("foo bar 'abc xyz'", &["foo", "bar", "'abc xyz'"]),
            ("foo=\"bar baz\" x", &["foo=\"bar baz\"", "x"]),
            ("''", &["''"]),
            ("a\\", &["a"]),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_words(input, '\\'), *expected, "{input}");
        }
    }

    #[test]
    fn flags_stop_at_the_first_other_word() {
        let (rest, flags) = extract_flags("--from=a --chown=\"x y\" src dst", '\\');
        assert_eq!(flags, ["--from=a", "--chown=x y"]);
        assert_eq!(rest, "src dst");
        let (rest, flags) = extract_flags("-- --notflag x", '\\');
        assert!(flags.is_empty());
        assert_eq!(rest, " --notflag x");
        let (rest, flags) = extract_flags("--link", '\\');
        assert_eq!((rest.as_str(), flags), ("", vec!["--link".to_string()]));
    }

    #[test]
    fn json_fallback_and_hard_error() {
        assert_eq!(
            parse_args(Shape::MaybeJson, "[\"a\", \"b\"]", '\\').unwrap(),
            Parsed {
                args: vec!["a".into(), "b".into()],
                json: true
            }
        );
        assert_eq!(
            parse_args(Shape::MaybeJson, "['a']", '\\').unwrap(),
            Parsed {
                args: vec!["['a']".into()],
                json: false
            }
        );
        assert!(parse_args(Shape::MaybeJson, "[1]", '\\').is_err());
        assert_eq!(
            parse_args(Shape::NameValue("ENV"), "a b  c", '\\')
                .unwrap()
                .args,
            ["a", "b  c", ""]
        );
        assert!(parse_args(Shape::NameValue("ENV"), "a", '\\').is_err());
        assert!(parse_args(Shape::NameValue("ENV"), "a=1 b", '\\').is_err());
    }
}
