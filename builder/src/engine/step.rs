//! The engine's input: stages and typed steps with their words already
//! expanded. The frontend's plan is converted into this shape, which is also
//! what the engine's own tests build directly.

use std::collections::BTreeMap;

/// Where a stage starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    /// An empty filesystem.
    Scratch,
    /// An image in the local store, by name.
    Image(String),
    /// An earlier stage, by index.
    Stage(usize),
}

/// A stage to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagePlan {
    /// The stage's index in the Dockerfile.
    pub index: usize,
    /// `AS name`, if any.
    pub name: Option<String>,
    /// Where it starts.
    pub base: Base,
    /// Its steps after `FROM`.
    pub steps: Vec<Step>,
}

impl StagePlan {
    /// `name` or the index, for progress output.
    pub fn label(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("stage-{}", self.index))
    }
}

/// A command in shell or exec form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandForm {
    /// Run through the stage's shell.
    Shell(String),
    /// Run as given.
    Exec(Vec<String>),
}

/// A heredoc's name and content (already expanded if it expands).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeredocBody {
    /// The terminator word.
    pub name: String,
    /// The content.
    pub content: String,
}

/// One step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The Dockerfile line, for messages.
    pub line: usize,
    /// The instruction as written (continuations joined), for history and
    /// progress output.
    pub text: String,
    /// The build args the step used, with their values; part of its cache key.
    pub build_args: BTreeMap<String, String>,
    /// What the step does.
    pub instruction: Instruction,
}

/// A typed instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    /// `ENV`.
    Env(Vec<(String, String)>),
    /// `LABEL`.
    Label(Vec<(String, String)>),
    /// `CMD`.
    Cmd(CommandForm),
    /// `ENTRYPOINT`.
    Entrypoint(CommandForm),
    /// `WORKDIR`.
    Workdir(String),
    /// `USER`.
    User(String),
    /// `EXPOSE`, as `port[/proto]`.
    Expose(Vec<String>),
    /// `VOLUME`.
    Volume(Vec<String>),
    /// `STOPSIGNAL`.
    StopSignal(String),
    /// `HEALTHCHECK` (`None` is `HEALTHCHECK NONE`).
    Healthcheck(Option<HealthcheckSpec>),
    /// `SHELL`.
    Shell(Vec<String>),
    /// `ONBUILD`: the trigger text.
    OnBuild(String),
    /// `MAINTAINER`.
    Maintainer(String),
    /// `ARG`: only a history-free marker; its values reach steps via `build_args`.
    Arg,
    /// `RUN`.
    Run(RunStep),
    /// `COPY` or `ADD`.
    Copy(CopyStep),
}

/// `HEALTHCHECK CMD …` with its options (durations in nanoseconds).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HealthcheckSpec {
    /// The command.
    pub test: Option<CommandForm>,
    /// `--interval`.
    pub interval: u64,
    /// `--timeout`.
    pub timeout: u64,
    /// `--start-period`.
    pub start_period: u64,
    /// `--start-interval`.
    pub start_interval: u64,
    /// `--retries`.
    pub retries: u64,
}

/// A `RUN` step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunStep {
    /// The command.
    pub command: CommandForm,
    /// Heredocs, appended to a shell-form command.
    pub heredocs: Vec<HeredocBody>,
    /// `--mount` values.
    pub mounts: Vec<MountSpec>,
    /// `--network`.
    pub network: berth_containers::executor::Network,
}

/// A `RUN --mount`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSpec {
    /// `type=cache`: a directory kept between builds, never in a layer or key.
    Cache {
        /// Where it is mounted.
        target: String,
        /// `id` (default: the target).
        id: String,
        /// `sharing=locked`: one step at a time.
        locked: bool,
        /// `sharing=private`: a fresh directory per use.
        private: bool,
        /// `readonly`.
        readonly: bool,
        /// `mode`, `uid`, `gid` of a new cache directory.
        mode: u32,
        /// Owner of a new cache directory.
        uid: u32,
        /// Group of a new cache directory.
        gid: u32,
    },
    /// `type=bind`: read-only (unless `rw`) view of the context or a stage.
    Bind {
        /// Where it is mounted.
        target: String,
        /// Path in the source.
        source: String,
        /// `from=` a stage index or image name; `None` for the context.
        from: Option<CopyFrom>,
        /// `rw`: writes allowed but discarded.
        readwrite: bool,
    },
    /// `type=tmpfs`.
    Tmpfs {
        /// Where it is mounted.
        target: String,
        /// `size` in bytes.
        size: Option<u64>,
    },
    /// `type=secret`: a file given with `--secret id=…,src=…`.
    Secret {
        /// The secret id.
        id: String,
        /// Where it is mounted (default `/run/secrets/<id>`).
        target: String,
        /// `required`.
        required: bool,
    },
}

/// A `--from` of `COPY` or a bind mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyFrom {
    /// An earlier stage by index.
    Stage(usize),
    /// An image in the local store.
    Image(String),
}

/// A `COPY` or `ADD` step.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CopyStep {
    /// `ADD` rather than `COPY`: local archives are extracted.
    pub add: bool,
    /// Source paths or patterns.
    pub sources: Vec<String>,
    /// Heredoc sources (file name = heredoc name).
    pub heredocs: Vec<HeredocBody>,
    /// Destination.
    pub dest: String,
    /// `--from`.
    pub from: Option<CopyFrom>,
    /// `--chown`.
    pub chown: Option<String>,
    /// `--chmod`.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// `--exclude` patterns.
    pub excludes: Vec<String>,
    /// `--parents`.
    pub parents: bool,
    /// `ADD --checksum`.
    pub checksum: Option<String>,
}

impl Instruction {
    /// Whether the step changes the filesystem (and so may add a layer).
    pub fn touches_filesystem(&self) -> bool {
        matches!(self, Instruction::Run(_) | Instruction::Copy(_))
    }
}
