//! Build checks that look at instructions as written, independent of
//! scopes: the casing of keywords, the legacy `ENV key value` form, secrets
//! in ARG and ENV names, a redundant `FROM --platform=$TARGETPLATFORM`, and
//! FROM bases that the global ARGs' defaults make invalid.

use super::Planner;
use super::stage::reference_error;
use crate::ast::Node;
use crate::instruction::Instruction;

/// Name parts that suggest a secret (BuildKit's SecretsUsedInArgOrEnv list).
const SECRET_WORDS: &[&str] = &[
    "apikey",
    "auth",
    "credential",
    "credentials",
    "key",
    "password",
    "pword",
    "passwd",
    "secret",
    "token",
];

/// Whether a variable name looks like it holds a secret: one of its
/// `_`-separated parts is a secret word (a `public` part clears it).
fn looks_secret(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    let parts: Vec<&str> = lower.split('_').collect();
    !parts.contains(&"public") && parts.iter().any(|part| SECRET_WORDS.contains(part))
}

impl Planner<'_> {
    /// Runs the checks over every instruction.
    pub(super) fn lint(&mut self, typed: &[(&Node, Instruction)]) {
        self.lint_casing(typed.iter().map(|(node, _)| *node));
        for (node, instruction) in typed {
            match instruction {
                // The old form has an empty separator in its triple.
                Instruction::Env(_) | Instruction::Label(_)
                    if node.args.get(2).is_some_and(String::is_empty) =>
                {
                    let keyword = node.keyword.to_ascii_uppercase();
                    self.warn(
                        node,
                        "LegacyKeyValueFormat",
                        format!("\"{keyword} key=value\" should be used instead of legacy \"{keyword} key value\" format"),
                    );
                }
                Instruction::From(from)
                    if matches!(
                        from.platform.as_deref(),
                        Some("$TARGETPLATFORM" | "${TARGETPLATFORM}")
                    ) =>
                {
                    let platform = from.platform.as_deref().unwrap_or_default();
                    self.warn(
                        node,
                        "RedundantTargetPlatform",
                        format!("setting platform to predefined {platform} in FROM is redundant as this is the default behavior"),
                    );
                }
                _ => {}
            }
            let names: Vec<&str> = match instruction {
                Instruction::Arg(decls) => decls.iter().map(|d| d.name.as_str()).collect(),
                Instruction::Env(pairs) => pairs.iter().map(|kv| kv.key.as_str()).collect(),
                _ => Vec::new(),
            };
            for name in names.into_iter().filter(|name| looks_secret(name)) {
                self.warn(
                    node,
                    "SecretsUsedInArgOrEnv",
                    format!(
                        "do not use ARG or ENV instructions for sensitive data ({} {name:?})",
                        node.keyword.to_ascii_uppercase()
                    ),
                );
            }
        }
    }

    /// Warns about FROM lines whose base, expanded with the global ARGs'
    /// defaults alone (no build args), is not an image reference, as
    /// BuildKit's InvalidDefaultArgInFrom does; like BuildKit, it gives up at
    /// the first expansion error.
    pub(super) fn lint_default_args_in_from<'n>(
        &mut self,
        froms: impl Iterator<Item = (&'n Node, &'n Instruction)>,
    ) {
        let Some(env) = self.default_env.take() else {
            return;
        };
        for (node, instruction) in froms {
            let Instruction::From(from) = instruction else {
                continue;
            };
            let Ok(base) = self.lexer.expand_word(&from.image, &env) else {
                break;
            };
            if base.is_empty() || reference_error(&base).is_some() {
                self.warn(
                    node,
                    "InvalidDefaultArgInFrom",
                    format!(
                        "default value for ARG {} results in empty or invalid base image name",
                        from.image
                    ),
                );
            }
        }
        self.default_env = Some(env);
    }

    /// Warns about keywords whose casing differs from the majority's.
    fn lint_casing<'n>(&mut self, nodes: impl Iterator<Item = &'n Node> + Clone) {
        let upper = nodes
            .clone()
            .filter(|n| n.keyword == n.keyword.to_ascii_uppercase())
            .count();
        let lower = nodes
            .clone()
            .filter(|n| n.keyword == n.keyword.to_ascii_lowercase())
            .count();
        let (majority, matches): (&str, fn(&str) -> bool) = if upper >= lower {
            ("uppercase", |k| k == k.to_ascii_uppercase())
        } else {
            ("lowercase", |k| k == k.to_ascii_lowercase())
        };
        for node in nodes.filter(|n| !matches(&n.keyword)) {
            self.warn(
                node,
                "ConsistentInstructionCasing",
                format!(
                    "command '{}' should match the case of the command majority ({majority})",
                    node.keyword
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::looks_secret;

    #[test]
    fn secret_names() {
        for name in [
            "PASSWORD",
            "db_password",
            "API_TOKEN",
            "AWS_SECRET_KEY",
            "apikey",
        ] {
            assert!(looks_secret(name), "{name}");
        }
        for name in ["KEYBOARD", "PUBLIC_KEY", "TOKENIZER", "VERSION", "monkey"] {
            assert!(!looks_secret(name), "{name}");
        }
    }
}
