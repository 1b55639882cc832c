//! The contract as the runner sees it: `openapi.yaml` parsed into operations and component schemas, and a JSON
//! Schema validator (draft 2020-12, formats checked) whose failures name the JSON path, the expectation and the
//! actual value.
//!
//! Schemas are validated inside the loaded document: a response schema `S` becomes the root
//! `{"$schema": …, …S, "components": <the spec's components>}`, so `#/components/schemas/X` references resolve
//! without any network or file access.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

use jsonschema::error::ValidationErrorKind;
use serde_json::{Map, Value, json};

/// The `openapi.yaml` embedded at build time.
pub const EMBEDDED_SPEC: &str = include_str!("../../openapi.yaml");

/// A loaded OpenAPI 3.1 document.
#[derive(Debug)]
pub struct Spec {
    document: Value,
    operations: Vec<Operation>,
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

/// One REST (or WebSocket upgrade) operation of the spec.
#[derive(Debug, Clone)]
pub struct Operation {
    /// The `operationId` (or `<method>_<path>` when the spec gives none), with every character other than ASCII
    /// letters, digits, `.`, `_` and `-` replaced by `_`.
    pub id: String,
    /// Upper-case HTTP method.
    pub method: String,
    /// The path template (`/api/tests/runs/{run_id}`).
    pub path: String,
    /// The `application/json` request body schema, when the operation takes one.
    pub request_schema: Option<Value>,
    /// The request body example, when the spec gives one.
    pub request_example: Option<Value>,
    /// Documented responses: status code (`"200"`) to the `application/json` schema, if any.
    pub responses: BTreeMap<String, Option<Value>>,
}

/// Why a spec could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// The file could not be read.
    #[error("cannot read the spec file {path}")]
    Read {
        /// The path given.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The text is not YAML (or JSON).
    #[error("the spec is not valid YAML")]
    Yaml(#[source] serde_norway::Error),
    /// The document lacks something the runner needs.
    #[error("the spec is not a usable OpenAPI document: {0}")]
    Shape(String),
}

/// One way an instance breaks a schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// JSON pointer into the instance (`/error_rate_5m`; `""` for the whole document).
    pub path: String,
    /// What the schema asks for.
    pub expected: String,
    /// What the instance holds.
    pub actual: String,
}

impl Spec {
    /// The spec embedded in the binary at build time (the workspace's `openapi.yaml`).
    ///
    /// # Errors
    /// Only if the embedded file is unusable, which the crate's tests rule out.
    pub fn embedded() -> Result<Self, SpecError> {
        Self::from_yaml(EMBEDDED_SPEC)
    }

    /// Reads a spec from a YAML or JSON file.
    ///
    /// # Errors
    /// [`SpecError`] when the file cannot be read or is not a usable OpenAPI document.
    pub fn from_file(path: &Path) -> Result<Self, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|source| SpecError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_yaml(&text)
    }

    /// Parses a spec from YAML (JSON is YAML too).
    ///
    /// # Errors
    /// [`SpecError`] when the text is not YAML or lacks `paths` or `components.schemas`.
    pub fn from_yaml(text: &str) -> Result<Self, SpecError> {
        let document: Value = serde_norway::from_str(text).map_err(SpecError::Yaml)?;
        Self::from_value(document)
    }

    /// Builds a spec from an already parsed document.
    ///
    /// # Errors
    /// [`SpecError::Shape`] when `paths` or `components.schemas` is missing.
    pub fn from_value(document: Value) -> Result<Self, SpecError> {
        if !document["components"]["schemas"].is_object() {
            return Err(SpecError::Shape("no components.schemas".to_owned()));
        }
        let paths = document["paths"]
            .as_object()
            .ok_or_else(|| SpecError::Shape("no paths".to_owned()))?;
        let mut operations = Vec::new();
        for (path, item) in paths {
            let Some(item) = item.as_object() else {
                continue;
            };
            for (method, operation) in item {
                if !matches!(
                    method.as_str(),
                    "get" | "put" | "post" | "delete" | "patch" | "head" | "options"
                ) {
                    continue;
                }
                // Case ids embed the operation id, so it must not contain `/`.
                let id = operation["operationId"]
                    .as_str()
                    .map_or_else(|| format!("{method}{path}"), str::to_owned);
                let id: String = id
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || "._-".contains(c) {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect();
                let json_body = &operation["requestBody"]["content"]["application/json"];
                let responses = operation["responses"]
                    .as_object()
                    .map(|responses| {
                        responses
                            .iter()
                            .map(|(status, response)| {
                                let schema =
                                    response["content"]["application/json"]["schema"].clone();
                                (status.clone(), (!schema.is_null()).then_some(schema))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                operations.push(Operation {
                    id,
                    method: method.to_uppercase(),
                    path: path.clone(),
                    request_schema: json_body.get("schema").cloned(),
                    request_example: json_body.get("example").cloned(),
                    responses,
                });
            }
        }
        Ok(Self {
            document,
            operations,
            validators: Mutex::new(HashMap::new()),
        })
    }

    /// The whole document.
    #[must_use]
    pub fn document(&self) -> &Value {
        &self.document
    }

    /// `info.version`, or `""`.
    #[must_use]
    pub fn version(&self) -> &str {
        self.document["info"]["version"].as_str().unwrap_or("")
    }

    /// `info.title`, or `""`.
    #[must_use]
    pub fn title(&self) -> &str {
        self.document["info"]["title"].as_str().unwrap_or("")
    }

    /// Every operation, in document order.
    #[must_use]
    pub fn operations(&self) -> &[Operation] {
        &self.operations
    }

    /// The operation with this `operationId`.
    #[must_use]
    pub fn operation(&self, id: &str) -> Option<&Operation> {
        self.operations.iter().find(|operation| operation.id == id)
    }

    /// The component schema `name` (`#/components/schemas/name`), if the spec has it.
    #[must_use]
    pub fn component(&self, name: &str) -> Option<&Value> {
        self.document["components"]["schemas"].get(name)
    }

    /// Follows `$ref`s inside the document until a schema that is not a bare reference.
    #[must_use]
    pub fn resolve<'a>(&'a self, mut schema: &'a Value) -> &'a Value {
        for _ in 0..32 {
            let Some(reference) = schema.get("$ref").and_then(Value::as_str) else {
                break;
            };
            let Some(pointer) = reference.strip_prefix('#') else {
                break;
            };
            match self.document.pointer(pointer) {
                Some(target) => schema = target,
                None => break,
            }
        }
        schema
    }

    /// The schema of the WebSocket message with this `type`: the `WsEnvelope` discriminator's mapping when the
    /// spec has one, else the envelope itself.
    #[must_use]
    pub fn ws_message_schema(&self, message_type: &str) -> Option<Value> {
        let envelope_ref = self.document["paths"]["/ws"]["get"]["x-websocket-messages"]["$ref"]
            .as_str()
            .unwrap_or("#/components/schemas/WsEnvelope");
        let envelope = self.document.pointer(envelope_ref.strip_prefix('#')?)?;
        match envelope["discriminator"]["mapping"].as_object() {
            Some(mapping) => mapping
                .get(message_type)
                .and_then(Value::as_str)
                .map(|reference| json!({ "$ref": reference })),
            None => Some(json!({ "$ref": envelope_ref })),
        }
    }

    /// The `type` values the WebSocket envelope's discriminator knows.
    #[must_use]
    pub fn ws_message_types(&self) -> Vec<String> {
        self.component("WsEnvelope")
            .and_then(|envelope| envelope["discriminator"]["mapping"].as_object())
            .map(|mapping| mapping.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The same contract with FixLoop's additions to the seed's types taken out, for `--profile seed`: no value
    /// ranges (`minimum`, `maximum`, exclusive bounds), no string length bounds, and timestamps that need only be
    /// ISO-8601 (the seed's word), so a local time without a UTC offset is accepted.
    #[must_use]
    pub fn relaxed_for_seed(&self) -> Self {
        let mut document = self.document.clone();
        relax(&mut document);
        Self {
            document,
            operations: self
                .operations
                .iter()
                .cloned()
                .map(|mut operation| {
                    for schema in operation.responses.values_mut().flatten() {
                        relax(schema);
                    }
                    if let Some(schema) = &mut operation.request_schema {
                        relax(schema);
                    }
                    operation
                })
                .collect(),
            validators: Mutex::new(HashMap::new()),
        }
    }

    /// Validates `instance` against `schema` (a schema object or `{"$ref": …}` from this document). Returns every
    /// violation, the most specific first; empty when the instance is valid.
    #[must_use]
    pub fn check(&self, schema: &Value, instance: &Value) -> Vec<Violation> {
        let validator = match self.validator(schema) {
            Ok(validator) => validator,
            Err(message) => {
                return vec![Violation {
                    path: String::new(),
                    expected: format!("a schema the validator can compile ({message})"),
                    actual: "the spec's schema does not compile".to_owned(),
                }];
            }
        };
        validator
            .iter_errors(instance)
            .map(|error| violation(&error))
            .collect()
    }

    /// Validates against the component schema `name`.
    #[must_use]
    pub fn check_component(&self, name: &str, instance: &Value) -> Vec<Violation> {
        self.check(
            &json!({ "$ref": format!("#/components/schemas/{name}") }),
            instance,
        )
    }

    fn validator(&self, schema: &Value) -> Result<Arc<jsonschema::Validator>, String> {
        let key = schema.to_string();
        let mut cache = self
            .validators
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(validator) = cache.get(&key) {
            return Ok(Arc::clone(validator));
        }
        let mut root = match schema {
            Value::Object(object) => object.clone(),
            Value::Bool(true) => Map::new(),
            other => return Err(format!("schema is not an object: {other}")),
        };
        root.insert(
            "$schema".to_owned(),
            json!("https://json-schema.org/draft/2020-12/schema"),
        );
        root.insert("components".to_owned(), self.document["components"].clone());
        let validator = jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&Value::Object(root))
            .map_err(|error| error.to_string())?;
        let validator = Arc::new(validator);
        cache.insert(key, Arc::clone(&validator));
        Ok(validator)
    }
}

/// An ISO-8601 date and time, with or without a UTC offset (what the seed's "ISO-8601 string" admits; a Python
/// `datetime.isoformat()` of a naive time matches).
pub(crate) const ISO_8601_PATTERN: &str = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]+)?)?([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)?$";

/// Removes FixLoop's bounds from every schema in `value` (examples are left alone).
fn relax(value: &mut Value) {
    match value {
        Value::Object(object) => {
            for bound in [
                "minimum",
                "maximum",
                "exclusiveMinimum",
                "exclusiveMaximum",
                "minLength",
                "maxLength",
            ] {
                if object.get(bound).is_some_and(Value::is_number) {
                    object.remove(bound);
                }
            }
            if object.get("format").and_then(Value::as_str) == Some("date-time") {
                object.remove("format");
                object.insert("pattern".to_owned(), json!(ISO_8601_PATTERN));
            }
            for (key, child) in object.iter_mut() {
                if key != "example" && key != "examples" {
                    relax(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(relax),
        _ => {}
    }
}

/// Turns a validator error into a violation with an explicit path, expectation and actual value.
fn violation(error: &jsonschema::ValidationError<'_>) -> Violation {
    let path = error.instance_path().to_string();
    let instance = error.instance();
    match error.kind() {
        ValidationErrorKind::Required { property } => {
            let name = property
                .as_str()
                .map_or_else(|| property.to_string(), str::to_owned);
            let present = instance
                .as_object()
                .map(|object| object.keys().cloned().collect::<Vec<_>>().join(", "))
                .unwrap_or_default();
            Violation {
                path: format!("{path}/{}", escape_pointer(&name)),
                expected: format!("required key `{name}`"),
                actual: format!("key `{name}` is missing (keys present: [{present}])"),
            }
        }
        ValidationErrorKind::OneOfNotValid { context } | ValidationErrorKind::AnyOf { context } => {
            // Report the branch that came closest: one whose type fits the instance (a nullable `oneOf` should
            // not blame `null`), then the one with the fewest errors.
            let wrong_type = |branch: &Vec<jsonschema::ValidationError<'static>>| {
                branch.iter().any(|inner| {
                    matches!(inner.kind(), ValidationErrorKind::Type { .. })
                        && inner.instance_path().as_str() == error.instance_path().as_str()
                })
            };
            let closest = context
                .iter()
                .filter(|branch| !branch.is_empty())
                .min_by_key(|branch| (wrong_type(branch), branch.len()));
            match closest.and_then(|branch| branch.first()) {
                Some(inner) => {
                    let mut inner = violation(inner);
                    inner.expected = format!("{} (closest `oneOf` branch)", inner.expected);
                    inner
                }
                None => Violation {
                    path,
                    expected: error.to_string(),
                    actual: short_json(instance),
                },
            }
        }
        ValidationErrorKind::Enum { options } => Violation {
            path,
            expected: format!("one of {}", short_json(options)),
            actual: short_json(instance),
        },
        ValidationErrorKind::Format { format } => Violation {
            path,
            expected: format!("a string in format `{format}`"),
            actual: short_json(instance),
        },
        ValidationErrorKind::Type { kind } => Violation {
            path,
            expected: format!("type {}", type_kind(kind)),
            actual: format!("{} ({})", short_json(instance), json_type(instance)),
        },
        _ => Violation {
            path,
            expected: error.to_string(),
            actual: short_json(instance),
        },
    }
}

fn type_kind(kind: &jsonschema::error::TypeKind) -> String {
    match kind {
        jsonschema::error::TypeKind::Single(single) => format!("`{single}`"),
        jsonschema::error::TypeKind::Multiple(multiple) => {
            let names: Vec<String> = multiple.iter().map(|t| format!("`{t}`")).collect();
            names.join(" or ")
        }
    }
}

/// The JSON type name of a value.
pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(number) if number.is_i64() || number.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Compact JSON, cut to 200 characters.
pub(crate) fn short_json(value: &Value) -> String {
    truncate(&value.to_string(), 200)
}

/// Cuts `text` to at most `max` characters, marking the cut.
pub(crate) fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max).collect();
    out.push('…');
    out
}

fn escape_pointer(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_spec_has_the_seed_operations_the_websocket_the_services_and_the_history() {
        let spec = Spec::embedded().expect("embedded spec loads");
        let mut ids: Vec<&str> = spec.operations().iter().map(|op| op.id.as_str()).collect();
        ids.sort_unstable();
        assert_eq!(
            ids,
            [
                "approveRemediation",
                "askCopilot",
                "connectWebSocket",
                "getCurrentIncident",
                "getIncident",
                "getRemediationStats",
                "getService",
                "getStatus",
                "getTestRun",
                "listCiIncidents",
                "listCiLogs",
                "listIncidents",
                "listRemediations",
                "listReplicas",
                "listServices",
                "rejectRemediation",
                "reloadProfile",
                "runTests",
                "setDemoBug",
                "setRemediationKillSwitch",
                "simulateIncident",
                "submitCiLogs"
            ]
        );
    }

    #[test]
    fn missing_key_is_reported_by_name_with_its_path() {
        let spec = Spec::embedded().expect("embedded spec loads");
        let status = json!({
            "status": "HEALTHY", "error_rate": 0.0, "p95_latency_ms_5m": 1.0,
            "active_incident_id": null, "updated_at": "2026-11-21T10:15:03Z"
        });
        let violations = spec.check_component("SystemStatus", &status);
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert_eq!(violations[0].path, "/error_rate_5m");
        assert!(violations[0].expected.contains("error_rate_5m"));
    }

    #[test]
    fn timestamp_without_timezone_breaks_the_date_time_format() {
        let spec = Spec::embedded().expect("embedded spec loads");
        let status = json!({
            "status": "HEALTHY", "error_rate_5m": 0.0, "p95_latency_ms_5m": 1.0,
            "active_incident_id": null, "updated_at": "2026-11-21T10:15:03"
        });
        let violations = spec.check_component("SystemStatus", &status);
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert_eq!(violations[0].path, "/updated_at");
        assert!(violations[0].expected.contains("date-time"));
    }

    #[test]
    fn the_seed_relaxation_drops_fixloop_bounds_but_keeps_the_seed_types() {
        let spec = Spec::embedded()
            .expect("embedded spec loads")
            .relaxed_for_seed();
        // A naive timestamp and a rate above any FixLoop range: both are the seed's "ISO-8601" and "number".
        let status = json!({
            "status": "HEALTHY", "error_rate_5m": 250.0, "p95_latency_ms_5m": 1.0,
            "active_incident_id": null, "updated_at": "2026-11-21T10:15:03.123456"
        });
        assert_eq!(spec.check_component("SystemStatus", &status), Vec::new());
        // Keys, types, enums and the ISO-8601 shape still count.
        let broken = json!({
            "status": "OK", "error_rate_5m": "high", "p95_latency_ms_5m": 1.0,
            "active_incident_id": null, "updated_at": "yesterday"
        });
        let paths: Vec<String> = spec
            .check_component("SystemStatus", &broken)
            .into_iter()
            .map(|violation| violation.path)
            .collect();
        for path in ["/status", "/error_rate_5m", "/updated_at"] {
            assert!(paths.iter().any(|p| p == path), "{path} in {paths:?}");
        }
        let operation = spec.operation("askCopilot").expect("askCopilot");
        let request = operation.request_schema.as_ref().expect("a body");
        assert!(!spec.resolve(request).to_string().contains("maxLength"));
    }

    #[test]
    fn nullable_one_of_reports_the_closest_branch() {
        let spec = Spec::embedded().expect("embedded spec loads");
        let operation = spec
            .operation("getCurrentIncident")
            .expect("operation exists");
        let schema = operation.responses["200"].clone().expect("json schema");
        assert!(spec.check(&schema, &Value::Null).is_empty());
        let violations = spec.check(&schema, &json!({"incident_id": "inc-1"}));
        assert!(!violations.is_empty());
        assert!(
            violations[0].expected.contains("required key"),
            "{violations:?}"
        );
    }

    #[test]
    fn ws_message_schema_follows_the_discriminator() {
        let spec = Spec::embedded().expect("embedded spec loads");
        assert_eq!(
            spec.ws_message_schema("plan.generated"),
            Some(json!({"$ref": "#/components/schemas/PlanGeneratedMessage"}))
        );
        assert_eq!(spec.ws_message_schema("nope"), None);
        assert!(
            spec.ws_message_types()
                .contains(&"tests.updated".to_owned())
        );
    }
}
