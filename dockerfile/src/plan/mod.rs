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

mod check;
mod graph;
mod lint;
mod stage;
#[cfg(test)]
mod tests;

pub use check::CheckConfig;

use super::ast::{Dockerfile, Node};
use super::diagnostic::{Diagnostic, Severity, suggest};
use super::instruction::Instruction;
use super::platform::Platform;
use super::shell::Lexer;
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

/// A FROM node, its instruction, and the nodes of the stage body.
type StageNodes<'a> = (&'a Node, &'a Instruction, Vec<(&'a Node, &'a Instruction)>);

/// What planning every stage shares: the options, the global scope, the
/// stage names, and the diagnostics collected so far.
struct Planner<'a> {
    file: &'a str,
    /// The Dockerfile text, to point diagnostics at words.
    source: &'a str,
    lexer: Lexer,
    options: &'a PlanOptions,
    target_platform: Platform,
    /// `TARGET*` and `BUILD*`, in the global scope without a declaration.
    platform_args: BTreeMap<String, String>,
    /// The global scope: platform args and global ARGs with values.
    global_env: BTreeMap<String, String>,
    /// The names of the global ARGs.
    global_declared: BTreeSet<String>,
    /// The global scope as if no build arg were given (ARG defaults only),
    /// or `None` if a default could not be expanded.
    default_env: Option<BTreeMap<String, String>>,
    /// Every stage's `AS` name, by index.
    names: Vec<Option<String>>,
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

    /// The index of the stage named `name` (names are case-insensitive).
    fn find_stage(&self, name: &str) -> Option<usize> {
        let lower = name.to_ascii_lowercase();
        self.names
            .iter()
            .position(|n| n.as_deref() == Some(lower.as_str()))
    }

    /// Reads the ARGs before the first FROM into the global scope; anything
    /// else there is an error.
    fn plan_global_args(&mut self, typed: &[(&Node, Instruction)]) {
        for (node, instruction) in typed {
            let Instruction::Arg(decls) = instruction else {
                self.error(
                    node,
                    "no build stage in current context: instructions other than ARG must come after a FROM",
                );
                continue;
            };
            for decl in decls {
                let default = match decl
                    .default
                    .as_deref()
                    .map(|d| self.lexer.expand_word(d, &self.global_env))
                {
                    Some(Ok(value)) => Some(value),
                    Some(Err(err)) => {
                        self.error(node, err.to_string());
                        None
                    }
                    None => None,
                };
                self.global_declared.insert(decl.name.clone());
                if let Some(value) = self.options.build_args.get(&decl.name).cloned().or(default) {
                    self.global_env.insert(decl.name.clone(), value);
                }
                if let Some(env) = &mut self.default_env {
                    match decl
                        .default
                        .as_deref()
                        .map(|d| self.lexer.expand_word(d, &*env))
                    {
                        Some(Ok(value)) => {
                            env.insert(decl.name.clone(), value);
                        }
                        Some(Err(_)) => self.default_env = None,
                        None => {}
                    }
                }
            }
        }
    }

    /// The target stage's index: `--target`, or the last stage.
    fn resolve_target(&mut self, stage_count: usize) -> Option<usize> {
        let Some(name) = &self.options.target else {
            return stage_count.checked_sub(1);
        };
        if let Some(index) = self.find_stage(name) {
            return Some(index);
        }
        let known: Vec<&str> = self.names.iter().flatten().map(String::as_str).collect();
        let mut diagnostic = Diagnostic::error(
            self.file,
            0,
            0,
            format!("target stage {name:?} could not be found"),
        );
        if let Some(candidate) = suggest(name, known.iter().copied()) {
            diagnostic = diagnostic.with_hint(format!("did you mean {candidate:?}?"));
        }
        self.diagnostics.push(diagnostic);
        None
    }

    /// Warns about build args that no ARG of the planned stages (or of the
    /// global scope) consumes.
    fn warn_unused_build_args(&mut self, planned: &[&Stage]) {
        let declared: BTreeSet<&str> = planned
            .iter()
            .flat_map(|stage| stage.steps.iter())
            .filter_map(|step| match &step.instruction {
                Instruction::Arg(decls) => Some(decls.iter().map(|d| d.name.as_str())),
                _ => None,
            })
            .flatten()
            .collect();
        let unused: Vec<&str> = self
            .options
            .build_args
            .keys()
            .map(String::as_str)
            .filter(|name| {
                !declared.contains(name)
                    && !self.global_declared.contains(*name)
                    && !PROXY_ARGS.contains(name)
                    && !name.starts_with("BUILDKIT_")
                    // The build reads it to pin timestamps, without an ARG.
                    && *name != "SOURCE_DATE_EPOCH"
            })
            .collect();
        if !unused.is_empty() {
            let message = format!(
                "one or more build args were not consumed: {}",
                unused.join(", ")
            );
            self.diagnostics.push(Diagnostic::warning(
                self.file,
                "UnusedBuildArg",
                0,
                0,
                message,
            ));
        }
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
    let mut platform_args: BTreeMap<String, String> = target_platform.args("TARGET").into();
    platform_args.extend(build_platform.args("BUILD"));
    let mut planner = Planner {
        file: &dockerfile.file,
        source: &dockerfile.source,
        lexer: Lexer::new(dockerfile.escape),
        options,
        target_platform: target_platform.clone(),
        global_env: platform_args.clone(),
        default_env: Some(platform_args.clone()),
        platform_args,
        global_declared: BTreeSet::new(),
        names: Vec::new(),
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
            Err(err) => {
                let diagnostic = Diagnostic::error(
                    &dockerfile.file,
                    node.start_line,
                    node.end_line,
                    err.message,
                );
                planner.diagnostics.push(match &err.token {
                    Some(token) => diagnostic.at_token(planner.source, token),
                    None => diagnostic,
                });
            }
        }
    }
    planner.lint(&typed);
    let first_from = typed
        .iter()
        .position(|(_, i)| matches!(i, Instruction::From(_)))
        .unwrap_or(typed.len());
    planner.plan_global_args(&typed[..first_from]);
    let has_errors = planner
        .diagnostics
        .iter()
        .any(|d| d.severity == Severity::Error);
    if first_from == typed.len() && !has_errors {
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

    let mut stage_nodes: Vec<StageNodes> = Vec::new();
    for (node, instruction) in &typed[first_from..] {
        if matches!(instruction, Instruction::From(_)) {
            stage_nodes.push((node, instruction, Vec::new()));
        } else if let Some(last) = stage_nodes.last_mut() {
            last.2.push((node, instruction));
        }
    }
    planner.names = stage_nodes
        .iter()
        .map(|(_, i, _)| match i {
            Instruction::From(from) => from.name.clone(),
            _ => None,
        })
        .collect();

    planner.lint_default_args_in_from(stage_nodes.iter().map(|(node, from, _)| (*node, *from)));

    let mut stages: Vec<Stage> = Vec::with_capacity(stage_nodes.len());
    let mut final_env: Vec<BTreeMap<String, String>> = Vec::with_capacity(stage_nodes.len());
    for (index, (from_node, from_instruction, body)) in stage_nodes.iter().enumerate() {
        let (stage, env) = planner.plan_stage(index, from_node, from_instruction, body, &final_env);
        stages.push(stage);
        final_env.push(env);
    }

    // Cycles anywhere are errors, as in BuildKit.
    if let Some(cycle) = graph::find_cycle(&stages) {
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
    let target = planner.resolve_target(stages.len());
    let mut ordered = Vec::new();
    if let Some(target) = target {
        let mut visited = vec![false; stages.len()];
        graph::build_order(&stages, target, &mut visited, &mut Vec::new(), &mut ordered);
    }
    let planned: Vec<&Stage> = ordered.iter().map(|&i| &stages[i]).collect();
    planner.warn_unused_build_args(&planned);

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
    let target = match target {
        Some(target) if diagnostics.iter().all(|d| d.severity != Severity::Error) => target,
        _ => return Err(PlanError { diagnostics }),
    };
    let global_declared = planner.global_declared;
    Ok(BuildPlan {
        file: dockerfile.file.clone(),
        stages: planned.into_iter().cloned().collect(),
        target,
        target_platform,
        build_platform,
        global_args: planner
            .global_env
            .into_iter()
            .filter(|(k, _)| global_declared.contains(k))
            .collect(),
        warnings: diagnostics,
    })
}
