//! Planning one stage: its FROM line (base, platform, name checks) and its
//! steps, with ARG/ENV scoping, the build args each step uses, the stages it
//! depends on, and the per-stage build checks.

use super::graph::{mount_from, resolve_copy_from};
use super::{Base, PROXY_ARGS, Planner, Stage, Step};
use crate::ast::Node;
use crate::instruction::{Command, From, Instruction};
use crate::platform::Platform;
use crate::shell::Environment;
use std::collections::{BTreeMap, BTreeSet};

/// Per-stage scope while planning. Maps keep lookups cheap, so planning
/// stays linear in the number of instructions.
#[derive(Default, Clone)]
struct Scope {
    /// ARGs declared in the stage that have a value.
    args: BTreeMap<String, String>,
    /// ENV of the stage (inherited from a base stage first).
    env: BTreeMap<String, String>,
}

impl Environment for Scope {
    /// ENV wins over an ARG of the same name.
    fn lookup(&self, name: &str) -> Option<&str> {
        self.env
            .get(name)
            .or_else(|| self.args.get(name))
            .map(String::as_str)
    }
}

impl Scope {
    /// The build args among `names`: ARGs not shadowed by an ENV.
    fn args_used(&self, names: &BTreeSet<String>) -> BTreeMap<String, String> {
        names
            .iter()
            .filter(|name| !self.env.contains_key(*name))
            .filter_map(|name| self.args.get(name).map(|v| (name.clone(), v.clone())))
            .collect()
    }

    /// Every ARG with a value not shadowed by an ENV: a RUN step's build args.
    fn visible_args(&self) -> BTreeMap<String, String> {
        self.args
            .iter()
            .filter(|(k, _)| !self.env.contains_key(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// What the steps loop tracks besides the scope.
#[derive(Default)]
struct StageState {
    depends_on: BTreeSet<usize>,
    /// How many CMD, ENTRYPOINT and HEALTHCHECK the stage has so far.
    seen_single: BTreeMap<&'static str, usize>,
    workdir_set: bool,
}

impl Planner<'_> {
    /// Plans stage `index`; returns it and its final ENV (for stages based on it).
    pub(super) fn plan_stage(
        &mut self,
        index: usize,
        from_node: &Node,
        from_instruction: &Instruction,
        body: &[(&Node, &Instruction)],
        final_env: &[BTreeMap<String, String>],
    ) -> (Stage, BTreeMap<String, String>) {
        let from = match from_instruction {
            Instruction::From(from) => from.clone(),
            _ => From {
                image: String::new(),
                platform: None,
                name: None,
            },
        };
        if let Some(name) = &from.name {
            self.check_stage_name(index, from_node, name);
        }
        let (expanded, from_build_args) = self.expand_from(from_node, &from);
        let platform = self.stage_platform(from_node, &from, &expanded);
        // As in BuildKit, the base names `scratch` or an earlier stage only
        // when spelled exactly (stage names are lowercase); anything else
        // must be an image reference.
        let earlier_stage = self.names[..index.min(self.names.len())]
            .iter()
            .position(|name| name.as_deref() == Some(expanded.image.as_str()));
        let base = if expanded.image == "scratch" {
            Base::Scratch
        } else if let Some(stage) = earlier_stage {
            Base::Stage { index: stage }
        } else {
            if !expanded.image.is_empty()
                && let Some(reason) = reference_error(&expanded.image)
            {
                self.error(
                    from_node,
                    format!("failed to parse stage name {:?}: {reason}", expanded.image),
                );
            }
            Base::Image {
                reference: expanded.image.clone(),
            }
        };
        let mut scope = Scope::default();
        let mut state = StageState::default();
        if let Base::Stage { index: parent } = base {
            scope.env = final_env.get(parent).cloned().unwrap_or_default();
            state.depends_on.insert(parent);
            state.workdir_set = true;
        }
        let mut steps = Vec::with_capacity(body.len());
        for (node, instruction) in body {
            if let Some(step) = self.plan_step(node, instruction, &mut scope, &mut state) {
                steps.push(step);
            }
        }
        let stage = Stage {
            index,
            name: from.name.clone(),
            base,
            platform,
            line: from_node.start_line,
            from_build_args,
            depends_on: state.depends_on.into_iter().collect(),
            steps,
        };
        (stage, scope.env)
    }

    fn check_stage_name(&mut self, index: usize, from_node: &Node, name: &str) {
        if self.names[..index.min(self.names.len())]
            .iter()
            .any(|n| n.as_deref() == Some(name))
        {
            self.error(from_node, format!("duplicate stage name {name:?}"));
        }
        if name == "scratch" || name == "context" {
            self.error(
                from_node,
                format!("{name:?} is a reserved name and cannot be used as a stage name"),
            );
        }
        let as_word = from_node
            .args
            .get(1)
            .map(String::as_str)
            .unwrap_or_default();
        let keyword_upper = from_node.keyword == from_node.keyword.to_uppercase();
        if keyword_upper != (as_word == as_word.to_uppercase()) {
            self.warn(
                from_node,
                "FromAsCasing",
                format!(
                    "'{as_word}' and '{}' keywords' casing do not match",
                    from_node.keyword
                ),
            );
        }
        let written = from_node
            .args
            .get(2)
            .map(String::as_str)
            .unwrap_or_default();
        if written != written.to_lowercase() {
            self.warn(
                from_node,
                "StageNameCasing",
                format!("stage name {written:?} should be lowercase"),
            );
        }
    }

    /// Expands the FROM line in the global scope (the only scope it sees);
    /// returns it and the build args it used.
    fn expand_from(&mut self, from_node: &Node, from: &From) -> (From, BTreeMap<String, String>) {
        let instruction = Instruction::From(from.clone());
        let (expanded, matched, unmatched) = match instruction.expand(&self.lexer, &self.global_env)
        {
            Ok(result) => result,
            Err(err) => {
                self.error(from_node, err.to_string());
                (instruction, BTreeSet::new(), BTreeSet::new())
            }
        };
        for name in &unmatched {
            if !self.global_declared.contains(name) {
                self.warn(
                    from_node,
                    "UndefinedArgInFrom",
                    format!("FROM argument {name:?} is not declared"),
                );
            }
        }
        let Instruction::From(expanded) = expanded else {
            return (from.clone(), BTreeMap::new());
        };
        if expanded.image.is_empty() {
            self.error(
                from_node,
                format!("base name ({}) should not be blank", from.image),
            );
        }
        let used = matched
            .iter()
            .filter_map(|name| self.global_env.get(name).map(|v| (name.clone(), v.clone())))
            .collect();
        (expanded, used)
    }

    /// `FROM --platform`, or else the target platform.
    fn stage_platform(&mut self, from_node: &Node, from: &From, expanded: &From) -> Platform {
        let Some(text) = expanded.platform.as_deref() else {
            return self.target_platform.clone();
        };
        match Platform::parse(text) {
            Ok(platform) => platform,
            Err(message) => {
                self.error(
                    from_node,
                    format!(
                        "failed to parse platform {}: {message}",
                        from.platform.as_deref().unwrap_or_default()
                    ),
                );
                self.target_platform.clone()
            }
        }
    }

    /// The value an `ARG name` in a stage gets: the build arg, else its
    /// default, else the global ARG or platform arg of that name.
    fn arg_value(&self, name: &str, default: Option<&String>) -> Option<String> {
        self.options
            .build_args
            .get(name)
            .or(default)
            .or_else(|| {
                self.global_env.get(name).filter(|_| {
                    self.global_declared.contains(name) || self.platform_args.contains_key(name)
                })
            })
            .cloned()
    }

    fn plan_step(
        &mut self,
        node: &Node,
        instruction: &Instruction,
        scope: &mut Scope,
        state: &mut StageState,
    ) -> Option<Step> {
        let (expanded, matched, unmatched) = match instruction.expand(&self.lexer, &*scope) {
            Ok(result) => result,
            Err(err) => {
                self.error(node, err.to_string());
                return None;
            }
        };
        let mut build_args = scope.args_used(&matched);
        match &expanded {
            Instruction::Arg(decls) => {
                for decl in decls {
                    if let Some(value) = self.arg_value(&decl.name, decl.default.as_ref()) {
                        build_args.insert(decl.name.clone(), value.clone());
                        scope.args.insert(decl.name.clone(), value);
                    }
                }
            }
            Instruction::Env(pairs) => {
                for pair in pairs {
                    scope.env.insert(pair.key.clone(), pair.value.clone());
                }
            }
            Instruction::Run(run) => {
                build_args = scope.visible_args();
                for proxy in PROXY_ARGS {
                    if let Some(value) = self.options.build_args.get(*proxy) {
                        build_args
                            .entry(proxy.to_string())
                            .or_insert_with(|| value.clone());
                    }
                }
                for mount in &run.mounts {
                    if let Some(stage) = mount_from(mount).and_then(|from| self.find_stage(&from)) {
                        state.depends_on.insert(stage);
                    }
                }
            }
            Instruction::Copy(copy) => {
                if let Some(from) = &copy.from {
                    let resolved =
                        resolve_copy_from(from, self.names.len(), &|name| self.find_stage(name));
                    match resolved {
                        Ok(Some(stage)) => {
                            state.depends_on.insert(stage);
                        }
                        Ok(None) => {}
                        Err(message) => self.error(node, message),
                    }
                }
            }
            _ => {}
        }
        self.check_step(node, &expanded, state);
        Some(Step {
            start_line: node.start_line,
            end_line: node.end_line,
            source: node.original.clone(),
            instruction: expanded,
            raw: instruction.clone(),
            build_args,
            // Names not set at expansion time may come from the base image.
            unresolved: unmatched.into_iter().collect(),
        })
    }

    /// The build checks of one step.
    fn check_step(&mut self, node: &Node, expanded: &Instruction, state: &mut StageState) {
        match expanded {
            Instruction::Workdir(dir) => {
                if !dir.starts_with('/') && !state.workdir_set {
                    self.warn(
                        node,
                        "WorkdirRelativePath",
                        format!("relative workdir {dir:?} can have unexpected results if the base image changes"),
                    );
                }
                state.workdir_set = true;
            }
            Instruction::Maintainer(_) => self.warn(
                node,
                "MaintainerDeprecated",
                "MAINTAINER instruction is deprecated in favor of using label",
            ),
            Instruction::Cmd(Command::Shell(_)) | Instruction::Entrypoint(Command::Shell(_)) => {
                self.warn(
                    node,
                    "JSONArgsRecommended",
                    format!(
                        "JSON arguments recommended for {} to prevent unintended behavior related to OS signals",
                        node.keyword.to_ascii_uppercase()
                    ),
                );
            }
            _ => {}
        }
        let single = match expanded {
            Instruction::Cmd(_) => "CMD",
            Instruction::Entrypoint(_) => "ENTRYPOINT",
            Instruction::Healthcheck(_) => "HEALTHCHECK",
            _ => return,
        };
        let count = state.seen_single.entry(single).or_insert(0);
        *count += 1;
        if *count == 2 {
            self.warn(
                node,
                "MultipleInstructionsDisallowed",
                format!("multiple {single} instructions should not be used in the same stage because only the last one will be used"),
            );
        }
    }
}

/// Why `name` is not an image reference, in the words of BuildKit's parser
/// (distribution/reference's `ParseNormalizedNamed`), or `None` if it is one:
/// `[host[:port]/]path[:tag][@algorithm:hex]`, a lowercase path.
pub(super) fn reference_error(name: &str) -> Option<String> {
    if name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Some(format!(
            "invalid repository name ({name}), cannot specify 64-byte hexadecimal strings"
        ));
    }
    // Docker's domain split: the first component is a registry if it looks
    // like one (a dot, a port, localhost, or uppercase letters).
    let (domain, remainder) = match name.split_once('/') {
        None => ("docker.io", format!("library/{name}")),
        Some((first, rest))
            if first == "localhost"
                || first.contains(['.', ':'])
                || first.to_lowercase() != first =>
        {
            let domain = if first == "index.docker.io" {
                "docker.io"
            } else {
                first
            };
            (domain, rest.to_string())
        }
        Some(_) => ("docker.io", name.to_string()),
    };
    let remainder = if domain == "docker.io" && !remainder.contains('/') {
        format!("library/{remainder}")
    } else {
        remainder
    };
    let remote = remainder.split(':').next().unwrap_or_default();
    if remote.to_lowercase() != remote {
        return Some(format!(
            "invalid reference format: repository name ({remote}) must be lowercase"
        ));
    }
    let full = format!("{domain}/{remainder}");
    let Some((path, digest)) = match_reference(&full) else {
        return Some(if match_reference(&full.to_lowercase()).is_some() {
            "repository name must be lowercase".to_string()
        } else {
            "invalid reference format".to_string()
        });
    };
    if path.len() > 255 {
        return Some("repository name must not be more than 255 characters".to_string());
    }
    digest.and_then(digest_error).map(str::to_string)
}

/// Matches distribution/reference's anchored reference grammar; gives the
/// repository path and the digest, if any.
fn match_reference(text: &str) -> Option<(&str, Option<&str>)> {
    let (rest, digest) = match text.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (text, None),
    };
    if digest.is_some_and(|d| !digest_syntax(d)) {
        return None;
    }
    // A ':' whose remainder has no '/' starts the tag; any other ':' is a port.
    let name = match rest.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => {
            let mut chars = tag.chars();
            let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
            let valid = chars.next().is_some_and(word)
                && tag.len() <= 128
                && chars.all(|c| word(c) || c == '.' || c == '-');
            if !valid {
                return None;
            }
            name
        }
        _ => rest,
    };
    let path = match name.split_once('/') {
        Some((domain, path)) if domain_syntax(domain) && path.split('/').all(path_component) => {
            path
        }
        _ if name.split('/').all(path_component) => name,
        _ => return None,
    };
    Some((path, digest))
}

/// `[a-z0-9]+` runs joined by `.`, `_`, `__` or any number of `-`.
fn path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !bytes.first().is_some_and(|b| alnum(*b)) || !bytes.last().is_some_and(|b| alnum(*b)) {
        return false;
    }
    component
        .split(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        .filter(|separator| !separator.is_empty())
        .all(|separator| {
            matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-')
        })
}

/// A host name, dotted labels of letters, digits and inner `-`, or a
/// bracketed IPv6 address, with an optional numeric port.
fn domain_syntax(domain: &str) -> bool {
    let (host, port) = if let Some(inner) = domain.strip_prefix('[') {
        let Some((address, after)) = inner.split_once(']') else {
            return false;
        };
        if address.is_empty() || !address.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return false;
        }
        ("", after)
    } else {
        let host = domain.split(':').next().unwrap_or_default();
        (host, &domain[host.len()..])
    };
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let label = |label: &str| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    port_ok && (domain.starts_with('[') || host.split('.').all(label))
}

/// The digest grammar of references: an algorithm (letter-led words joined
/// by `-`, `_`, `+` or `.`), `:`, and at least 32 hex digits.
fn digest_syntax(digest: &str) -> bool {
    let Some((algorithm, hex)) = digest.split_once(':') else {
        return false;
    };
    let word = |w: &str| {
        let mut chars = w.chars();
        chars.next().is_some_and(|c| c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric())
    };
    algorithm.split(['-', '_', '+', '.']).all(word)
        && hex.len() >= 32
        && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// What go-digest says of a digest that has the reference grammar's shape.
fn digest_error(digest: &str) -> Option<&'static str> {
    let (algorithm, hex) = digest.split_once(':')?;
    let size = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        // go-digest's own digest grammar has lowercase algorithms only.
        _ if algorithm.bytes().any(|b| b.is_ascii_uppercase()) => {
            return Some("invalid checksum digest format");
        }
        _ => return Some("unsupported digest algorithm"),
    };
    if hex.len() != size {
        Some("invalid checksum digest length")
    } else if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Some("invalid checksum digest format")
    } else {
        None
    }
}
