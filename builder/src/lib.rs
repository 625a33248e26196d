//! The berth image build engine: it walks a build plan from
//! [`berth_dockerfile`] and turns each instruction into an image layer cached
//! under a key made of the instruction and the hashes of its inputs.
//!
//! The builder runs `RUN` steps only through the runc command-line contract,
//! by way of [`berth_containers::runc`], so any runc-compatible binary can be
//! swapped in. It never prints: progress and results are returned as data or
//! written to a caller-supplied sink, and the `berth` binary decides how to
//! show them.
//!
//! Modules:
//! - [`engine`]: walks the plan, computes cache keys, builds stages in parallel;
//! - [`context`]: the build context's file hashes, cached by stat data;
//! - [`cache`]: the build cache records, one per cache key;
//! - [`change`]: `--change` instructions of `commit` and `import`;
//! - [`remote_cache`]: `--cache-to`/`--cache-from`, build caches in registries
//!   and directories;
//! - [`output`]: tags, OCI layouts and Docker archives;
//! - [`registry`]: pulling bases and pushing results with the registry client;
//! - [`prune`]: removing what no image, container or cache record needs.
pub mod cache;
pub mod change;
pub mod context;
pub mod engine;
pub mod output;
pub mod prune;
pub mod registry;
pub mod remote_cache;
mod text;
