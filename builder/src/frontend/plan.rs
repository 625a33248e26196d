//! The build plan: stages with their bases, ARG scoping, build args and the
//! automatic platform args, `--target` pruning, the stage dependency graph,
//! and every step with its expanded arguments and the build args it used.
//!
//! The plan is plain, serialisable data. The build engine executes it and
//! makes cache keys from it; it never needs to look at the Dockerfile again.
//! Words that refer to variables the plan cannot know (the base image's
//! environment) are listed per step in [`Step::unresolved`]; the engine
//! re-expands [`Step::raw`] with the full environment when that list is not
//! empty.

use super::ast::{Dockerfile, Node};
use super::diagnostic::{Diagnostic, Severity, suggest};
use super::instruction::{Command, Instruction};
use super::platform::Platform;
use super::shell::{Environment, Lexer};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// The build args Docker passes to RUN without an ARG declaration.
pub const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// The default SHELL of Linux images.
pub const DEFAULT_SHELL: &[&str] = &["/bin/sh", "-c"];

/// What the caller chose for this build.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanOptions {
    /// `--build-arg NAME=VALUE`.
    pub build_args: BTreeMap<String, String>,
    /// `--target STAGE`; the last stage when not given.
    pub target: Option<String>,
    /// `--platform`; the build platform when not given.
    pub target_platform: Option<Platform>,
    /// The platform the build runs on; the host when not given.
    pub build_platform: Option<Platform>,
}

/// What a stage starts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Base {
    /// `FROM scratch`: an empty filesystem.
    Scratch,
    /// An image from a registry or the local store.
    Image {
        /// The reference as written after expansion.
        reference: String,
    },
    /// An earlier stage of the same Dockerfile.
    Stage {
        /// That stage's index.
        index: usize,
    },
}

/// One instruction of a stage, ready to execute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// The first line of the instruction in the Dockerfile.
    pub start_line: usize,
    /// The last line (heredoc bodies included).
    pub end_line: usize,
    /// The instruction line as written (continuations joined).
    pub source: String,
    /// The instruction with its words expanded.
    pub instruction: Instruction,
    /// The instruction before expansion.
    pub raw: Instruction,
    /// The build args this step depends on: for RUN every ARG in scope with
    /// a value (they are in its environment) plus any proxy build args given,
    /// for other instructions the ARGs its expansion used.
    pub build_args: BTreeMap<String, String>,
    /// Variables the expansion looked up that neither an ARG nor an ENV of
    /// the Dockerfile defines; they may come from the base image.
    pub unresolved: Vec<String>,
}

/// One build stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    /// The stage's position among all FROMs (0-based), as `COPY --from=N` counts.
    pub index: usize,
    /// The `AS` name, lowercased.
    pub name: Option<String>,
    /// What the stage starts from.
    pub base: Base,
    /// The platform the stage is built for (`FROM --platform`, else the target platform).
    pub platform: Platform,
    /// The line of the FROM instruction.
    pub line: usize,
    /// The build args the FROM line used.
    pub from_build_args: BTreeMap<String, String>,
    /// The stages this one needs: its base stage, `COPY --from` and `RUN --mount from=` stages.
    pub depends_on: Vec<usize>,
    /// The instructions after FROM.
    pub steps: Vec<Step>,
}

impl Stage {
    /// A name for messages: the `AS` name, or `stage-N`.
    pub fn display_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("stage-{}", self.index))
    }

    /// The image's entrypoint and command after this stage's instructions,
    /// given the ones inherited from the base: ENTRYPOINT resets an
    /// inherited CMD unless the stage set a CMD before it, and shell forms
    /// run through the SHELL in effect.
    pub fn process(&self, base: &Process) -> Process {
        let mut process = base.clone();
        let mut shell: Vec<String> = DEFAULT_SHELL.iter().map(|s| s.to_string()).collect();
        let mut cmd_set = false;
        for step in &self.steps {
            match &step.instruction {
                Instruction::Shell(args) => shell = args.clone(),
                Instruction::Cmd(command) => {
                    process.cmd = Some(command.argv(&shell));
                    cmd_set = true;
                }
                Instruction::Entrypoint(command) => {
                    process.entrypoint = Some(command.argv(&shell));
                    if !cmd_set {
                        process.cmd = None;
                    }
                }
                _ => {}
            }
        }
        process
    }
}

/// An image's entrypoint and command.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    /// `Entrypoint`.
    pub entrypoint: Option<Vec<String>>,
    /// `Cmd`.
    pub cmd: Option<Vec<String>>,
}

/// The whole plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildPlan {
    /// The Dockerfile, as named in diagnostics.
    pub file: String,
    /// The stages the target needs, dependencies before dependents.
    pub stages: Vec<Stage>,
    /// The index of the target stage.
    pub target: usize,
    /// The platform the image is built for.
    pub target_platform: Platform,
    /// The platform the build runs on.
    pub build_platform: Platform,
    /// The global ARGs (before the first FROM) with their values.
    pub global_args: BTreeMap<String, String>,
    /// Warnings, in line order.
    pub warnings: Vec<Diagnostic>,
}

impl BuildPlan {
    /// The stage with the given index, if it is part of the plan.
    pub fn stage(&self, index: usize) -> Option<&Stage> {
        self.stages.iter().find(|s| s.index == index)
    }
}

/// Why a Dockerfile cannot be planned: every error found, and the warnings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanError {
    /// The errors and warnings, in line order.
    pub diagnostics: Vec<Diagnostic>,
}

impl PlanError {
    /// Only the errors.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
    }
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let errors: Vec<String> = self.errors().map(ToString::to_string).collect();
        write!(f, "{}", errors.join("; "))
    }
}

impl std::error::Error for PlanError {}

/// The `# check=` directive: rules to skip and whether warnings fail the build.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckConfig {
    /// Rule names to skip (lowercase); `all` skips every rule.
    pub skip: BTreeSet<String>,
    /// `error=true`: warnings fail the build.
    pub error: bool,
}

impl CheckConfig {
    /// Parses `skip=Rule1,Rule2;error=true`.
    pub fn parse(text: &str) -> Result<CheckConfig, String> {
        let mut config = CheckConfig::default();
        for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((key, value)) = part.split_once('=') else {
                return Err(format!(
                    "invalid check directive part {part:?}: expected key=value"
                ));
            };
            match key.trim().to_ascii_lowercase().as_str() {
                "skip" => config.skip.extend(
                    value
                        .split(',')
                        .map(|rule| rule.trim().to_ascii_lowercase())
                        .filter(|rule| !rule.is_empty()),
                ),
                "error" => {
                    config.error = match value.trim().to_ascii_lowercase().as_str() {
                        "true" => true,
                        "false" => false,
                        other => {
                            return Err(format!(
                                "invalid check directive error value {other:?}: expected true or false"
                            ));
                        }
                    }
                }
                other => {
                    return Err(format!(
                        "invalid check directive key {other:?}: expected skip or error"
                    ));
                }
            }
        }
        Ok(config)
    }

    fn keeps(&self, diagnostic: &Diagnostic) -> bool {
        match &diagnostic.rule {
            Some(rule) if diagnostic.severity == Severity::Warning => {
                !self.skip.contains("all") && !self.skip.contains(&rule.to_ascii_lowercase())
            }
            _ => true,
        }
    }
}

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
}

/// A FROM node, its instruction, and the nodes of the stage body.
type StageNodes<'a> = (&'a Node, &'a Instruction, Vec<(&'a Node, &'a Instruction)>);

struct Planner<'a> {
    file: &'a str,
    lexer: Lexer,
    diagnostics: Vec<Diagnostic>,
}

impl Planner<'_> {
    fn error(&mut self, node: &Node, message: impl Into<String>) {
        self.diagnostics.push(Diagnostic::error(
            self.file,
            node.start_line,
            node.end_line,
            message,
        ));
    }

    fn warn(&mut self, node: &Node, rule: &str, message: impl Into<String>) {
        self.diagnostics.push(Diagnostic::warning(
            self.file,
            rule,
            node.start_line,
            node.end_line,
            message,
        ));
    }
}

/// Plans the build of `dockerfile`.
pub fn plan(dockerfile: &Dockerfile, options: &PlanOptions) -> Result<BuildPlan, PlanError> {
    let build_platform = options
        .build_platform
        .clone()
        .unwrap_or_else(Platform::host);
    let target_platform = options
        .target_platform
        .clone()
        .unwrap_or_else(|| build_platform.clone());
    let mut planner = Planner {
        file: &dockerfile.file,
        lexer: Lexer::new(dockerfile.escape),
        diagnostics: dockerfile.warnings.clone(),
    };
    let check = match dockerfile
        .directives
        .check
        .as_deref()
        .map(CheckConfig::parse)
    {
        Some(Ok(config)) => config,
        Some(Err(message)) => {
            planner
                .diagnostics
                .push(Diagnostic::error(&dockerfile.file, 1, 1, message));
            CheckConfig::default()
        }
        None => CheckConfig::default(),
    };

    // Type every instruction first, so that every error is reported.
    let mut typed: Vec<(&Node, Instruction)> = Vec::with_capacity(dockerfile.nodes.len());
    for node in &dockerfile.nodes {
        match Instruction::from_node(node) {
            Ok(instruction) => typed.push((node, instruction)),
            Err(message) => planner.error(node, message),
        }
    }

    // The platform args are in the global scope without being declared.
    let mut platform_args: BTreeMap<String, String> = target_platform.args("TARGET").into();
    platform_args.extend(build_platform.args("BUILD"));
    let mut global_env = platform_args.clone();
    let mut global_declared: BTreeSet<String> = BTreeSet::new();
    let first_from = typed
        .iter()
        .position(|(_, i)| matches!(i, Instruction::From(_)))
        .unwrap_or(typed.len());
    for (node, instruction) in &typed[..first_from] {
        let Instruction::Arg(decls) = instruction else {
            planner.error(node, "no build stage in current context: instructions other than ARG must come after a FROM");
            continue;
        };
        for decl in decls {
            let default = match decl
                .default
                .as_deref()
                .map(|d| planner.lexer.expand_word(d, &global_env))
            {
                Some(Ok(value)) => Some(value),
                Some(Err(err)) => {
                    planner.error(node, err.to_string());
                    None
                }
                None => None,
            };
            global_declared.insert(decl.name.clone());
            if let Some(value) = options.build_args.get(&decl.name).cloned().or(default) {
                global_env.insert(decl.name.clone(), value);
            }
        }
    }
    if first_from == typed.len()
        && planner
            .diagnostics
            .iter()
            .all(|d| d.severity != Severity::Error)
    {
        let line = dockerfile.nodes.last().map_or(0, |n| n.end_line);
        planner.diagnostics.push(
            Diagnostic::error(
                &dockerfile.file,
                line,
                line,
                "the Dockerfile has no FROM instruction",
            )
            .with_hint("start the first stage with FROM <image> or FROM scratch"),
        );
    }

    // Split into stages.
    let mut stage_nodes: Vec<StageNodes> = Vec::new();
    for (node, instruction) in &typed[first_from..] {
        if matches!(instruction, Instruction::From(_)) {
            stage_nodes.push((node, instruction, Vec::new()));
        } else if let Some(last) = stage_nodes.last_mut() {
            last.2.push((node, instruction));
        }
    }
    let names: Vec<Option<String>> = stage_nodes
        .iter()
        .map(|(_, i, _)| match i {
            Instruction::From(from) => from.name.clone(),
            _ => None,
        })
        .collect();
    let find_stage = |name: &str| -> Option<usize> {
        let lower = name.to_ascii_lowercase();
        names
            .iter()
            .position(|n| n.as_deref() == Some(lower.as_str()))
    };

    let mut stages: Vec<Stage> = Vec::with_capacity(stage_nodes.len());
    let mut final_env: Vec<BTreeMap<String, String>> = Vec::new();
    for (index, (from_node, from_instruction, body)) in stage_nodes.iter().enumerate() {
        let Instruction::From(from) = from_instruction else {
            continue;
        };
        if let Some(name) = &from.name {
            if names[..index]
                .iter()
                .any(|n| n.as_deref() == Some(name.as_str()))
            {
                planner.error(from_node, format!("duplicate stage name {name:?}"));
            }
            if name == "scratch" || name == "context" {
                planner.error(
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
            let as_upper = as_word == as_word.to_uppercase();
            if keyword_upper != as_upper {
                planner.warn(
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
                planner.warn(
                    from_node,
                    "StageNameCasing",
                    format!("stage name {written:?} should be lowercase"),
                );
            }
        }
        // FROM sees only the global scope.
        let (expanded_from, matched, unmatched) =
            match from_instruction.expand(&planner.lexer, &global_env) {
                Ok(result) => result,
                Err(err) => {
                    planner.error(from_node, err.to_string());
                    (
                        Instruction::clone(from_instruction),
                        BTreeSet::new(),
                        BTreeSet::new(),
                    )
                }
            };
        for name in &unmatched {
            if !global_declared.contains(name) {
                planner.warn(
                    from_node,
                    "UndefinedArgInFrom",
                    format!("FROM argument {name:?} is not declared"),
                );
            }
        }
        let Instruction::From(expanded) = expanded_from else {
            continue;
        };
        if expanded.image.is_empty() {
            planner.error(
                from_node,
                format!("base name ({}) should not be blank", from.image),
            );
        }
        let platform = match expanded.platform.as_deref() {
            Some(text) => match Platform::parse(text) {
                Ok(platform) => platform,
                Err(message) => {
                    planner.error(
                        from_node,
                        format!(
                            "failed to parse platform {}: {message}",
                            from.platform.as_deref().unwrap_or_default()
                        ),
                    );
                    target_platform.clone()
                }
            },
            None => target_platform.clone(),
        };
        let base = if expanded.image.eq_ignore_ascii_case("scratch") {
            Base::Scratch
        } else {
            match find_stage(&expanded.image).filter(|i| *i < index) {
                Some(stage) => Base::Stage { index: stage },
                None => Base::Image {
                    reference: expanded.image.clone(),
                },
            }
        };
        let from_build_args = matched
            .iter()
            .filter_map(|name| global_env.get(name).map(|v| (name.clone(), v.clone())))
            .collect();

        let mut scope = Scope::default();
        if let Base::Stage { index: parent } = base {
            scope.env = final_env.get(parent).cloned().unwrap_or_default();
        }
        let mut depends_on: BTreeSet<usize> = BTreeSet::new();
        if let Base::Stage { index: parent } = base {
            depends_on.insert(parent);
        }
        let mut steps = Vec::with_capacity(body.len());
        let mut seen_single: BTreeMap<&'static str, usize> = BTreeMap::new();
        let mut workdir_set = matches!(base, Base::Stage { .. });
        for (node, instruction) in body {
            let (expanded, matched, unmatched) = match instruction.expand(&planner.lexer, &scope) {
                Ok(result) => result,
                Err(err) => {
                    planner.error(node, err.to_string());
                    continue;
                }
            };
            let mut build_args = scope.args_used(&matched);
            match &expanded {
                Instruction::Arg(decls) => {
                    for decl in decls {
                        let value = options
                            .build_args
                            .get(&decl.name)
                            .cloned()
                            .or_else(|| decl.default.clone())
                            .or_else(|| {
                                global_env
                                    .get(&decl.name)
                                    .filter(|_| {
                                        global_declared.contains(&decl.name)
                                            || platform_args.contains_key(&decl.name)
                                    })
                                    .cloned()
                            });
                        if let Some(value) = value {
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
                    build_args = scope
                        .args
                        .iter()
                        .filter(|(k, _)| !scope.env.contains_key(*k))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    for proxy in PROXY_ARGS {
                        if let Some(value) = options.build_args.get(*proxy) {
                            build_args
                                .entry(proxy.to_string())
                                .or_insert_with(|| value.clone());
                        }
                    }
                    for mount in &run.mounts {
                        if let Some(stage) = mount_from(mount).and_then(|from| find_stage(&from)) {
                            depends_on.insert(stage);
                        }
                    }
                }
                Instruction::Copy(copy) => {
                    if let Some(from) = &copy.from {
                        match resolve_copy_from(from, names.len(), &find_stage) {
                            Ok(Some(stage)) => {
                                depends_on.insert(stage);
                            }
                            Ok(None) => {}
                            Err(message) => planner.error(node, message),
                        }
                    }
                }
                Instruction::Workdir(dir) => {
                    if !dir.starts_with('/') && !workdir_set {
                        planner.warn(node, "WorkdirRelativePath", format!("relative workdir {dir:?} can have unexpected results if the base image changes"));
                    }
                    workdir_set = true;
                }
                Instruction::Maintainer(_) => {
                    planner.warn(
                        node,
                        "MaintainerDeprecated",
                        "MAINTAINER instruction is deprecated in favor of using label",
                    );
                }
                Instruction::Cmd(Command::Shell(_))
                | Instruction::Entrypoint(Command::Shell(_)) => {
                    planner.warn(node, "JSONArgsRecommended", format!("JSON arguments recommended for {} to prevent unintended behavior related to OS signals", node.keyword.to_ascii_uppercase()));
                }
                _ => {}
            }
            let single = match &expanded {
                Instruction::Cmd(_) => Some("CMD"),
                Instruction::Entrypoint(_) => Some("ENTRYPOINT"),
                Instruction::Healthcheck(_) => Some("HEALTHCHECK"),
                _ => None,
            };
            if let Some(single) = single {
                let count = seen_single.entry(single).or_insert(0);
                *count += 1;
                if *count == 2 {
                    planner.warn(node, "MultipleInstructionsDisallowed", format!("multiple {single} instructions should not be used in the same stage because only the last one will be used"));
                }
            }
            // Names not set at expansion time may come from the base image.
            let unresolved = unmatched.into_iter().collect();
            steps.push(Step {
                start_line: node.start_line,
                end_line: node.end_line,
                source: node.original.clone(),
                instruction: expanded,
                raw: Instruction::clone(instruction),
                build_args,
                unresolved,
            });
        }
        final_env.push(scope.env.clone());
        stages.push(Stage {
            index,
            name: expanded.name.clone(),
            base,
            platform,
            line: from_node.start_line,
            from_build_args,
            depends_on: depends_on.into_iter().collect(),
            steps,
        });
    }

    // Cycles anywhere are errors, as in BuildKit.
    if let Some(cycle) = find_cycle(&stages) {
        let stage = &stages[cycle];
        planner.diagnostics.push(Diagnostic::error(
            &dockerfile.file,
            stage.line,
            stage.line,
            format!(
                "circular dependency detected on stage: {}",
                stage.display_name()
            ),
        ));
    }

    let target = match &options.target {
        Some(name) => match find_stage(name) {
            Some(index) => Some(index),
            None => {
                let known: Vec<&str> = names.iter().flatten().map(String::as_str).collect();
                let mut diagnostic = Diagnostic::error(
                    &dockerfile.file,
                    0,
                    0,
                    format!("target stage {name:?} could not be found"),
                );
                if let Some(candidate) = suggest(name, known.iter().copied()) {
                    diagnostic = diagnostic.with_hint(format!("did you mean {candidate:?}?"));
                }
                planner.diagnostics.push(diagnostic);
                None
            }
        },
        None => stages.len().checked_sub(1),
    };

    let mut ordered = Vec::new();
    if let Some(target) = target {
        let mut visited = vec![false; stages.len()];
        build_order(&stages, target, &mut visited, &mut Vec::new(), &mut ordered);
    }
    // Build args no ARG of the planned stages (or the global scope) consumes.
    let reachable_args: BTreeSet<&str> = ordered
        .iter()
        .flat_map(|&i| stages[i].steps.iter())
        .filter_map(|step| match &step.instruction {
            Instruction::Arg(decls) => Some(decls.iter().map(|d| d.name.as_str())),
            _ => None,
        })
        .flatten()
        .collect();
    let unused: Vec<&String> = options
        .build_args
        .keys()
        .filter(|name| {
            !reachable_args.contains(name.as_str())
                && !global_declared.contains(*name)
                && !PROXY_ARGS.contains(&name.as_str())
                && !name.starts_with("BUILDKIT_")
        })
        .collect();
    if !unused.is_empty() {
        let list: Vec<&str> = unused.iter().map(|s| s.as_str()).collect();
        planner.diagnostics.push(Diagnostic::warning(
            &dockerfile.file,
            "UnusedBuildArg",
            0,
            0,
            format!(
                "one or more build args were not consumed: {}",
                list.join(", ")
            ),
        ));
    }

    let mut diagnostics: Vec<Diagnostic> = planner
        .diagnostics
        .into_iter()
        .filter(|d| check.keeps(d))
        .collect();
    if check.error {
        for diagnostic in &mut diagnostics {
            diagnostic.severity = Severity::Error;
        }
    }
    diagnostics.sort_by_key(|d| (d.start_line == 0, d.start_line));
    if diagnostics.iter().any(|d| d.severity == Severity::Error) {
        return Err(PlanError { diagnostics });
    }
    let Some(target) = target else {
        return Err(PlanError { diagnostics });
    };
    let mut planned: Vec<Stage> = Vec::with_capacity(ordered.len());
    for index in ordered {
        planned.push(stages[index].clone());
    }
    Ok(BuildPlan {
        file: dockerfile.file.clone(),
        stages: planned,
        target,
        target_platform,
        build_platform,
        global_args: global_env
            .into_iter()
            .filter(|(k, _)| global_declared.contains(k))
            .collect(),
        warnings: diagnostics,
    })
}

/// The `from=` of a `RUN --mount` value.
fn mount_from(mount: &str) -> Option<String> {
    mount.split(',').find_map(|field| {
        let (key, value) = field.split_once('=')?;
        (key.trim() == "from").then(|| value.trim().to_string())
    })
}

/// Resolves `COPY --from`: a stage index, a stage name, or (`None`) an image.
fn resolve_copy_from(
    from: &str,
    stage_count: usize,
    find_stage: &dyn Fn(&str) -> Option<usize>,
) -> Result<Option<usize>, String> {
    if from.contains('$') {
        return Err("variable expansion is not supported for --from; define a new stage with FROM using an ARG from the global scope instead".to_string());
    }
    if let Ok(index) = from.parse::<i64>() {
        if index < 0 || index as usize >= stage_count {
            return Err(format!(
                "invalid stage index {index}: the Dockerfile has {stage_count} stage(s)"
            ));
        }
        return Ok(Some(index as usize));
    }
    Ok(find_stage(from))
}

/// A stage on a dependency cycle, if there is one.
fn find_cycle(stages: &[Stage]) -> Option<usize> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    fn visit(stages: &[Stage], index: usize, marks: &mut [Mark]) -> Option<usize> {
        marks[index] = Mark::Active;
        for &dep in &stages[index].depends_on {
            match marks.get(dep) {
                Some(Mark::Active) => return Some(dep),
                Some(Mark::New) => {
                    if let Some(found) = visit(stages, dep, marks) {
                        return Some(found);
                    }
                }
                _ => {}
            }
        }
        marks[index] = Mark::Done;
        None
    }
    let mut marks = vec![Mark::New; stages.len()];
    (0..stages.len()).find_map(|i| {
        if marks[i] == Mark::New {
            visit(stages, i, &mut marks)
        } else {
            None
        }
    })
}

/// Appends the stages `index` needs, then `index`, each once.
fn build_order(
    stages: &[Stage],
    index: usize,
    visited: &mut [bool],
    path: &mut Vec<usize>,
    out: &mut Vec<usize>,
) {
    if visited[index] || path.contains(&index) {
        return;
    }
    path.push(index);
    for &dep in &stages[index].depends_on {
        build_order(stages, dep, visited, path, out);
    }
    path.pop();
    visited[index] = true;
    out.push(index);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frontend::parse;

    fn plan_of(source: &str, options: &PlanOptions) -> Result<BuildPlan, PlanError> {
        let dockerfile = parse(source, "Dockerfile").unwrap();
        plan(&dockerfile, options)
    }

    fn options(args: &[(&str, &str)], target: Option<&str>) -> PlanOptions {
        PlanOptions {
            build_args: args
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            target: target.map(str::to_string),
            target_platform: Some(Platform::parse("linux/arm64").unwrap()),
            build_platform: Some(Platform::parse("linux/amd64").unwrap()),
        }
    }

    fn workdirs(plan: &BuildPlan) -> Vec<String> {
        plan.stages
            .iter()
            .flat_map(|s| s.steps.iter())
            .filter_map(|step| match &step.instruction {
                Instruction::Workdir(dir) => Some(dir.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn arg_scoping_table() {
        type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [&'a str]);
        let cases: &[Case] = &[
            // A global ARG is visible in a stage only once redeclared.
            (
                "ARG V=g\nFROM a\nWORKDIR /$V\nARG V\nWORKDIR /$V\n",
                &[],
                &["/", "/g"],
            ),
            // A build arg overrides both the global and the stage default.
            (
                "ARG V=g\nFROM a\nARG V=s\nWORKDIR /$V\n",
                &[("V", "b")],
                &["/b"],
            ),
            ("ARG V=g\nFROM a\nARG V=s\nWORKDIR /$V\n", &[], &["/s"]),
            // ENV wins over an ARG of the same name.
            (
                "FROM a\nARG V=arg\nENV V=env\nWORKDIR /$V\n",
                &[],
                &["/env"],
            ),
            // Every value of one ENV line sees the environment before it.
            ("FROM a\nENV A=1\nENV A=2 B=$A\nWORKDIR /$B\n", &[], &["/1"]),
            // Platform args must be declared in a stage, without a value.
            (
                "FROM a\nWORKDIR /$TARGETARCH\nARG TARGETARCH\nARG BUILDOS\nWORKDIR /$TARGETARCH/$BUILDOS\n",
                &[],
                &["/", "/arm64/linux"],
            ),
            // A stage based on another inherits its ENV, not its ARGs.
            (
                "FROM a AS one\nARG X=x\nENV E=e\nFROM one\nWORKDIR /$E$X\n",
                &[],
                &["/e"],
            ),
            // ARG defaults expand earlier ARGs.
            ("FROM a\nARG A=1\nARG B=${A}2\nWORKDIR /$B\n", &[], &["/12"]),
        ];
        for (source, args, expected) in cases {
            let plan = plan_of(source, &options(args, None)).unwrap();
            assert_eq!(workdirs(&plan), *expected, "{source}");
        }
    }

    #[test]
    fn from_uses_global_and_platform_args() {
        let plan = plan_of(
            "ARG TAG=1.0\nFROM --platform=$BUILDPLATFORM img:$TAG AS build\nFROM scratch\nCOPY --from=build /a /a\n",
            &options(&[("TAG", "2.0")], None),
        )
        .unwrap();
        assert_eq!(plan.stages.len(), 2);
        assert_eq!(
            plan.stages[0].base,
            Base::Image {
                reference: "img:2.0".into()
            }
        );
        assert_eq!(plan.stages[0].platform.to_string(), "linux/amd64");
        assert_eq!(plan.stages[1].platform.to_string(), "linux/arm64");
        assert_eq!(
            plan.stages[0]
                .from_build_args
                .get("TAG")
                .map(String::as_str),
            Some("2.0")
        );
        assert_eq!(plan.stages[1].base, Base::Scratch);
        assert_eq!(plan.global_args.get("TAG").map(String::as_str), Some("2.0"));
    }

    #[test]
    fn steps_record_the_build_args_they_use() {
        let plan = plan_of(
            "FROM a\nARG A=1\nARG B=2\nWORKDIR /$A\nRUN make\nENV B=shadow\nRUN make\nUSER $HOME\n",
            &options(&[("http_proxy", "http://p")], None),
        )
        .unwrap();
        let steps = &plan.stages[0].steps;
        let args = |i: usize| -> Vec<(&str, &str)> {
            steps[i]
                .build_args
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect()
        };
        assert_eq!(args(2), [("A", "1")]);
        assert_eq!(
            args(3),
            [("A", "1"), ("B", "2"), ("http_proxy", "http://p")]
        );
        assert_eq!(args(5), [("A", "1"), ("http_proxy", "http://p")]);
        assert_eq!(steps[6].unresolved, ["HOME"]);
        assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
    }

    #[test]
    fn target_pruning_table() {
        let source = "FROM a AS base\nFROM base AS dev\nFROM b AS tools\nFROM base AS final\nCOPY --from=tools /t /t\nFROM c AS unrelated\n";
        let cases: &[(Option<&str>, &[usize])] = &[
            (None, &[4]),
            (Some("final"), &[0, 2, 3]),
            (Some("FINAL"), &[0, 2, 3]),
            (Some("dev"), &[0, 1]),
            (Some("tools"), &[2]),
        ];
        for (target, expected) in cases {
            let plan = plan_of(source, &options(&[], *target)).unwrap();
            let got: Vec<usize> = plan.stages.iter().map(|s| s.index).collect();
            assert_eq!(got, *expected, "{target:?}");
        }
        let err = plan_of(source, &options(&[], Some("fnal"))).unwrap_err();
        let error = err.errors().next().unwrap();
        assert_eq!(error.message, "target stage \"fnal\" could not be found");
        assert_eq!(error.hint.as_deref(), Some("did you mean \"final\"?"));
    }

    #[test]
    fn stage_graph_errors() {
        let cases = [
            (
                "FROM a AS x\nCOPY --from=y /a /a\nFROM b AS y\nCOPY --from=x /b /b\n",
                "circular dependency detected on stage: x",
            ),
            (
                "FROM a AS x\nCOPY --from=x /a /a\n",
                "circular dependency detected on stage: x",
            ),
            (
                "FROM a AS x\nRUN --mount=from=y,target=/y true\nFROM b AS y\nCOPY --from=0 /b /b\n",
                "circular dependency detected on stage: x",
            ),
            (
                "FROM a\nCOPY --from=3 /a /a\n",
                "invalid stage index 3: the Dockerfile has 1 stage(s)",
            ),
            ("FROM a AS x\nFROM b AS X\n", "duplicate stage name \"x\""),
            (
                "FROM a AS scratch\n",
                "\"scratch\" is a reserved name and cannot be used as a stage name",
            ),
            (
                "RUN true\nFROM a\n",
                "no build stage in current context: instructions other than ARG must come after a FROM",
            ),
            ("ARG A\n", "the Dockerfile has no FROM instruction"),
            ("FROM $NOPE\n", "base name ($NOPE) should not be blank"),
            (
                "FROM --platform=linux/ a\n",
                "failed to parse platform linux/: invalid platform \"linux/\": expected os/arch[/variant], e.g. linux/amd64",
            ),
            (
                "FROM a\nCOPY --from=$X /a /a\n",
                "variable expansion is not supported for --from; define a new stage with FROM using an ARG from the global scope instead",
            ),
        ];
        for (source, message) in cases {
            let err = plan_of(source, &options(&[], None)).unwrap_err();
            let messages: Vec<&str> = err.errors().map(|d| d.message.as_str()).collect();
            assert!(messages.contains(&message), "{source}: {messages:?}");
        }
        // COPY --from an image name is no dependency.
        let plan = plan_of("FROM a\nCOPY --from=alpine:3 /a /a\n", &options(&[], None)).unwrap();
        assert!(plan.stages[0].depends_on.is_empty());
    }

    #[test]
    fn every_error_is_reported() {
        let err = plan_of(
            "FROM a\nCOPY a\nWORKDIR --x=1 /\nHEALTHCHECK FOO\n",
            &options(&[], None),
        )
        .unwrap_err();
        let lines: Vec<usize> = err.errors().map(|d| d.start_line).collect();
        assert_eq!(lines, [2, 3, 4]);
    }

    #[test]
    fn entrypoint_cmd_interplay_table() {
        let exec = |args: &[&str]| Some(args.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        let inherited = Process {
            entrypoint: exec(&["/base-ep"]),
            cmd: exec(&["base-cmd"]),
        };
        let cases: &[(&str, Process)] = &[
            ("", inherited.clone()),
            (
                "CMD [\"c\"]\n",
                Process {
                    entrypoint: exec(&["/base-ep"]),
                    cmd: exec(&["c"]),
                },
            ),
            (
                "ENTRYPOINT [\"e\"]\n",
                Process {
                    entrypoint: exec(&["e"]),
                    cmd: None,
                },
            ),
            (
                "CMD [\"c\"]\nENTRYPOINT [\"e\"]\n",
                Process {
                    entrypoint: exec(&["e"]),
                    cmd: exec(&["c"]),
                },
            ),
            (
                "ENTRYPOINT [\"e\"]\nCMD [\"c\"]\n",
                Process {
                    entrypoint: exec(&["e"]),
                    cmd: exec(&["c"]),
                },
            ),
            (
                "ENTRYPOINT e x\n",
                Process {
                    entrypoint: exec(&["/bin/sh", "-c", "e x"]),
                    cmd: None,
                },
            ),
            (
                "SHELL [\"bash\", \"-ec\"]\nCMD c\n",
                Process {
                    entrypoint: exec(&["/base-ep"]),
                    cmd: exec(&["bash", "-ec", "c"]),
                },
            ),
        ];
        for (body, expected) in cases {
            let plan = plan_of(&format!("FROM a\n{body}"), &options(&[], None)).unwrap();
            assert_eq!(plan.stages[0].process(&inherited), *expected, "{body}");
        }
    }

    #[test]
    fn warnings_and_check_directive() {
        let source =
            "FROM a as Build\nMAINTAINER me\nCMD run\nCMD [\"x\"]\nWORKDIR rel\nFROM $UNDECLARED\n";
        let err = plan_of(source, &options(&[], None)).unwrap_err();
        let rules: Vec<&str> = err
            .diagnostics
            .iter()
            .filter_map(|d| d.rule.as_deref())
            .collect();
        assert_eq!(
            rules,
            [
                "FromAsCasing",
                "StageNameCasing",
                "MaintainerDeprecated",
                "JSONArgsRecommended",
                "MultipleInstructionsDisallowed",
                "WorkdirRelativePath",
                "UndefinedArgInFrom"
            ]
        );
        let plan = plan_of(
            "FROM a\nMAINTAINER me\n",
            &options(&[("UNUSED", "1")], None),
        )
        .unwrap();
        let rules: Vec<&str> = plan
            .warnings
            .iter()
            .filter_map(|d| d.rule.as_deref())
            .collect();
        assert_eq!(rules, ["MaintainerDeprecated", "UnusedBuildArg"]);
        let plan = plan_of(
            "# check=skip=MaintainerDeprecated\nFROM a\nMAINTAINER me\n",
            &options(&[], None),
        )
        .unwrap();
        assert!(plan.warnings.is_empty());
        let err = plan_of(
            "# check=error=true\nFROM a\nMAINTAINER me\n",
            &options(&[], None),
        )
        .unwrap_err();
        assert_eq!(err.errors().count(), 1);
    }

    #[test]
    fn plan_is_serialisable() {
        let plan = plan_of(
            "FROM a\nCOPY <<EOF /x\nhi\nEOF\nRUN [\"true\"]\n",
            &options(&[], None),
        )
        .unwrap();
        let json = serde_json::to_string(&plan).unwrap();
        let back: BuildPlan = serde_json::from_str(&json).unwrap();
        assert_eq!(back, plan);
    }
}
