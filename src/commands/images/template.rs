//! The small part of Go templates that `docker inspect --format` users write:
//! text with `{{.Field.Path}}` (strings bare, other values as JSON) and
//! `{{json .Field.Path}}` actions.

use serde_json::Value;

/// Renders `template` against `value`.
pub fn render(template: &str, value: &Value) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| unsupported(template, "an action is not closed with }}"))?;
        let action = after[..end].trim();
        let (as_json, path) = match action.strip_prefix("json ") {
            Some(path) => (true, path.trim()),
            None => (false, action),
        };
        let field = lookup(value, path).ok_or_else(|| {
            unsupported(
                template,
                &format!("'{action}' is not a field path like .Config.Env"),
            )
        })?;
        match field {
            Value::String(text) if !as_json => out.push_str(text),
            Value::Null if !as_json => out.push_str("<no value>"),
            other => out.push_str(&other.to_string()),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The value at `.A.B.C` (`.` is the whole value); `None` if the path is
/// not a field path. A missing field is null, as in Go templates on maps.
fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    static NULL: Value = Value::Null;
    let fields = path.strip_prefix('.')?;
    if fields.is_empty() {
        return Some(value);
    }
    let mut current = value;
    for field in fields.split('.') {
        if field.is_empty() || !field.chars().all(|c| c.is_alphanumeric() || c == '_') {
            return None;
        }
        current = current.get(field).unwrap_or(&NULL);
    }
    Some(current)
}

fn unsupported(template: &str, why: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "unsupported --format template '{template}': {why}\nhint: berth supports {{{{.Field.Path}}}} and {{{{json .Field.Path}}}}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_paths_and_json_render_like_docker() {
        let value = serde_json::json!({
            "Id": "sha256:abc",
            "Config": {"Env": ["A=1"], "User": ""},
            "Size": 12,
        });
        for (template, want) in [
            ("{{.Id}}", "sha256:abc"),
            ("id={{ .Id }} size={{.Size}}", "id=sha256:abc size=12"),
            ("{{json .Config.Env}}", r#"["A=1"]"#),
            ("{{.Config.Env}}", r#"["A=1"]"#),
            ("{{json .Config.User}}", r#""""#),
            ("{{.Missing.Field}}", "<no value>"),
            ("plain", "plain"),
        ] {
            assert_eq!(render(template, &value).unwrap(), want, "{template}");
        }
        for bad in [
            "{{.Id",
            "{{range .X}}",
            "{{.Config..Env}}",
            "{{printf \"%s\" .Id}}",
        ] {
            assert!(render(bad, &value).is_err(), "{bad}");
        }
    }
}
