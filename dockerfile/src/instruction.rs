//! Typed instructions: each parse-tree [`Node`] checked (argument count,
//! flags, forms) and turned into an [`Instruction`], and the word expansion
//! each instruction gets.

use super::ast::{Heredoc, Node};
use super::diagnostic::suggest;
use super::heredoc::{chomp_content, parse_heredoc};
use super::parser::INSTRUCTIONS;
use super::shell::{Environment, ExpandError, Lexer};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// A command as CMD, ENTRYPOINT, RUN and HEALTHCHECK take it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Command {
    /// Exec form: the program and its arguments.
    Exec(Vec<String>),
    /// Shell form: one string run through the stage's SHELL.
    Shell(String),
}

impl Command {
    /// The argument vector: exec form as is, shell form appended to `shell`.
    pub fn argv(&self, shell: &[String]) -> Vec<String> {
        match self {
            Command::Exec(args) => args.clone(),
            Command::Shell(line) => {
                let mut argv = shell.to_vec();
                argv.push(line.clone());
                argv
            }
        }
    }
}

/// `name=value` of ENV and LABEL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    /// The name.
    pub key: String,
    /// The value.
    pub value: String,
}

/// One name of an ARG, with its default if given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArgDecl {
    /// The name.
    pub name: String,
    /// The default value (`ARG name=default`).
    pub default: Option<String>,
}

/// `FROM [--platform=p] image [AS name]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct From {
    /// The image reference, stage name, or `scratch`.
    pub image: String,
    /// `--platform`, if given.
    pub platform: Option<String>,
    /// The stage name after `AS`, lowercased.
    pub name: Option<String>,
}

/// `RUN [--mount=…] [--network=…] [--security=…] command`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    /// The command.
    pub command: Command,
    /// The heredocs the command line opens; their content feeds the command.
    pub heredocs: Vec<Heredoc>,
    /// Each `--mount` value, e.g. `type=cache,target=/root/.cache`.
    pub mounts: Vec<String>,
    /// `--network` (`default`, `none`, `host`).
    pub network: Option<String>,
    /// `--security` (`sandbox`, `insecure`).
    pub security: Option<String>,
}

/// Where COPY and ADD take one source from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// A path (or URL, or git address, for ADD), possibly with wildcards.
    Path(String),
    /// An inline file from a heredoc; `name` becomes the file name.
    Heredoc {
        /// The heredoc word, used as the file name.
        name: String,
        /// The file content (tabs already stripped for `<<-`).
        content: String,
        /// Whether variables in the content are expanded.
        expand: bool,
    },
}

/// COPY or ADD.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    /// The sources, in order.
    pub sources: Vec<Source>,
    /// The destination.
    pub dest: String,
    /// `--from=<stage|index|image>` (COPY only).
    pub from: Option<String>,
    /// `--chown=user[:group]`.
    pub chown: Option<String>,
    /// `--chmod=mode`.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// `--parents` (COPY only).
    pub parents: bool,
    /// Each `--exclude` pattern.
    pub exclude: Vec<String>,
    /// `--checksum=sha256:…` (ADD only).
    pub checksum: Option<String>,
    /// `--keep-git-dir` (ADD only).
    pub keep_git_dir: bool,
    /// `--unpack=true|false` (ADD only): whether local archives are extracted.
    pub unpack: Option<bool>,
}

/// HEALTHCHECK.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: disable any inherited check.
    None,
    /// `HEALTHCHECK [options] CMD command`; durations are nanoseconds.
    Check {
        /// The command (`CMD-SHELL` when shell form).
        test: Command,
        /// `--interval`.
        interval: Option<u64>,
        /// `--timeout`.
        timeout: Option<u64>,
        /// `--start-period`.
        start_period: Option<u64>,
        /// `--start-interval`.
        start_interval: Option<u64>,
        /// `--retries`.
        retries: Option<u32>,
    },
}

/// A typed instruction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "instruction", content = "value", rename_all = "lowercase")]
pub enum Instruction {
    /// FROM.
    From(From),
    /// ARG.
    Arg(Vec<ArgDecl>),
    /// ENV.
    Env(Vec<KeyValue>),
    /// LABEL.
    Label(Vec<KeyValue>),
    /// RUN.
    Run(Run),
    /// CMD.
    Cmd(Command),
    /// ENTRYPOINT.
    Entrypoint(Command),
    /// COPY.
    Copy(Transfer),
    /// ADD.
    Add(Transfer),
    /// WORKDIR.
    Workdir(String),
    /// USER.
    User(String),
    /// EXPOSE, one entry per port (`80`, `53/udp`).
    Expose(Vec<String>),
    /// VOLUME.
    Volume(Vec<String>),
    /// SHELL (exec form only).
    Shell(Vec<String>),
    /// STOPSIGNAL.
    Stopsignal(String),
    /// HEALTHCHECK.
    Healthcheck(Healthcheck),
    /// ONBUILD: the trigger instruction as written; it is parsed, checked and
    /// expanded when it fires in a build based on this image.
    Onbuild(String),
    /// MAINTAINER (deprecated; becomes a label-free author field).
    Maintainer(String),
}

/// Why a node is not a valid instruction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InstructionError {
    /// What is wrong.
    pub message: String,
    /// The word of the instruction line at fault (a flag, the keyword), if one is.
    pub token: Option<String>,
}

impl InstructionError {
    fn at(token: &str, message: String) -> Self {
        InstructionError {
            message,
            token: Some(token.to_string()),
        }
    }
}

impl std::convert::From<String> for InstructionError {
    fn from(message: String) -> Self {
        InstructionError {
            message,
            token: None,
        }
    }
}

/// The flags one instruction accepts.
struct FlagSpec {
    strings: &'static [&'static str],
    multi: &'static [&'static str],
    bools: &'static [&'static str],
}

/// Flags parsed from `--name=value` words.
#[derive(Default)]
struct Flags {
    values: Vec<(String, String)>,
}

impl Flags {
    fn parse(keyword: &str, words: &[String], spec: &FlagSpec) -> Result<Flags, InstructionError> {
        let mut flags = Flags::default();
        for word in words {
            let Some(body) = word.strip_prefix("--") else {
                return Err(InstructionError::at(
                    word,
                    format!("{keyword}: flag should start with --: {word}"),
                ));
            };
            let (name, value) = match body.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (body, None),
            };
            let flag = format!("--{name}");
            let known: Vec<&str> = spec
                .strings
                .iter()
                .chain(spec.multi)
                .chain(spec.bools)
                .copied()
                .collect();
            if !known.contains(&name) {
                let mut message = format!("unknown flag: --{name} for {keyword}");
                if known.is_empty() {
                    message.push_str(&format!(" ({keyword} takes no flags)"));
                } else {
                    let names: Vec<String> = known.iter().map(|k| format!("--{k}")).collect();
                    message.push_str(&format!(" (it takes {})", names.join(", ")));
                }
                return Err(InstructionError::at(&flag, message));
            }
            let value = if spec.bools.contains(&name) {
                match value.map(str::to_ascii_lowercase).as_deref() {
                    None | Some("true") => "true".to_string(),
                    Some("false") => "false".to_string(),
                    Some(other) => {
                        return Err(InstructionError::at(
                            &flag,
                            format!("{keyword}: --{name} expects true or false, not {other:?}"),
                        ));
                    }
                }
            } else {
                match value {
                    Some(value) => value.to_string(),
                    None => {
                        return Err(InstructionError::at(
                            &flag,
                            format!("{keyword}: missing a value on flag --{name}"),
                        ));
                    }
                }
            };
            if !spec.multi.contains(&name) && flags.values.iter().any(|(n, _)| n == name) {
                return Err(InstructionError::at(
                    &flag,
                    format!("{keyword}: duplicate flag specified: --{name}"),
                ));
            }
            flags.values.push((name.to_string(), value));
        }
        Ok(flags)
    }

    fn string(&self, name: &str) -> Option<String> {
        self.values
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }

    fn all(&self, name: &str) -> Vec<String> {
        self.values
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    fn bool(&self, name: &str) -> bool {
        self.string(name).is_some_and(|v| v == "true")
    }
}

/// The modes `RUN --network` takes (BuildKit's list).
const NETWORK_MODES: &[&str] = &["default", "none", "host"];

/// The modes `RUN --security` takes (BuildKit's list).
const SECURITY_MODES: &[&str] = &["sandbox", "insecure"];

/// The word of `node` that set flag `name`, to point a diagnostic at it.
fn flag_word(node: &Node, name: &str) -> String {
    let prefix = format!("--{name}");
    node.flags
        .iter()
        .find(|word| {
            word.strip_prefix(&prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('='))
        })
        .cloned()
        .unwrap_or(prefix)
}

/// Checks the fields of a `RUN --mount` value as BuildKit does before any
/// expansion: every field is `key=value`, except the boolean keys `ro`,
/// `readonly`, `rw` and `readwrite`, and `required` on a secret or ssh
/// mount. So SELinux's `z` or an empty field (`a,,b`, a trailing comma) is
/// an error. Fields are split on every comma, as the engine splits them.
fn check_mount_fields(mount: &str) -> Result<(), String> {
    // BuildKit judges `required` by the type set so far; bind is the default.
    let mut kind = "bind".to_string();
    for field in mount.split(',') {
        if let Some((key, value)) = field.split_once('=') {
            if key.eq_ignore_ascii_case("type") {
                kind = value.to_ascii_lowercase();
            }
            continue;
        }
        match field.to_ascii_lowercase().as_str() {
            "ro" | "readonly" | "rw" | "readwrite" => {}
            // A type from a variable is known only after expansion.
            "required" if matches!(kind.as_str(), "secret" | "ssh") || kind.contains('$') => {}
            "required" => {
                return Err(format!("unexpected key 'required' for mount type '{kind}'"));
            }
            _ => {
                return Err(format!("invalid field '{field}' must be a key=value pair"));
            }
        }
    }
    Ok(())
}

const NO_FLAGS: FlagSpec = FlagSpec {
    strings: &[],
    multi: &[],
    bools: &[],
};

fn command_of(node: &Node) -> Command {
    if node.json {
        Command::Exec(node.args.clone())
    } else {
        Command::Shell(node.args.first().cloned().unwrap_or_default())
    }
}

fn key_values(node: &Node) -> Vec<KeyValue> {
    node.args
        .chunks(3)
        .map(|triple| KeyValue {
            key: triple[0].clone(),
            value: triple.get(1).cloned().unwrap_or_default(),
        })
        .collect()
}

/// Parses a Go duration (`1m30s`, `500ms`, `1.5h`) into nanoseconds.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let invalid = || format!("invalid duration {text:?}: expected e.g. 30s, 1m30s, 500ms");
    if text == "0" {
        return Ok(0);
    }
    let mut rest = text;
    let mut total: f64 = 0.0;
    if rest.is_empty() {
        return Err(invalid());
    }
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(invalid)?;
        if number_len == 0 {
            return Err(invalid());
        }
        let number: f64 = rest[..number_len].parse().map_err(|_| invalid())?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(invalid()),
        };
        total += number * scale;
        rest = &rest[unit_len..];
    }
    if total > u64::MAX as f64 {
        return Err(invalid());
    }
    Ok(total as u64)
}

impl Instruction {
    /// Checks a node and gives it its type. Errors say what is wrong with the
    /// instruction; the caller adds the location.
    pub fn from_node(node: &Node) -> Result<Instruction, InstructionError> {
        let name = node.name();
        let keyword = name.to_ascii_uppercase();
        let require_args = |min: usize| -> Result<(), String> {
            if node.args.len() < min {
                Err(match min {
                    1 => format!("{keyword} requires at least one argument"),
                    2 => format!("{keyword} requires at least two arguments"),
                    n => format!("{keyword} requires at least {n} arguments"),
                })
            } else {
                Ok(())
            }
        };
        let no_flags = || Flags::parse(&keyword, &node.flags, &NO_FLAGS).map(|_| ());
        Ok(match name.as_str() {
            "from" => {
                let flags = Flags::parse(
                    &keyword,
                    &node.flags,
                    &FlagSpec {
                        strings: &["platform"],
                        multi: &[],
                        bools: &[],
                    },
                )?;
                let name = match node.args.as_slice() {
                    [_] => None,
                    [_, as_word, stage] if as_word.eq_ignore_ascii_case("as") => {
                        if !valid_stage_name(stage) {
                            return Err(format!(
                                "invalid name for build stage: {stage:?}, name can't start with a number or contain symbols"
                            ).into());
                        }
                        Some(stage.to_ascii_lowercase())
                    }
                    _ => {
                        return Err("FROM requires either one or three arguments"
                            .to_string()
                            .into());
                    }
                };
                Instruction::From(From {
                    image: node.args[0].clone(),
                    platform: flags.string("platform"),
                    name,
                })
            }
            "arg" => {
                no_flags()?;
                require_args(1)?;
                let mut decls = Vec::new();
                for word in &node.args {
                    let (name, default) = match word.split_once('=') {
                        Some((name, value)) => (name.to_string(), Some(value.to_string())),
                        None => (word.clone(), None),
                    };
                    if name.is_empty() {
                        return Err("ARG names can not be blank".to_string().into());
                    }
                    decls.push(ArgDecl { name, default });
                }
                Instruction::Arg(decls)
            }
            "env" | "label" => {
                no_flags()?;
                if node.args.is_empty() {
                    return Err(format!("{keyword} requires at least one argument").into());
                }
                let pairs = key_values(node);
                if pairs.iter().any(|kv| kv.key.is_empty()) {
                    return Err(format!("{keyword} names can not be blank").into());
                }
                if name == "env" {
                    Instruction::Env(pairs)
                } else {
                    Instruction::Label(pairs)
                }
            }
            "run" => {
                let flags = Flags::parse(
                    &keyword,
                    &node.flags,
                    &FlagSpec {
                        strings: &["network", "security"],
                        multi: &["mount"],
                        bools: &[],
                    },
                )?;
                // A bare RUN is an empty shell-form command, as in BuildKit:
                // no argument count to check.
                let network = flags.string("network");
                if let Some(mode) = network.as_deref()
                    && !NETWORK_MODES.contains(&mode)
                {
                    return Err(InstructionError::at(
                        &flag_word(node, "network"),
                        format!(
                            "invalid network mode {mode:?} (RUN --network takes {})",
                            NETWORK_MODES.join(", ")
                        ),
                    ));
                }
                let security = flags.string("security");
                if let Some(mode) = security.as_deref()
                    && !SECURITY_MODES.contains(&mode)
                {
                    return Err(InstructionError::at(
                        &flag_word(node, "security"),
                        format!(
                            "security {mode:?} is not valid (RUN --security takes {})",
                            SECURITY_MODES.join(", ")
                        ),
                    ));
                }
                let mounts = flags.all("mount");
                for mount in &mounts {
                    check_mount_fields(mount).map_err(|message| {
                        InstructionError::at(&format!("--mount={mount}"), message)
                    })?;
                }
                Instruction::Run(Run {
                    command: command_of(node),
                    heredocs: node
                        .heredocs
                        .iter()
                        .map(|h| Heredoc {
                            content: if h.chomp {
                                chomp_content(&h.content)
                            } else {
                                h.content.clone()
                            },
                            ..h.clone()
                        })
                        .collect(),
                    mounts,
                    network,
                    security,
                })
            }
            "cmd" | "entrypoint" => {
                no_flags()?;
                let command = command_of(node);
                if name == "cmd" {
                    Instruction::Cmd(command)
                } else {
                    Instruction::Entrypoint(command)
                }
            }
            "copy" | "add" => transfer(node, &keyword)?,
            "workdir" | "user" | "stopsignal" | "maintainer" => {
                no_flags()?;
                let Some(value) = node.args.first().cloned() else {
                    return Err(format!("{keyword} requires exactly one argument").into());
                };
                match name.as_str() {
                    "workdir" => Instruction::Workdir(value),
                    "user" => Instruction::User(value),
                    "stopsignal" => Instruction::Stopsignal(value),
                    _ => Instruction::Maintainer(value),
                }
            }
            "expose" => {
                no_flags()?;
                require_args(1)?;
                Instruction::Expose(node.args.clone())
            }
            "volume" => {
                no_flags()?;
                require_args(1)?;
                Instruction::Volume(node.args.clone())
            }
            "shell" => {
                no_flags()?;
                if !node.json {
                    return Err("SHELL requires the arguments to be in JSON form"
                        .to_string()
                        .into());
                }
                require_args(1)?;
                Instruction::Shell(node.args.clone())
            }
            "healthcheck" => healthcheck(node, &keyword)?,
            "onbuild" => {
                no_flags()?;
                let Some(child) = &node.child else {
                    return Err("ONBUILD requires at least one argument".to_string().into());
                };
                // The trigger must itself be a valid instruction.
                Instruction::from_node(child)?;
                let text = node.original.trim_start();
                let trigger = text
                    .get(node.keyword.len()..)
                    .unwrap_or_default()
                    .trim()
                    .to_string();
                Instruction::Onbuild(trigger)
            }
            _ => {
                let mut message = format!("unknown instruction: {}", node.keyword);
                if let Some(candidate) = suggest(&name, INSTRUCTIONS.iter().copied()) {
                    message.push_str(&format!(
                        " (did you mean {}?)",
                        candidate.to_ascii_uppercase()
                    ));
                }
                return Err(InstructionError::at(&node.keyword, message));
            }
        })
    }

    /// The instruction with its words expanded in `env`, for the instructions
    /// that expand (ADD, ARG, COPY, ENV, EXPOSE, FROM, LABEL, STOPSIGNAL,
    /// USER, VOLUME, WORKDIR, and RUN's `--mount` values); the others are
    /// returned unchanged. Also returns the variable names that were found and
    /// those that were not set.
    pub fn expand(
        &self,
        lexer: &Lexer,
        env: &dyn Environment,
    ) -> Result<(Instruction, BTreeSet<String>, BTreeSet<String>), ExpandError> {
        let mut matched = BTreeSet::new();
        let mut unmatched = BTreeSet::new();
        let mut word = |text: &str| -> Result<String, ExpandError> {
            let expansion = lexer.expand(text, env)?;
            matched.extend(expansion.matched);
            unmatched.extend(expansion.unmatched);
            Ok(expansion.word)
        };
        let expanded = match self {
            Instruction::From(from) => Instruction::From(From {
                image: word(&from.image)?,
                platform: from.platform.as_deref().map(&mut word).transpose()?,
                name: from.name.clone(),
            }),
            Instruction::Arg(decls) => Instruction::Arg(
                decls
                    .iter()
                    .map(|d| {
                        Ok(ArgDecl {
                            name: word(&d.name)?,
                            default: d.default.as_deref().map(&mut word).transpose()?,
                        })
                    })
                    .collect::<Result<_, ExpandError>>()?,
            ),
            Instruction::Env(pairs) => Instruction::Env(expand_pairs(pairs, &mut word)?),
            Instruction::Label(pairs) => Instruction::Label(expand_pairs(pairs, &mut word)?),
            Instruction::Run(run) => Instruction::Run(Run {
                mounts: run
                    .mounts
                    .iter()
                    .map(|m| word(m))
                    .collect::<Result<_, _>>()?,
                ..run.clone()
            }),
            Instruction::Copy(t) => Instruction::Copy(expand_transfer(t, &mut word)?),
            Instruction::Add(t) => Instruction::Add(expand_transfer(t, &mut word)?),
            Instruction::Workdir(v) => Instruction::Workdir(word(v)?),
            Instruction::User(v) => Instruction::User(word(v)?),
            Instruction::Stopsignal(v) => Instruction::Stopsignal(word(v)?),
            Instruction::Volume(volumes) => {
                Instruction::Volume(volumes.iter().map(|v| word(v)).collect::<Result<_, _>>()?)
            }
            Instruction::Expose(ports) => {
                let mut out = Vec::new();
                for port in ports {
                    let expansion = lexer.expand(port, env)?;
                    matched.extend(expansion.matched);
                    unmatched.extend(expansion.unmatched);
                    out.extend(expansion.words);
                }
                Instruction::Expose(out)
            }
            other => other.clone(),
        };
        Ok((expanded, matched, unmatched))
    }
}

fn expand_pairs(
    pairs: &[KeyValue],
    word: &mut impl FnMut(&str) -> Result<String, ExpandError>,
) -> Result<Vec<KeyValue>, ExpandError> {
    pairs
        .iter()
        .map(|kv| {
            Ok(KeyValue {
                key: word(&kv.key)?,
                value: word(&kv.value)?,
            })
        })
        .collect()
}

fn expand_transfer(
    transfer: &Transfer,
    word: &mut impl FnMut(&str) -> Result<String, ExpandError>,
) -> Result<Transfer, ExpandError> {
    let mut out = transfer.clone();
    for source in &mut out.sources {
        if let Source::Path(path) = source {
            *path = word(path)?;
        }
    }
    out.dest = word(&transfer.dest)?;
    out.chown = transfer.chown.as_deref().map(&mut *word).transpose()?;
    out.chmod = transfer.chmod.as_deref().map(&mut *word).transpose()?;
    out.checksum = transfer.checksum.as_deref().map(&mut *word).transpose()?;
    out.exclude = transfer
        .exclude
        .iter()
        .map(|e| word(e))
        .collect::<Result<_, _>>()?;
    Ok(out)
}

/// Stage names: a letter first, then letters, digits, `-`, `_` and `.`.
fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn transfer(node: &Node, keyword: &str) -> Result<Instruction, InstructionError> {
    let is_copy = keyword == "COPY";
    let spec = if is_copy {
        FlagSpec {
            strings: &["from", "chown", "chmod"],
            multi: &["exclude"],
            bools: &["link", "parents"],
        }
    } else {
        FlagSpec {
            strings: &["chown", "chmod", "checksum", "unpack"],
            multi: &["exclude"],
            bools: &["link", "keep-git-dir"],
        }
    };
    let flags = Flags::parse(keyword, &node.flags, &spec)?;
    if node.args.len() < 2 {
        return Err(format!(
            "{keyword} requires at least two arguments, but only one was provided. Destination could not be determined"
        ).into());
    }
    let (dest, sources) = node.args.split_last().unwrap_or((&node.args[0], &[]));
    let mut heredocs = node.heredocs.iter();
    let mut parsed_sources = Vec::with_capacity(sources.len());
    for source in sources {
        let is_heredoc = !node.json && parse_heredoc(source).ok().flatten().is_some();
        let doc = if is_heredoc { heredocs.next() } else { None };
        match doc {
            Some(doc) => parsed_sources.push(Source::Heredoc {
                name: doc.name.clone(),
                content: if doc.chomp {
                    chomp_content(&doc.content)
                } else {
                    doc.content.clone()
                },
                expand: doc.expand,
            }),
            None => parsed_sources.push(Source::Path(source.clone())),
        }
    }
    let unpack = match flags.string("unpack").as_deref() {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(other) => {
            return Err(format!("ADD: --unpack expects true or false, not {other:?}").into());
        }
    };
    let transfer = Transfer {
        sources: parsed_sources,
        dest: dest.clone(),
        from: flags.string("from"),
        chown: flags.string("chown"),
        chmod: flags.string("chmod"),
        link: flags.bool("link"),
        parents: flags.bool("parents"),
        exclude: flags.all("exclude"),
        checksum: flags.string("checksum"),
        keep_git_dir: flags.bool("keep-git-dir"),
        unpack,
    };
    Ok(if is_copy {
        Instruction::Copy(transfer)
    } else {
        Instruction::Add(transfer)
    })
}

fn healthcheck(node: &Node, keyword: &str) -> Result<Instruction, InstructionError> {
    let flags = Flags::parse(
        keyword,
        &node.flags,
        &FlagSpec {
            strings: &[
                "interval",
                "timeout",
                "start-period",
                "start-interval",
                "retries",
            ],
            multi: &[],
            bools: &[],
        },
    )?;
    let Some(kind) = node.args.first() else {
        return Err("HEALTHCHECK requires an argument: NONE or CMD"
            .to_string()
            .into());
    };
    match kind.to_ascii_uppercase().as_str() {
        "NONE" => {
            if node.args.len() > 1 {
                return Err("HEALTHCHECK NONE takes no arguments".to_string().into());
            }
            if !node.flags.is_empty() {
                return Err("HEALTHCHECK NONE takes no options".to_string().into());
            }
            Ok(Instruction::Healthcheck(Healthcheck::None))
        }
        "CMD" => {
            let rest = &node.args[1..];
            if rest.is_empty() {
                return Err("missing command after HEALTHCHECK CMD".to_string().into());
            }
            let test = if node.json {
                Command::Exec(rest.to_vec())
            } else {
                Command::Shell(rest[0].clone())
            };
            let duration = |name: &str| -> Result<Option<u64>, String> {
                flags
                    .string(name)
                    .map(|v| {
                        let nanos =
                            parse_duration(&v).map_err(|e| format!("HEALTHCHECK --{name}: {e}"))?;
                        if nanos != 0 && nanos < 1_000_000 {
                            return Err(format!("HEALTHCHECK --{name} cannot be less than 1ms"));
                        }
                        Ok(nanos)
                    })
                    .transpose()
            };
            let retries = flags
                .string("retries")
                .map(|v| {
                    v.parse::<u32>().map_err(|_| {
                        format!("HEALTHCHECK --retries must be a whole number, not {v:?}")
                    })
                })
                .transpose()?;
            Ok(Instruction::Healthcheck(Healthcheck::Check {
                test,
                interval: duration("interval")?,
                timeout: duration("timeout")?,
                start_period: duration("start-period")?,
                start_interval: duration("start-interval")?,
                retries,
            }))
        }
        other => Err(format!("unknown type {other:?} in HEALTHCHECK (try CMD)").into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;
    use std::collections::BTreeMap;

    fn typed(line: &str) -> Result<Instruction, String> {
        let parsed = parse(&format!("FROM a\n{line}\n"), "Dockerfile").map_err(|d| d.message)?;
        Instruction::from_node(&parsed.nodes[1]).map_err(|e| e.message)
    }

    #[test]
    fn flag_table() {
        let cases = [
            ("COPY --from=build /a /b", Ok(())),
            ("COPY --link --parents a b", Ok(())),
            ("COPY --link=false a b", Ok(())),
            ("COPY --exclude=*.md --exclude=x a b", Ok(())),
            (
                "COPY --bogus a b",
                Err(
                    "unknown flag: --bogus for COPY (it takes --from, --chown, --chmod, --exclude, --link, --parents)",
                ),
            ),
            (
                "COPY --from a b",
                Err("COPY: missing a value on flag --from"),
            ),
            (
                "COPY --from=a --from=b a b",
                Err("COPY: duplicate flag specified: --from"),
            ),
            (
                "COPY --link=maybe a b",
                Err("COPY: --link expects true or false, not \"maybe\""),
            ),
            ("ADD --checksum=sha256:0 https://x/y /y", Ok(())),
            (
                "ADD --from=x a b",
                Err(
                    "unknown flag: --from for ADD (it takes --chown, --chmod, --checksum, --unpack, --exclude, --link, --keep-git-dir)",
                ),
            ),
            (
                "RUN --mount=type=cache,target=/c --network=none true",
                Ok(()),
            ),
            // A bare RUN is an empty shell command; BuildKit accepts it.
            ("RUN", Ok(())),
            ("RUN --network=none", Ok(())),
            ("RUN --network=host true", Ok(())),
            ("RUN --network=default true", Ok(())),
            (
                "RUN --network=bridge true",
                Err("invalid network mode \"bridge\" (RUN --network takes default, none, host)"),
            ),
            (
                "RUN --network= true",
                Err("invalid network mode \"\" (RUN --network takes default, none, host)"),
            ),
            (
                "RUN --network=$NET true",
                Err("invalid network mode \"$NET\" (RUN --network takes default, none, host)"),
            ),
            ("RUN --security=insecure true", Ok(())),
            (
                "RUN --security=privileged true",
                Err(
                    "security \"privileged\" is not valid (RUN --security takes sandbox, insecure)",
                ),
            ),
            // Fields without `=`: BuildKit's booleans pass, anything else fails.
            ("RUN --mount=type=bind,target=/s,ro true", Ok(())),
            ("RUN --mount=target=/s,RW true", Ok(())),
            ("RUN --mount=type=cache,target=/c,readonly true", Ok(())),
            ("RUN --mount=type=cache,target=/c,readwrite true", Ok(())),
            ("RUN --mount=type=secret,id=t,required true", Ok(())),
            ("RUN --mount=type=ssh,required true", Ok(())),
            ("RUN --mount=type=$T,id=t,required true", Ok(())),
            ("RUN --mount=type=secret,id=t,required=true true", Ok(())),
            (
                "RUN --mount=type=bind,source=/s,target=/t,z true",
                Err("invalid field 'z' must be a key=value pair"),
            ),
            (
                "RUN --mount=type=bind,target=/t,Z true",
                Err("invalid field 'Z' must be a key=value pair"),
            ),
            (
                "RUN --mount=type=cache,target=/c, true",
                Err("invalid field '' must be a key=value pair"),
            ),
            (
                "RUN --mount=type=cache,,target=/c true",
                Err("invalid field '' must be a key=value pair"),
            ),
            (
                "RUN --mount=type=cache,target=/c,$OPTS true",
                Err("invalid field '$OPTS' must be a key=value pair"),
            ),
            (
                "RUN --mount=required,type=secret,id=t true",
                Err("unexpected key 'required' for mount type 'bind'"),
            ),
            (
                "RUN --mount=type=cache,target=/c,required true",
                Err("unexpected key 'required' for mount type 'cache'"),
            ),
            (
                "ONBUILD RUN --mount=type=bind,target=/t,z true",
                Err("invalid field 'z' must be a key=value pair"),
            ),
            (
                "WORKDIR --x=1 /a",
                Err("unknown flag: --x for WORKDIR (WORKDIR takes no flags)"),
            ),
            ("HEALTHCHECK --interval=5s --retries=3 CMD true", Ok(())),
            (
                "HEALTHCHECK --interval=5x CMD true",
                Err(
                    "HEALTHCHECK --interval: invalid duration \"5x\": expected e.g. 30s, 1m30s, 500ms",
                ),
            ),
            ("HEALTHCHECK NONE", Ok(())),
            (
                "HEALTHCHECK NONE x",
                Err("HEALTHCHECK NONE takes no arguments"),
            ),
            (
                "HEALTHCHECK FOO",
                Err("unknown type \"FOO\" in HEALTHCHECK (try CMD)"),
            ),
            (
                "COPY a",
                Err(
                    "COPY requires at least two arguments, but only one was provided. Destination could not be determined",
                ),
            ),
            (
                "SHELL sh -c",
                Err("SHELL requires the arguments to be in JSON form"),
            ),
            (
                "FROM a b",
                Err("FROM requires either one or three arguments"),
            ),
            (
                "RUNN x",
                Err("unknown instruction: RUNN (did you mean RUN?)"),
            ),
            ("frobnicate x", Err("unknown instruction: frobnicate")),
            (
                "ONBUILD CPY a b",
                Err("unknown instruction: CPY (did you mean COPY?)"),
            ),
            (
                "FROM a AS 1x",
                Err(
                    "invalid name for build stage: \"1x\", name can't start with a number or contain symbols",
                ),
            ),
            // Stage names: BuildKit's ^[a-z][a-z0-9-_.]*$ after lowercasing,
            // on the name as written (it is never expanded).
            ("FROM a AS my-stage_1.0", Ok(())),
            ("FROM a AS Build", Ok(())),
            (
                "FROM a AS $NAME",
                Err(
                    "invalid name for build stage: \"$NAME\", name can't start with a number or contain symbols",
                ),
            ),
            (
                "FROM a AS web/app",
                Err(
                    "invalid name for build stage: \"web/app\", name can't start with a number or contain symbols",
                ),
            ),
            (
                "FROM a AS _x",
                Err(
                    "invalid name for build stage: \"_x\", name can't start with a number or contain symbols",
                ),
            ),
            (
                "ONBUILD COPY --bogus a b",
                Err(
                    "unknown flag: --bogus for COPY (it takes --from, --chown, --chmod, --exclude, --link, --parents)",
                ),
            ),
        ];
        for (line, expected) in cases {
            let got = typed(line).map(|_| ());
            assert_eq!(got, expected.map_err(str::to_string), "{line}");
        }
    }

    #[test]
    fn copy_heredoc_sources() {
        let parsed = parse(
            "FROM a\nCOPY <<-one two <<three /d/\n\tx\n\tone\ny\nthree\n",
            "Dockerfile",
        )
        .unwrap();
        let Instruction::Copy(copy) = Instruction::from_node(&parsed.nodes[1]).unwrap() else {
            panic!("not a COPY");
        };
        assert_eq!(
            copy.sources,
            [
                Source::Heredoc {
                    name: "one".into(),
                    content: "x\n".into(),
                    expand: true
                },
                Source::Path("two".into()),
                Source::Heredoc {
                    name: "three".into(),
                    content: "y\n".into(),
                    expand: true
                },
            ]
        );
        assert_eq!(copy.dest, "/d/");
    }

    #[test]
    fn expansion_applies_only_where_docker_expands() {
        let env: BTreeMap<String, String> = [
            ("V".to_string(), "x y".to_string()),
            ("P".to_string(), "80 443".to_string()),
        ]
        .into();
        let lexer = Lexer::new('\\');
        let expand = |line: &str| {
            let instruction = typed(line).unwrap();
            instruction.expand(&lexer, &env).unwrap().0
        };
        assert_eq!(expand("RUN echo $V"), typed("RUN echo $V").unwrap());
        assert_eq!(expand("CMD echo $V"), typed("CMD echo $V").unwrap());
        assert_eq!(expand("WORKDIR /$V"), Instruction::Workdir("/x y".into()));
        assert_eq!(
            expand("EXPOSE $P 22"),
            Instruction::Expose(vec!["80".into(), "443".into(), "22".into()])
        );
        assert_eq!(
            expand("ENV A=$V B=\"$V\""),
            Instruction::Env(vec![
                KeyValue {
                    key: "A".into(),
                    value: "x y".into()
                },
                KeyValue {
                    key: "B".into(),
                    value: "x y".into()
                },
            ])
        );
        assert_eq!(
            expand("ONBUILD RUN echo $V"),
            Instruction::Onbuild("RUN echo $V".into())
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_duration("1.5h"), Ok(5_400_000_000_000));
        assert_eq!(parse_duration("250ms"), Ok(250_000_000));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("s").is_err());
    }
}
