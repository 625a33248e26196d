//! `--chmod` values: octal (`755`, `0644`) or symbolic (`u+x,go=r`, `a-w`).

/// A parsed `--chmod`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chmod {
    /// Octal: the mode replaces the source mode.
    Octal(u32),
    /// Symbolic clauses, applied in order to the source mode.
    Symbolic(Vec<Clause>),
}

/// One `who op perms` clause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clause {
    who: u32,
    op: char,
    perms: String,
}

/// Parses a `--chmod` value.
pub fn parse(text: &str) -> Result<Chmod, String> {
    if !text.is_empty() && text.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return u32::from_str_radix(text, 8)
            .ok()
            .filter(|m| *m <= 0o7777)
            .map(Chmod::Octal)
            .ok_or_else(|| format!("invalid --chmod '{text}': octal mode out of range"));
    }
    let mut clauses = Vec::new();
    for part in text.split(',') {
        let op_at = part
            .find(['+', '-', '='])
            .ok_or_else(|| format!("invalid --chmod '{text}': '{part}' has no +, - or ="))?;
        let (who_text, rest) = part.split_at(op_at);
        let mut who = 0;
        for c in who_text.chars() {
            who |= match c {
                'u' => 0o4700,
                'g' => 0o2070,
                'o' => 0o1007,
                'a' => 0o7777,
                _ => return Err(format!("invalid --chmod '{text}': unknown class '{c}'")),
            };
        }
        if who == 0 {
            who = 0o7777;
        }
        let mut chars = rest.chars();
        let op = chars.next().unwrap_or('=');
        let perms: String = chars.collect();
        if let Some(bad) = perms.chars().find(|c| !"rwxXst".contains(*c)) {
            return Err(format!(
                "invalid --chmod '{text}': unknown permission '{bad}'"
            ));
        }
        clauses.push(Clause { who, op, perms });
    }
    Ok(Chmod::Symbolic(clauses))
}

impl Chmod {
    /// The mode a file with `mode` gets (`is_dir` matters for `X`).
    pub fn apply(&self, mode: u32, is_dir: bool) -> u32 {
        match self {
            Chmod::Octal(m) => *m,
            Chmod::Symbolic(clauses) => clauses.iter().fold(mode & 0o7777, |mode, c| {
                let mut bits = 0;
                for p in c.perms.chars() {
                    bits |= match p {
                        'r' => 0o444,
                        'w' => 0o222,
                        'x' => 0o111,
                        'X' if is_dir || mode & 0o111 != 0 => 0o111,
                        's' => 0o6000,
                        't' => 0o1000,
                        _ => 0,
                    };
                }
                let bits = bits & c.who;
                match c.op {
                    '+' => mode | bits,
                    '-' => mode & !bits,
                    _ => (mode & !(c.who & 0o7777)) | bits,
                }
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_and_symbolic_modes() {
        let cases = [
            ("755", 0o644, false, 0o755),
            ("0600", 0o777, false, 0o600),
            ("u+x", 0o644, false, 0o744),
            ("go-w", 0o666, false, 0o644),
            ("a=r", 0o755, false, 0o444),
            ("u=rwx,g=rx,o=", 0o600, false, 0o750),
            ("+X", 0o644, true, 0o755),
            ("+X", 0o644, false, 0o644),
            ("u+s", 0o755, false, 0o4755),
        ];
        for (text, mode, dir, want) in cases {
            assert_eq!(
                parse(text).unwrap().apply(mode, dir),
                want,
                "{text} on {mode:o}"
            );
        }
        for bad in ["", "77777", "q+x", "u+z", "u"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
