//! The berth image builder: it reads a Dockerfile and its build context, plans
//! the stages, and turns each instruction into an image layer cached under a key
//! made of the instruction and the hashes of its inputs.
//!
//! The builder runs `RUN` steps only through the runc command-line contract
//! (`create`/`start`/`delete` on an OCI bundle), so any runc-compatible binary can
//! be swapped in. It never prints: progress and results are returned as data or
//! written to a caller-supplied sink, and the `berth` binary decides how to show
//! them.
