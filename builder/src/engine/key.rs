//! Cache keys: a step's key is the digest of its parent's key, the normalised
//! instruction, the build args it used, and the digests of its other inputs
//! (the selected files of a `COPY`). A change anywhere in that chain changes
//! every later key, so a miss invalidates exactly the steps that depend on it.

use crate::store::Digest;
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;

/// Bumped when the meaning of a key changes, so old records are not reused.
const VERSION: &str = "berth-cache-v1";

/// The key of a base: scratch, an image pinned by manifest digest, or a stage.
pub fn base_key(kind: &str, pin: &str, platform: &str) -> Digest {
    let mut h = Sha256::new();
    h.update(format!("{VERSION}\nbase\n{kind}\n{pin}\n{platform}\n"));
    Digest::from_hasher(h)
}

/// The key of a step.
pub fn step_key(
    parent: Option<&Digest>,
    instruction: &str,
    build_args: &BTreeMap<String, String>,
    inputs: &[String],
) -> Digest {
    let mut h = Sha256::new();
    h.update(VERSION.as_bytes());
    h.update(b"\nparent\n");
    // `COPY --link` steps have no parent in their key: their layer does not
    // depend on what lies below.
    h.update(
        parent
            .map(Digest::as_str)
            .unwrap_or("independent")
            .as_bytes(),
    );
    h.update(b"\ninstruction\n");
    h.update((instruction.len() as u64).to_le_bytes());
    h.update(instruction.as_bytes());
    h.update(b"\nargs\n");
    for (k, v) in build_args {
        h.update((k.len() as u64).to_le_bytes());
        h.update(k.as_bytes());
        h.update((v.len() as u64).to_le_bytes());
        h.update(v.as_bytes());
    }
    h.update(b"\ninputs\n");
    for input in inputs {
        h.update((input.len() as u64).to_le_bytes());
        h.update(input.as_bytes());
    }
    Digest::from_hasher(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_of_a_key_matters() {
        let parent = base_key("scratch", "", "linux/amd64");
        let args: BTreeMap<String, String> = [("V".to_string(), "1".to_string())].into();
        let base = step_key(Some(&parent), "RUN make", &args, &["x".into()]);
        assert_eq!(
            base,
            step_key(Some(&parent), "RUN make", &args, &["x".into()])
        );
        let other_parent = base_key("image", "sha256:00", "linux/amd64");
        let other_args: BTreeMap<String, String> = [("V".to_string(), "2".to_string())].into();
        for different in [
            step_key(Some(&other_parent), "RUN make", &args, &["x".into()]),
            step_key(None, "RUN make", &args, &["x".into()]),
            step_key(Some(&parent), "RUN make all", &args, &["x".into()]),
            step_key(Some(&parent), "RUN make", &other_args, &["x".into()]),
            step_key(Some(&parent), "RUN make", &args, &["y".into()]),
            // Boundaries are length-prefixed: moving bytes between parts differs.
            step_key(
                Some(&parent),
                "RUN make",
                &args,
                &["x".into(), String::new()],
            ),
        ] {
            assert_ne!(base, different);
        }
    }
}
