//! The path patterns of `.dockerignore`, as moby's patternmatcher compiles and
//! matches them: `*` and `?` stop at `/`, `**` spans directories, `[…]` are
//! character classes, `\` escapes. Pattern syntax is checked the way Go's
//! `filepath.Match` checks it, so the same patterns are rejected.

/// One element of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    /// `*`: any run without `/`.
    Star,
    /// `?`: one character other than `/`.
    One,
    /// `[…]`: one character in (or, negated, not in) the ranges.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    /// `**/` or an inner `**`: nothing, or anything ending in `/`.
    DirStar,
    /// A trailing `**` after other wildcards: anything.
    AnyTail,
}

/// How a pattern is matched, chosen as patternmatcher chooses it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// No wildcards: the path must equal the pattern.
    Exact,
    /// `literal/**`: the path must start with `literal/`.
    Prefix,
    /// `**/literal`: the path must end with `/literal` or be `literal`.
    Suffix,
    /// Anything else, matched token by token.
    Tokens(Vec<Token>),
}

/// A compiled pattern, without its `!`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob {
    cleaned: String,
    kind: Kind,
}

const SHOULD_ESCAPE: &str = ".+()|{}$";

impl Glob {
    /// Compiles a cleaned pattern, or says why Go would reject it.
    pub fn new(cleaned: &str) -> Result<Glob, String> {
        validate(cleaned)?;
        let chars: Vec<char> = cleaned.chars().collect();
        let mut tokens = Vec::new();
        let mut kind_is = KindSoFar::Exact;
        let mut i = 0;
        let mut first = true;
        while i < chars.len() {
            let ch = chars[i];
            i += 1;
            match ch {
                '*' if chars.get(i) == Some(&'*') => {
                    i += 1;
                    if chars.get(i) == Some(&'/') {
                        i += 1;
                    }
                    if i == chars.len() {
                        if kind_is == KindSoFar::Exact {
                            kind_is = KindSoFar::Prefix;
                        } else {
                            tokens.push(Token::AnyTail);
                            kind_is = KindSoFar::Tokens;
                        }
                    } else {
                        tokens.push(Token::DirStar);
                        kind_is = KindSoFar::Tokens;
                    }
                    if first {
                        kind_is = KindSoFar::Suffix;
                    }
                }
                '*' => {
                    tokens.push(Token::Star);
                    kind_is = KindSoFar::Tokens;
                }
                '?' => {
                    tokens.push(Token::One);
                    kind_is = KindSoFar::Tokens;
                }
                c if SHOULD_ESCAPE.contains(c) => tokens.push(Token::Literal(c)),
                '\\' => match chars.get(i) {
                    Some(&next) => {
                        tokens.push(Token::Literal(next));
                        i += 1;
                        kind_is = KindSoFar::Tokens;
                    }
                    None => tokens.push(Token::Literal('\\')),
                },
                '[' => {
                    let (class, next) = parse_class(&chars, i)?;
                    tokens.push(class);
                    i = next;
                    kind_is = KindSoFar::Tokens;
                }
                c => {
                    if c == ']' {
                        kind_is = KindSoFar::Tokens;
                    }
                    tokens.push(Token::Literal(c));
                }
            }
            first = false;
        }
        let kind = match kind_is {
            KindSoFar::Exact => Kind::Exact,
            KindSoFar::Prefix => Kind::Prefix,
            KindSoFar::Suffix => Kind::Suffix,
            KindSoFar::Tokens => Kind::Tokens(tokens),
        };
        Ok(Glob {
            cleaned: cleaned.to_string(),
            kind,
        })
    }

    /// The cleaned pattern text.
    pub fn as_str(&self) -> &str {
        &self.cleaned
    }

    /// Whether the whole (slash-separated, cleaned) path matches.
    pub fn matches(&self, path: &str) -> bool {
        match &self.kind {
            Kind::Exact => path == self.cleaned,
            Kind::Prefix => path.starts_with(&self.cleaned[..self.cleaned.len() - 2]),
            Kind::Suffix => {
                let suffix = &self.cleaned[2..];
                path.ends_with(suffix) || suffix.strip_prefix('/').is_some_and(|rest| path == rest)
            }
            Kind::Tokens(tokens) => {
                let text: Vec<char> = path.chars().collect();
                match_tokens(tokens, &text, false)
            }
        }
    }

    /// Whether some path that starts with `prefix` could match; used to
    /// decide whether an excluded directory must be walked for exceptions.
    pub fn could_match_under(&self, prefix: &str) -> bool {
        match &self.kind {
            Kind::Exact => self.cleaned.starts_with(prefix),
            Kind::Prefix => {
                let literal = &self.cleaned[..self.cleaned.len() - 2];
                literal.starts_with(prefix) || prefix.starts_with(literal)
            }
            Kind::Suffix => true,
            Kind::Tokens(tokens) => {
                let text: Vec<char> = prefix.chars().collect();
                match_tokens(tokens, &text, true)
            }
        }
    }
}

#[derive(PartialEq)]
enum KindSoFar {
    Exact,
    Prefix,
    Suffix,
    Tokens,
}

/// Reads a class after its `[` as the regular expression engine would.
fn parse_class(chars: &[char], mut i: usize) -> Result<(Token, usize), String> {
    let negated = chars.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    let item = |i: &mut usize| -> Option<char> {
        let c = *chars.get(*i)?;
        *i += 1;
        if c == '\\' {
            let escaped = *chars.get(*i)?;
            *i += 1;
            return Some(escaped);
        }
        Some(c)
    };
    let mut first = true;
    loop {
        match chars.get(i) {
            None => return Err("missing closing ] in character class".to_string()),
            Some(']') if !first => return Ok((Token::Class { negated, ranges }, i + 1)),
            Some(_) => {}
        }
        first = false;
        let lo = item(&mut i).ok_or("missing closing ] in character class")?;
        let hi = if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|c| *c != ']') {
            i += 1;
            item(&mut i).ok_or("missing closing ] in character class")?
        } else {
            lo
        };
        ranges.push((lo, hi));
    }
}

/// Matches tokens against the whole text; with `partial`, running out of text
/// counts as a match (something longer could still match).
///
/// The pattern runs as an NFA over token positions, keeping the set of live
/// positions per character: O(tokens × text) steps at worst and no
/// recursion, whatever the pattern. A `**` has an entry position (before it)
/// and an inner state (inside the run it spans), since it may end only after
/// a `/`.
fn match_tokens(tokens: &[Token], text: &[char], partial: bool) -> bool {
    let states = tokens.len() + 1;
    let (mut live, mut inner) = (StateSet::new(states), StateSet::new(states));
    let (mut next_live, mut next_inner) = (StateSet::new(states), StateSet::new(states));
    enter(tokens, 0, &mut live, &mut inner);
    for &ch in text {
        if live.list.is_empty() && inner.list.is_empty() {
            return false;
        }
        next_live.clear();
        next_inner.clear();
        if ch != '\n' {
            for &state in &inner.list {
                next_inner.insert(state);
                if ch == '/' {
                    enter(tokens, state + 1, &mut next_live, &mut next_inner);
                }
            }
        }
        for &state in &live.list {
            let Some(token) = tokens.get(state) else {
                continue;
            };
            let target = match token {
                Token::Literal(c) if *c == ch => state + 1,
                Token::One if ch != '/' => state + 1,
                Token::Class { negated, ranges }
                    if ranges.iter().any(|(lo, hi)| *lo <= ch && ch <= *hi) != *negated =>
                {
                    state + 1
                }
                Token::Star if ch != '/' => state,
                Token::AnyTail if ch != '\n' => state,
                _ => continue,
            };
            enter(tokens, target, &mut next_live, &mut next_inner);
        }
        std::mem::swap(&mut live, &mut next_live);
        std::mem::swap(&mut inner, &mut next_inner);
    }
    if partial {
        // As patternmatcher's partial match: a position reached at the end,
        // not a `**` run still waiting for its `/`.
        !live.list.is_empty()
    } else {
        live.contains(tokens.len())
    }
}

/// Makes `state` live, with the positions reachable without a character:
/// every star may match nothing, and a `**` also starts its inner run.
fn enter(tokens: &[Token], mut state: usize, live: &mut StateSet, inner: &mut StateSet) {
    while live.insert(state) {
        match tokens.get(state) {
            Some(Token::Star | Token::AnyTail) => state += 1,
            Some(Token::DirStar) => {
                inner.insert(state);
                state += 1;
            }
            _ => return,
        }
    }
}

/// A set of pattern positions that lists its members and clears in O(1).
struct StateSet {
    list: Vec<usize>,
    stamp: Vec<u64>,
    generation: u64,
}

impl StateSet {
    fn new(states: usize) -> StateSet {
        StateSet {
            list: Vec::new(),
            stamp: vec![0; states],
            generation: 1,
        }
    }

    fn clear(&mut self) {
        self.list.clear();
        self.generation += 1;
    }

    /// Adds a state; false if it was there already.
    fn insert(&mut self, state: usize) -> bool {
        if self.stamp[state] == self.generation {
            return false;
        }
        self.stamp[state] = self.generation;
        self.list.push(state);
        true
    }

    fn contains(&self, state: usize) -> bool {
        self.stamp[state] == self.generation
    }
}

/// Checks pattern syntax as Go's `filepath.Match(pattern, ".")` does.
fn validate(pattern: &str) -> Result<(), String> {
    go_match(pattern.as_bytes(), b".")
        .map(|_| ())
        .map_err(|()| "syntax error in pattern".to_string())
}

fn decode(bytes: &[u8]) -> (char, usize) {
    let len = match bytes.first() {
        Some(b) if *b < 0x80 => 1,
        Some(b) if *b >= 0xf0 => 4,
        Some(b) if *b >= 0xe0 => 3,
        Some(b) if *b >= 0xc0 => 2,
        _ => 1,
    };
    match std::str::from_utf8(&bytes[..len.min(bytes.len())]) {
        Ok(text) => text.chars().next().map_or(('\u{fffd}', 1), |c| (c, len)),
        Err(_) => ('\u{fffd}', 1),
    }
}

/// Go's `filepath.Match` on Unix, returning `Err(())` for a bad pattern.
fn go_match(mut pattern: &[u8], mut name: &[u8]) -> Result<bool, ()> {
    'pattern: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        if star && chunk.is_empty() {
            return Ok(!name.contains(&b'/'));
        }
        let (t, ok) = match_chunk(chunk, name)?;
        if ok && (t.is_empty() || !pattern.is_empty()) {
            name = t;
            continue;
        }
        if star {
            let mut i = 0;
            while i < name.len() && name[i] != b'/' {
                let (t, ok) = match_chunk(chunk, &name[i + 1..])?;
                if ok {
                    if pattern.is_empty() && !t.is_empty() {
                        i += 1;
                        continue;
                    }
                    name = t;
                    continue 'pattern;
                }
                i += 1;
            }
        }
        while !pattern.is_empty() {
            let (_, chunk, rest) = scan_chunk(pattern);
            pattern = rest;
            match_chunk(chunk, b"")?;
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

fn scan_chunk(mut pattern: &[u8]) -> (bool, &[u8], &[u8]) {
    let mut star = false;
    while pattern.first() == Some(&b'*') {
        pattern = &pattern[1..];
        star = true;
    }
    let mut in_range = false;
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            b'\\' if i + 1 < pattern.len() => i += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => break,
            _ => {}
        }
        i += 1;
    }
    (star, &pattern[..i], &pattern[i..])
}

fn match_chunk<'a>(mut chunk: &[u8], mut s: &'a [u8]) -> Result<(&'a [u8], bool), ()> {
    let mut failed = false;
    while !chunk.is_empty() {
        if !failed && s.is_empty() {
            failed = true;
        }
        match chunk[0] {
            b'[' => {
                let mut r = '\0';
                if !failed {
                    let (c, n) = decode(s);
                    r = c;
                    s = &s[n..];
                }
                chunk = &chunk[1..];
                let negated = chunk.first() == Some(&b'^');
                if negated {
                    chunk = &chunk[1..];
                }
                let mut matched = false;
                let mut ranges = 0;
                loop {
                    if chunk.first() == Some(&b']') && ranges > 0 {
                        chunk = &chunk[1..];
                        break;
                    }
                    let (lo, rest) = get_esc(chunk)?;
                    chunk = rest;
                    let mut hi = lo;
                    if chunk[0] == b'-' {
                        let (h, rest) = get_esc(&chunk[1..])?;
                        hi = h;
                        chunk = rest;
                    }
                    if lo <= r && r <= hi {
                        matched = true;
                    }
                    ranges += 1;
                }
                if matched == negated {
                    failed = true;
                }
            }
            b'?' => {
                if !failed {
                    if s[0] == b'/' {
                        failed = true;
                    }
                    let (_, n) = decode(s);
                    s = &s[n..];
                }
                chunk = &chunk[1..];
            }
            first => {
                let mut literal = first;
                if first == b'\\' {
                    chunk = &chunk[1..];
                    if chunk.is_empty() {
                        return Err(());
                    }
                    literal = chunk[0];
                }
                if !failed {
                    if literal != s[0] {
                        failed = true;
                    }
                    s = &s[1..];
                }
                chunk = &chunk[1..];
            }
        }
    }
    if failed {
        Ok((b"", false))
    } else {
        Ok((s, true))
    }
}

fn get_esc(mut chunk: &[u8]) -> Result<(char, &[u8]), ()> {
    if chunk.is_empty() || chunk[0] == b'-' || chunk[0] == b']' {
        return Err(());
    }
    if chunk[0] == b'\\' {
        chunk = &chunk[1..];
        if chunk.is_empty() {
            return Err(());
        }
    }
    let (r, n) = decode(chunk);
    if r == '\u{fffd}' && n == 1 {
        return Err(());
    }
    let rest = &chunk[n..];
    if rest.is_empty() {
        return Err(());
    }
    Ok((r, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_like_the_patternmatcher() {
        let cases = [
            ("a/*/c", "a/b/c", true),
            ("a/*/c", "a/b/x/c", false),
            ("a/**/c", "a/b/x/c", true),
            ("a/**/c", "a/c", true),
            ("**/c?", "x/y/cd", true),
            ("a*", "a/b", false),
            ("a/**", "a/b/c", true),
            ("*.go", "x.go", true),
            ("[a-c]x", "bx", true),
            ("[^a-c]x", "bx", false),
            ("a**b", "a/x/b", true),
            ("a?b", "a/b", false),
        ];
        for (pattern, path, expected) in cases {
            let glob = Glob::new(pattern).unwrap();
            assert_eq!(glob.matches(path), expected, "{pattern} on {path}");
        }
    }

    #[test]
    fn hostile_patterns_are_linear_and_do_not_recurse() {
        // One recursion per matched character overflowed the stack.
        let long = format!("?{}", "a".repeat(300_000));
        assert!(
            Glob::new(&long)
                .unwrap()
                .matches(&format!("x{}", &long[1..]))
        );
        let stars = format!("{}b", "*a".repeat(300));
        let glob = Glob::new(&stars).unwrap();
        let started = std::time::Instant::now();
        assert!(!glob.matches(&"a".repeat(1_000)));
        assert!(glob.could_match_under(&"a".repeat(1_000)));
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "took {:?}",
            started.elapsed()
        );
    }

    #[test]
    fn partial_matches_decide_descent() {
        let glob = Glob::new("*/sub1*").unwrap();
        assert!(glob.could_match_under("subdir/"));
        assert!(!glob.could_match_under("a/b/"));
        let exact = Glob::new("docs/README.md").unwrap();
        assert!(exact.could_match_under("docs/"));
        assert!(!exact.could_match_under("src/"));
        let class = Glob::new("[ab]/x").unwrap();
        assert!(class.could_match_under("a/"));
        assert!(!class.could_match_under("c/"));
    }

    #[test]
    fn go_syntax_errors() {
        for bad in ["[", "a[", "[]a]", "[x-]", "\\", "[a-b-c]", "[^"] {
            assert!(Glob::new(bad).is_err(), "{bad}");
        }
        for good in ["*", "a*/b", "[\\]a]", "[x\\-]", "**/dir2/*", "a\\*b"] {
            assert!(Glob::new(good).is_ok(), "{good}");
        }
    }
}
