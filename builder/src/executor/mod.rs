//! Running `RUN` steps in real containers through a runc-compatible runtime's
//! command line, on an overlayfs root made of the parent's snapshots.

pub mod mount;
