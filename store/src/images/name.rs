//! Checking a new image name against docker's reference grammar (the
//! registry client's parser), so `berth tag` never writes a name no registry
//! or tool would accept.

use super::ImagesError;
use crate::reference;

/// Checks `name` (`[registry[:port]/]path[:tag]`, no digest).
pub fn validate_name(name: &str) -> Result<(), ImagesError> {
    let invalid = |reason: &str| ImagesError::InvalidName {
        name: name.to_string(),
        reason: reason.to_string(),
    };
    if name.contains('@') {
        return Err(invalid("a new name cannot carry a digest"));
    }
    reference::parse(name).map_err(|e| invalid(&e.reason))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_docker_reference_grammar() {
        for good in [
            "app",
            "app:1.0",
            "team/app:v1_2-rc",
            "localhost/app",
            "localhost:5000/team/app:latest",
            "registry.example.com/a/b/c",
            "my-app__x.y",
            "a--b",
        ] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "App",
            "app:",
            "app:-x",
            "app@sha256:00",
            "team//app",
            "app_",
            "app___x",
            "-app",
            "localhost:port/app",
            "app:a b",
        ] {
            assert!(
                matches!(validate_name(bad), Err(ImagesError::InvalidName { .. })),
                "{bad}"
            );
        }
    }
}
