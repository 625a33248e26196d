//! The berth registry client: it pushes and pulls images over the OCI
//! distribution protocol (and Docker's registry dialect) and moves only the blobs
//! the other side is missing.
//!
//! It knows nothing of containers or Dockerfiles: its world is references,
//! manifests, blobs and a local content store. It never prints; progress is
//! reported to the caller as events.
