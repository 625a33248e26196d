//! Finding the heredocs (`<<EOF`, `<<-EOF`, `<<"EOF"`, `3<<EOF`) an
//! instruction line opens, and preparing their content.

use super::ast::Heredoc;
use super::shell::{Lexer, NoEnvironment};

/// The heredocs `line` opens, in order. Words are found the way BuildKit
/// finds them: quotes and escapes kept, unset variables left as written.
pub(crate) fn heredocs_in_line(line: &str) -> Result<Vec<Heredoc>, String> {
    let lexer = Lexer {
        escape: '\\',
        raw_quotes: true,
        raw_escapes: true,
        skip_unset: true,
    };
    // A line the lexer cannot split has no heredocs (BuildKit ignores the error).
    let words = lexer.expand_words(line, &NoEnvironment).unwrap_or_default();
    let mut docs = Vec::new();
    for word in words {
        if let Some(doc) = parse_heredoc(&word)? {
            docs.push(doc);
        }
    }
    Ok(docs)
}

/// Reads one word as `[fd]<<[-]name`, or `None` when it is no heredoc.
pub fn parse_heredoc(word: &str) -> Result<Option<Heredoc>, String> {
    let digits_end = word
        .char_indices()
        .find(|(_, c)| !c.is_ascii_digit())
        .map_or(word.len(), |(i, _)| i);
    let Some(after) = word[digits_end..].strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, after) = match after.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, after),
    };
    let rest = after.trim_start_matches(['\t', '\n', '\x0c', '\r', ' ']);
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let file_descriptor = word[..digits_end].parse::<u32>().unwrap_or(0);
    let mut lexer = Lexer {
        escape: '\\',
        raw_quotes: false,
        raw_escapes: false,
        skip_unset: true,
    };
    let words = lexer
        .expand_words(rest, &NoEnvironment)
        .map_err(|err| err.to_string())?;
    let [name] = words.as_slice() else {
        return Ok(None);
    };
    lexer.raw_quotes = true;
    let raw_words = lexer
        .expand_words(rest, &NoEnvironment)
        .map_err(|err| err.to_string())?;
    let [raw_name] = raw_words.as_slice() else {
        return Err(format!(
            "internal lexing of heredoc produced inconsistent results: {rest}"
        ));
    };
    // A quoted word (any part of it) turns expansion of the content off.
    let quotes = |text: &str| text.chars().filter(|c| *c == '\'' || *c == '"').count();
    let expand = quotes(name) == quotes(raw_name);
    Ok(Some(Heredoc {
        name: name.clone(),
        file_descriptor,
        expand,
        chomp,
        content: String::new(),
    }))
}

/// The content with leading tabs stripped from every line (`<<-`).
pub fn chomp_content(content: &str) -> String {
    content
        .split_inclusive('\n')
        .map(|line| line.trim_start_matches('\t'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heredoc_words() {
        let cases = [
            ("<<EOF", Some(("EOF", 0, true, false))),
            ("<<-EOF", Some(("EOF", 0, true, true))),
            ("<< EOF", Some(("EOF", 0, true, false))),
            ("<<'EOF'", Some(("EOF", 0, false, false))),
            ("<<E\"O\"F", Some(("EOF", 0, false, false))),
            ("2<<-X", Some(("X", 2, true, true))),
            ("<<", None),
            ("<<<EOF", None),
            ("x<<EOF", None),
            ("<<\"two words\"", Some(("two words", 0, false, false))),
        ];
        for (word, expected) in cases {
            let got = parse_heredoc(word).unwrap();
            let got = got
                .as_ref()
                .map(|h| (h.name.as_str(), h.file_descriptor, h.expand, h.chomp));
            assert_eq!(got, expected, "{word}");
        }
    }

    #[test]
    fn chomp_strips_leading_tabs_per_line() {
        assert_eq!(chomp_content("\t\ta\n\tb\n c\n"), "a\nb\n c\n");
    }
}
