//! The API's published descriptions, `docs/openapi.yaml` and `docs/asyncapi.yaml`, built into
//! the binary and served as JSON by the local stack (`GET /openapi.json`, `GET
//! /asyncapi.json`), so a client generator or a fuzzer points at the running stack and gets
//! the document of exactly that build. Kept as YAML in the repository because people edit
//! and review it; `functions/tests/openapi.rs` holds the OpenAPI one to the code.

use std::sync::LazyLock;

use saphyr::{LoadableYamlNode, Scalar, Yaml};
use serde_json::{Map, Value};

pub const OPENAPI_YAML: &str = include_str!("../../../docs/openapi.yaml");
pub const ASYNCAPI_YAML: &str = include_str!("../../../docs/asyncapi.yaml");

static OPENAPI: LazyLock<Result<Value, String>> = LazyLock::new(|| yaml_to_json(OPENAPI_YAML));
static ASYNCAPI: LazyLock<Result<Value, String>> = LazyLock::new(|| yaml_to_json(ASYNCAPI_YAML));

/// `docs/openapi.yaml` as JSON, or why it does not parse.
pub fn openapi() -> Result<&'static Value, &'static str> {
    OPENAPI.as_ref().map_err(String::as_str)
}

/// `docs/asyncapi.yaml` as JSON, or why it does not parse.
pub fn asyncapi() -> Result<&'static Value, &'static str> {
    ASYNCAPI.as_ref().map_err(String::as_str)
}

/// One YAML document as JSON. The documents use plain YAML only: a tag, an alias or a
/// non-string key is refused rather than guessed at.
pub fn yaml_to_json(text: &str) -> Result<Value, String> {
    let documents = Yaml::load_from_str(text).map_err(|error| error.to_string())?;
    match documents.as_slice() {
        [document] => to_json(document),
        other => Err(format!("expected one YAML document, found {}", other.len())),
    }
}

fn to_json(node: &Yaml) -> Result<Value, String> {
    Ok(match node {
        Yaml::Value(scalar) => match scalar {
            Scalar::Null => Value::Null,
            Scalar::Boolean(b) => Value::Bool(*b),
            Scalar::Integer(i) => Value::from(*i),
            Scalar::FloatingPoint(f) => Value::from(f.into_inner()),
            Scalar::String(s) => Value::String(s.to_string()),
        },
        Yaml::Sequence(items) => Value::Array(items.iter().map(to_json).collect::<Result<_, _>>()?),
        Yaml::Mapping(entries) => {
            let mut object = Map::new();
            for (key, value) in entries {
                let Yaml::Value(Scalar::String(key)) = key else {
                    return Err(format!("a mapping key is not a string: {key:?}"));
                };
                object.insert(key.to_string(), to_json(value)?);
            }
            Value::Object(object)
        }
        other => return Err(format!("unsupported YAML node: {other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_documents_parse_and_say_what_they_are() {
        assert_eq!(openapi().unwrap()["openapi"], "3.1.0");
        assert_eq!(asyncapi().unwrap()["asyncapi"], "3.0.0");
    }

    #[test]
    fn quoted_status_keys_stay_strings_and_plain_ones_are_refused() {
        let value = yaml_to_json("responses:\n  '200': {description: ok}\n").unwrap();
        assert_eq!(value["responses"]["200"]["description"], "ok");
        assert!(yaml_to_json("responses:\n  200: {description: ok}\n").is_err());
        assert!(yaml_to_json("a: !Ref T\n").is_err());
    }
}
