//! The `# check=` directive: which build checks to skip and whether
//! warnings fail the build.

use crate::diagnostic::{Diagnostic, Severity};
use std::collections::BTreeSet;

/// The `# check=` directive: rules to skip and whether warnings fail the build.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckConfig {
    /// Rule names to skip (lowercase); `all` skips every rule.
    pub skip: BTreeSet<String>,
    /// `error=true`: warnings fail the build.
    pub error: bool,
}

impl CheckConfig {
    /// Parses `skip=Rule1,Rule2;error=true`.
    pub fn parse(text: &str) -> Result<CheckConfig, String> {
        let mut config = CheckConfig::default();
        for part in text.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((key, value)) = part.split_once('=') else {
                return Err(format!(
                    "invalid check directive part {part:?}: expected key=value"
                ));
            };
            match key.trim().to_ascii_lowercase().as_str() {
                "skip" => config.skip.extend(
                    value
                        .split(',')
                        .map(|rule| rule.trim().to_ascii_lowercase())
                        .filter(|rule| !rule.is_empty()),
                ),
                "error" => {
                    config.error = match value.trim().to_ascii_lowercase().as_str() {
                        "true" => true,
                        "false" => false,
                        other => {
                            return Err(format!(
                                "invalid check directive error value {other:?}: expected true or false"
                            ));
                        }
                    }
                }
                other => {
                    return Err(format!(
                        "invalid check directive key {other:?}: expected skip or error"
                    ));
                }
            }
        }
        Ok(config)
    }

    pub(super) fn keeps(&self, diagnostic: &Diagnostic) -> bool {
        match &diagnostic.rule {
            Some(rule) if diagnostic.severity == Severity::Warning => {
                !self.skip.contains("all") && !self.skip.contains(&rule.to_ascii_lowercase())
            }
            _ => true,
        }
    }
}
