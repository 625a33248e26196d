//! `berth inspect IMAGE`: the store's description of an image in docker's
//! shape. berth's own keys (`Digest`, `Descriptor`, `Manifest`,
//! `ImageConfig`…) stay beside docker's.

use serde_json::{Value, json};

/// Reshapes `berth_store::images::inspect`'s document as `docker inspect`
/// prints an image.
pub fn document(mut doc: Value) -> Value {
    let config = doc["ImageConfig"].clone();
    let layers = config["rootfs"]["diff_ids"].clone();
    let history = config["history"].as_array().cloned().unwrap_or_default();
    // docker's Comment is that of the last history entry.
    let comment = history
        .last()
        .and_then(|h| h["comment"].as_str())
        .unwrap_or_default()
        .to_string();
    if let Value::Object(map) = &mut doc {
        map.insert("Parent".into(), json!(""));
        map.insert("Comment".into(), json!(comment));
        map.insert("Container".into(), json!(""));
        map.insert("DockerVersion".into(), json!(""));
        if map.get("Author").is_none_or(Value::is_null) {
            map.insert("Author".into(), json!(""));
        }
        if map.get("Variant").is_some_and(Value::is_null) {
            map.remove("Variant");
        }
        map.insert("VirtualSize".into(), map["Size"].clone());
        map.insert(
            "GraphDriver".into(),
            json!({"Name": "overlay", "Data": Value::Null}),
        );
        map.insert(
            "RootFS".into(),
            json!({"Type": "layers", "Layers": layers_or_empty(layers)}),
        );
        map.insert(
            "Metadata".into(),
            json!({"LastTagTime": "0001-01-01T00:00:00Z"}),
        );
        if map.get("Config").is_none_or(Value::is_null) {
            map.insert("Config".into(), json!({}));
        }
    }
    doc
}

fn layers_or_empty(layers: Value) -> Value {
    match layers {
        Value::Array(_) => layers,
        _ => json!([]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_get_docker_keys_and_shapes() {
        let doc = document(json!({
            "Id": "sha256:abc",
            "Size": 10,
            "Author": null,
            "Variant": null,
            "Config": {"Cmd": ["sh"]},
            "RootFS": {"type": "layers", "diff_ids": ["sha256:1"]},
            "ImageConfig": {
                "rootfs": {"type": "layers", "diff_ids": ["sha256:1"]},
                "history": [{"comment": "first"}, {"comment": "last"}],
            },
        }));
        assert_eq!(
            doc["RootFS"],
            json!({"Type": "layers", "Layers": ["sha256:1"]})
        );
        assert_eq!(doc["Comment"], "last");
        assert_eq!(doc["Author"], "");
        assert_eq!(doc["Parent"], "");
        assert!(doc.get("Variant").is_none());
        assert_eq!(doc["Metadata"]["LastTagTime"], "0001-01-01T00:00:00Z");
    }
}
