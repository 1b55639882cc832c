//! The OpenAPI `links` of the 200 answers.

use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::{OpenApi as Document, RefOr};

use super::paths::operations_mut;

/// The OpenAPI `links` of the 200 answers: which value of one answer another operation takes (the id an answer
/// hands out and the operation that reads it), so that stateful clients and fuzzers can chain calls.
///
const LINKS: &[OperationLink] = &[
    OperationLink {
        path: "/api/incidents/simulate",
        name: "RunTestsForIncident",
        target: "runTests",
        description: "Runs the current plan of the incident just opened",
        parameter: None,
        body_field: Some(("incident_id", "$response.body#/incident_id")),
    },
    OperationLink {
        path: "/api/incidents/simulate",
        name: "AskCopilotAboutIncident",
        target: "askCopilot",
        description: "Asks the copilot about the incident just opened",
        parameter: None,
        body_field: Some(("incident_id", "$response.body#/incident_id")),
    },
    OperationLink {
        path: "/api/incidents/current",
        name: "RunTestsForIncident",
        target: "runTests",
        description: "Runs the current plan of the open incident",
        parameter: None,
        body_field: Some(("incident_id", "$response.body#/incident_id")),
    },
    OperationLink {
        path: "/api/incidents/current",
        name: "AskCopilotAboutIncident",
        target: "askCopilot",
        description: "Asks the copilot about the open incident",
        parameter: None,
        body_field: Some(("incident_id", "$response.body#/incident_id")),
    },
    OperationLink {
        path: "/api/tests/run",
        name: "GetTestRun",
        target: "getTestRun",
        description: "Fetches the run just started (or the one already in progress)",
        parameter: Some(("run_id", "$response.body#/run_id")),
        body_field: None,
    },
    OperationLink {
        path: "/api/tests/runs/{run_id}",
        name: "AskCopilotAboutRun",
        target: "askCopilot",
        description: "Asks the copilot about the run's incident",
        parameter: None,
        body_field: Some(("incident_id", "$response.body#/incident_id")),
    },
    OperationLink {
        path: "/api/services",
        name: "GetFirstService",
        target: "getService",
        description: "Fetches the first watched service by name",
        parameter: Some(("name", "$response.body#/0/name")),
        body_field: None,
    },
];

/// One entry of [`LINKS`]: from the 200 answer of the operation at `path` to the operation `target`.
struct OperationLink {
    /// The source operation's path (every source is the only operation of its path).
    path: &'static str,
    /// The link's name in the source's `links` map.
    name: &'static str,
    /// The target's `operationId`.
    target: &'static str,
    /// What following the link does.
    description: &'static str,
    /// A path parameter of the target and the expression giving it.
    parameter: Option<(&'static str, &'static str)>,
    /// A field of the target's request body and the expression giving it (the rest of the body is the client's).
    body_field: Option<(&'static str, &'static str)>,
}

/// Adds [`LINKS`] to the 200 answers.
pub(super) fn add_links(doc: &mut Document) {
    for link in LINKS {
        let Some(item) = doc.paths.paths.get_mut(link.path) else {
            continue;
        };
        for operation in operations_mut(item) {
            let Some(RefOr::T(response)) = operation.responses.responses.get_mut("200") else {
                continue;
            };
            let mut builder = LinkBuilder::new()
                .operation_id(link.target)
                .description(link.description);
            if let Some((name, expression)) = link.parameter {
                builder = builder.parameter(name, expression);
            }
            if let Some((field, expression)) = link.body_field {
                builder = builder.request_body(Some(serde_json::json!({ field: expression })));
            }
            response
                .links
                .insert(link.name.to_owned(), RefOr::T(builder.build()));
        }
    }
}
