//! The build context: a stat walk of the context directory that honours the
//! ignore rules, and content hashes for the files a step uses, cached by
//! (path, size, mtime, inode, mode) so an unchanged context costs one stat walk.
//!
//! Symlinks are recorded as symlinks (their targets are never followed), and
//! nothing outside the context root is read.

pub mod hashcache;
pub mod walk;

pub use hashcache::HashCache;
pub use walk::{Context, ContextFile, FileKind, Visit};
