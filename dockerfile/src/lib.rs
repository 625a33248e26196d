//! The Dockerfile frontend: it reads a Dockerfile the way BuildKit reads it,
//! expands words with the Dockerfile's own rules, applies `.dockerignore` with
//! Docker's semantics, and plans the build as plain data.
//!
//! The pieces, in the order a build uses them:
//!
//! - [`parse`] / [`parse_file`] turn text into a [`Dockerfile`] of [`Node`]s
//!   (directives, continuations, exec/shell form, flags, heredocs, lines).
//! - [`instruction::Instruction::from_node`] gives each node its type.
//! - [`plan::plan`] resolves stages, ARG scoping, build args, platform args and
//!   `--target` into a [`plan::BuildPlan`]: every step with its expanded
//!   arguments and the build args it used, which is what cache keys are made of.
//! - [`dockerignore`] reads `.dockerignore` files and matches paths.
//! - [`shell::Lexer`] is the word expander all of them share.
//!
//! Nothing here prints or touches the network; the only I/O is reading the
//! Dockerfile and the ignore file.

pub mod ast;
pub mod diagnostic;
pub mod directives;
pub mod dockerignore;
pub mod glob;
pub mod heredoc;
pub mod instruction;
mod line_parsers;
pub mod parser;
pub mod plan;
pub mod platform;
pub mod shell;
pub mod shell_pattern;

pub use ast::{Dockerfile, Heredoc, Node};
pub use diagnostic::{Diagnostic, Severity};
pub use parser::parse;
pub use plan::{BuildPlan, PlanError, PlanOptions, plan};
pub use platform::Platform;

use std::path::{Path, PathBuf};
use thiserror::Error;

/// Why the frontend could not produce what was asked.
#[derive(Debug, Error)]
pub enum FrontendError {
    /// A file could not be read.
    #[error("cannot read the Dockerfile {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The Dockerfile is invalid; the diagnostic says where and why.
    #[error("{0}")]
    Invalid(Box<Diagnostic>),
}

/// Reads and parses the Dockerfile at `path`; diagnostics name it as given.
pub fn parse_file(path: &Path) -> Result<Dockerfile, FrontendError> {
    let bytes = std::fs::read(path).map_err(|source| FrontendError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8_lossy(&bytes);
    parse(&text, &path.display().to_string()).map_err(FrontendError::Invalid)
}
