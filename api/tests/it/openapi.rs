//! Validation of real responses against the served OpenAPI document's component schemas.

use serde_json::{Value, json};

/// Make every object schema with `properties` reject unknown fields, so a misnamed or undocumented field
/// fails validation.
fn strict(v: &mut Value) {
    match v {
        Value::Object(m) => {
            if m.contains_key("properties") && !m.contains_key("additionalProperties") {
                m.insert("additionalProperties".into(), Value::Bool(false));
            }
            m.values_mut().for_each(strict);
        }
        Value::Array(a) => a.iter_mut().for_each(strict),
        _ => {}
    }
}

/// Validates instances against `#/components/schemas/NAME` of an OpenAPI 3.1 document.
pub struct Schemas {
    doc: Value,
}

impl Schemas {
    pub fn new(doc: &Value) -> Self {
        assert_eq!(doc["openapi"].as_str().map(|v| v.starts_with("3.1")), Some(true), "OpenAPI 3.1 expected");
        let mut components = json!({ "components": doc["components"].clone() });
        strict(&mut components);
        Self { doc: components }
    }

    #[track_caller]
    pub fn check(&self, name: &str, instance: &Value) {
        assert!(self.doc["components"]["schemas"].get(name).is_some(), "no schema {name}");
        let mut schema = self.doc.clone();
        schema["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
        schema["$ref"] = json!(format!("#/components/schemas/{name}"));
        let validator = jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("schema {name}: {e}"));
        let errors: Vec<String> =
            validator.iter_errors(instance).map(|e| format!("{} at {}", e, e.instance_path())).collect();
        assert!(errors.is_empty(), "{name} does not match its schema: {errors:#?}\ninstance: {instance:#}");
    }
}
