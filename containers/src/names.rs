//! Container ids (64 random hex digits, as Docker's) and names (given, or
//! made up from two words as Docker does).

use super::ContainerError;
use std::fs::File;
use std::io::Read;

/// A fresh random container id: 32 bytes from the kernel's generator, in hex.
pub fn new_id() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

const ADJECTIVES: &[&str] = &[
    "brave", "calm", "eager", "fervent", "gentle", "happy", "jolly", "keen", "lucid", "merry",
    "nimble", "quiet", "sharp", "steady", "tender", "vivid", "wise", "zealous",
];

const NOUNS: &[&str] = &[
    "anchor",
    "beacon",
    "buoy",
    "cove",
    "dock",
    "ferry",
    "harbor",
    "jetty",
    "keel",
    "lighthouse",
    "marina",
    "mooring",
    "pier",
    "quay",
    "rudder",
    "skiff",
    "tide",
    "wharf",
];

/// A made-up name derived from the id, `adjective_noun`; `attempt` picks
/// another combination when the first is taken.
pub fn made_up(id: &str, attempt: usize) -> String {
    let seed = u64::from_str_radix(id.get(..12).unwrap_or("0"), 16).unwrap_or(0);
    let n = seed as usize + attempt;
    let name = format!(
        "{}_{}",
        ADJECTIVES[n % ADJECTIVES.len()],
        NOUNS[(n / ADJECTIVES.len()) % NOUNS.len()]
    );
    // Past every combination, a number keeps names unique as Docker's do.
    if attempt >= ADJECTIVES.len() * NOUNS.len() {
        format!("{name}{attempt}")
    } else {
        name
    }
}

/// Checks a user-given name against Docker's rule `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub fn validate(name: &str) -> Result<(), ContainerError> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
        Ok(())
    } else {
        Err(ContainerError::InvalidName(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_64_hex_digits_and_differ() {
        let a = new_id().unwrap();
        let b = new_id().unwrap();
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn names_follow_dockers_rule() {
        for good in ["web", "a", "web-1", "Web_1.x"] {
            assert!(validate(good).is_ok(), "{good}");
        }
        for bad in ["", "-web", "_x", "we b", "a/b", "é"] {
            assert!(validate(bad).is_err(), "{bad}");
        }
        let id = new_id().unwrap();
        assert!(validate(&made_up(&id, 0)).is_ok());
        assert_ne!(made_up(&id, 0), made_up(&id, 1));
    }
}
