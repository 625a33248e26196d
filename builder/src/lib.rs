//! The berth image builder: it reads a Dockerfile and its build context, plans
//! the stages, and turns each instruction into an image layer cached under a key
//! made of the instruction and the hashes of its inputs.
//!
//! The builder runs `RUN` steps only through the runc command-line contract
//! (`create`/`start`/`delete` on an OCI bundle), so any runc-compatible binary can
//! be swapped in. It never prints: progress and results are returned as data or
//! written to a caller-supplied sink, and the `berth` binary decides how to show
//! them.
//!
//! Modules:
//! - [`store`]: the local store (blobs, tags, snapshots, cache records, locks);
//! - [`layer`]: deterministic layer tars, compression, whiteouts, unpacking;
//! - [`context`]: the build context's file hashes, cached by stat data;
//! - [`engine`]: walks the plan, computes cache keys, builds stages in parallel;
//! - [`container`]: `berth run`'s containers: records, bundles, supervision,
//!   logs, stop and removal;
//! - [`executor`]: containers through a runtime's command line: `RUN` steps,
//!   and the OCI config, overlay and user resolution `berth run` shares;
//! - [`image`]: images in the local store, and importing a root filesystem;
//! - [`images`]: listing, naming, inspecting, removing images and pruning;
//! - [`oci`]: the OCI image documents;
//! - [`output`]: tags, OCI layouts and Docker archives;
//! - [`archive`]: loading OCI layout and Docker archive tars into the store;
//! - [`registry`]: pulling bases and pushing results with the registry client;
//! - [`remote_cache`]: `--cache-to`/`--cache-from`, build caches in registries
//!   and directories.

pub mod archive;
pub mod container;
pub mod context;
pub mod engine;
pub mod executor;
pub mod frontend;
pub mod image;
pub mod images;
pub mod layer;
pub mod oci;
pub mod output;
pub mod registry;
pub mod remote_cache;
pub mod store;
