//! The stateless cases kept as data (STYLE §6): `conformance/cases/shapes.json`, embedded at build time, is validated
//! against the meta-schema `conformance/cases/cases.schema.json` (JSON Schema draft 2020-12) and then read into
//! [`DataCase`]s. A broken data file is a [`CaseDataError`] naming the entry, never a panic.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::Value;

use crate::case::Profile;

/// The embedded data file of stateless `shapes/…` cases.
pub(crate) const SHAPES_DATA: &str = include_str!("../../cases/shapes.json");

/// The embedded meta-schema every data entry must satisfy.
pub(crate) const CASES_META_SCHEMA: &str = include_str!("../../cases/cases.schema.json");

/// Where the embedded data file lives in the repository (for error messages).
const SHAPES_DATA_NAME: &str = "conformance/cases/shapes.json";

/// Why a data file of cases cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaseDataError {
    /// The file or the meta-schema is not JSON.
    #[error("{file} is not JSON: {message}")]
    Json {
        /// The file.
        file: String,
        /// The parser's message.
        message: String,
    },
    /// The meta-schema does not compile.
    #[error("the meta-schema conformance/cases/cases.schema.json does not compile: {0}")]
    MetaSchema(String),
    /// An entry breaks the meta-schema (or the rules it cannot express, such as unique ids).
    #[error("{file}: {entry}: {message}")]
    Entry {
        /// The file.
        file: String,
        /// The entry: its index and, when it has one, its id.
        entry: String,
        /// What is wrong.
        message: String,
    },
}

/// One stateless case of a data file: a request, the status it must get and the schema the body must satisfy.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DataCase {
    /// The case id, `area/operation/n`.
    pub(crate) id: String,
    /// One line saying what the case checks.
    pub(crate) description: String,
    /// The contract clause and schema the case checks.
    pub(crate) clause: String,
    /// The smallest profile the case belongs to.
    pub(crate) profile: Profile,
    /// The operation whose documented responses judge the reply.
    #[serde(rename = "operationId")]
    pub(crate) operation_id: String,
    /// The HTTP method.
    pub(crate) method: String,
    /// The concrete request path.
    pub(crate) path: String,
    /// The request body; `None` sends none.
    #[serde(default)]
    pub(crate) body: Option<DataBody>,
    /// The status the reply must have.
    pub(crate) expected_status: u16,
    /// `from_spec`, or a `#/components/schemas/…` reference.
    pub(crate) response_schema: String,
}

/// The request body of a data case.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged, deny_unknown_fields)]
pub(crate) enum DataBody {
    /// A literal JSON document.
    Json {
        /// The document.
        json: Value,
    },
    /// The spec's request example of the operation, or `fallback` when the spec gives none.
    SpecExample {
        /// Always `true` (the meta-schema says so).
        spec_request_example: bool,
        /// The body sent when the spec has no request example.
        fallback: Value,
    },
}

impl DataCase {
    /// The component reference the body is checked against, or `None` for the spec's documented response.
    pub(crate) fn schema_ref(&self) -> Option<&str> {
        (self.response_schema != "from_spec").then_some(self.response_schema.as_str())
    }
}

/// The embedded `shapes/…` data cases, loaded and validated once.
pub(crate) fn shapes() -> &'static Result<Vec<DataCase>, CaseDataError> {
    static SHAPES: OnceLock<Result<Vec<DataCase>, CaseDataError>> = OnceLock::new();
    SHAPES.get_or_init(|| load(SHAPES_DATA_NAME, SHAPES_DATA))
}

/// Parses `text` (the data file `file`), validates it against the meta-schema and reads its entries.
pub(crate) fn load(file: &str, text: &str) -> Result<Vec<DataCase>, CaseDataError> {
    let meta: Value =
        serde_json::from_str(CASES_META_SCHEMA).map_err(|error| CaseDataError::Json {
            file: "conformance/cases/cases.schema.json".to_owned(),
            message: error.to_string(),
        })?;
    let validator = jsonschema::draft202012::options()
        .build(&meta)
        .map_err(|error| CaseDataError::MetaSchema(error.to_string()))?;
    let document: Value = serde_json::from_str(text).map_err(|error| CaseDataError::Json {
        file: file.to_owned(),
        message: error.to_string(),
    })?;
    let entry_error = |index: Option<usize>, message: String| {
        let entry = match index {
            None => "the document".to_owned(),
            Some(index) => match document
                .get(index)
                .and_then(|entry| entry.get("id"))
                .and_then(Value::as_str)
            {
                Some(id) => format!("entry {index} ({id})"),
                None => format!("entry {index}"),
            },
        };
        CaseDataError::Entry {
            file: file.to_owned(),
            entry,
            message,
        }
    };
    if let Some(error) = validator.iter_errors(&document).next() {
        let path = error.instance_path().to_string();
        let mut segments = path.trim_start_matches('/').splitn(2, '/');
        let index = segments.next().and_then(|first| first.parse().ok());
        let within = segments
            .next()
            .map_or_else(String::new, |rest| format!("/{rest}: "));
        return Err(entry_error(index, format!("{within}{error}")));
    }
    let entries = document.as_array().map_or(&[][..], Vec::as_slice);
    let mut cases = Vec::with_capacity(entries.len());
    let mut ids = BTreeSet::new();
    for (index, entry) in entries.iter().enumerate() {
        let case: DataCase = serde_json::from_value(entry.clone())
            .map_err(|error| entry_error(Some(index), error.to_string()))?;
        if !ids.insert(case.id.clone()) {
            return Err(entry_error(
                Some(index),
                format!("duplicate id {:?}", case.id),
            ));
        }
        cases.push(case);
    }
    Ok(cases)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committed() -> Value {
        serde_json::from_str(SHAPES_DATA).expect("the committed data file is JSON")
    }

    #[test]
    fn the_committed_data_file_satisfies_the_meta_schema() {
        let cases = shapes().as_ref().expect("the committed data file loads");
        assert_eq!(cases.len(), 8, "{cases:?}");
        assert_eq!(cases[0].id, "shapes/getStatus/1");
        assert_eq!(
            cases[0].schema_ref(),
            Some("#/components/schemas/SystemStatus")
        );
        assert!(cases.iter().all(|case| case.id.starts_with("shapes/")));
        assert_eq!(cases[0].profile, Profile::Seed);
        assert_eq!(cases[4].profile, Profile::Fixloop);
        // The meta-schema itself is a valid draft 2020-12 schema.
        let meta: Value = serde_json::from_str(CASES_META_SCHEMA).expect("JSON");
        assert!(jsonschema::meta::is_valid(&meta));
    }

    fn broken(change: impl FnOnce(&mut Value)) -> String {
        let mut document = committed();
        change(&mut document);
        let error =
            load("broken.json", &document.to_string()).expect_err("a broken entry is rejected");
        error.to_string()
    }

    #[test]
    fn a_broken_entry_is_rejected_with_a_message_naming_it() {
        let message = broken(|document| document[4]["expected_status"] = serde_json::json!("404"));
        assert!(message.contains("broken.json"), "{message}");
        assert!(
            message.contains("entry 4 (shapes/getTestRun/2)"),
            "{message}"
        );
        assert!(message.contains("/expected_status"), "{message}");

        let message =
            broken(|document| document[1]["id"] = serde_json::json!("shapes/setDemoBug/one"));
        assert!(
            message.contains("entry 1 (shapes/setDemoBug/one)"),
            "{message}"
        );
        assert!(message.contains("/id"), "{message}");

        let message = broken(|document| {
            document[2]
                .as_object_mut()
                .expect("object")
                .remove("clause");
        });
        assert!(
            message.contains("entry 2 (shapes/simulateIncident/1)"),
            "{message}"
        );
        assert!(message.contains("clause"), "{message}");

        let message =
            broken(|document| document[3]["response_schema"] = serde_json::json!("SystemStatus"));
        assert!(
            message.contains("entry 3 (shapes/getCurrentIncident/1)"),
            "{message}"
        );

        let message = broken(|document| document[5]["profile"] = serde_json::json!("strictest"));
        assert!(
            message.contains("entry 5 (shapes/askCopilot/1)") && message.contains("/profile"),
            "{message}"
        );

        let message = broken(|document| document[6]["id"] = document[0]["id"].clone());
        assert!(
            message.contains("entry 6 (shapes/getStatus/1)"),
            "{message}"
        );
        assert!(message.contains("duplicate id"), "{message}");
    }

    #[test]
    fn a_data_file_that_is_not_json_or_not_a_list_is_rejected() {
        let error = load("broken.json", "[{").expect_err("not JSON");
        assert!(
            error.to_string().contains("broken.json is not JSON"),
            "{error}"
        );
        let error = load("broken.json", "{}").expect_err("not a list");
        assert!(error.to_string().contains("the document"), "{error}");
    }
}
