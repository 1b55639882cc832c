//! The OpenAPI 3.1 document of the contract, generated from the annotated types.
//!
//! [`openapi()`] builds the document; `openapi.yaml` at the repository root is its committed YAML rendering
//! ([`openapi_yaml()`]), and a test in this crate fails when the two differ. The operation descriptors below are
//! not handlers: they exist only to carry the `#[utoipa::path]` annotations of the seven REST operations and `/ws`.

use utoipa::OpenApi;
use utoipa::openapi::extensions::ExtensionsBuilder;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::schema::{
    Discriminator, KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type,
};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, OpenApi as Document, PathItem, Ref, RefOr, ResponseBuilder,
    Schema,
};

use crate::v1::{
    AnsweredBy, CopilotAnswer, CopilotAskRequest, DatadogSummary, ErrorBody, ErrorDetail,
    HttpMethod, IncidentCard, IncidentDetail, IncidentFigures, IncidentPage, IncidentState,
    IncidentSummary, Link, Plan, PlanGenerated, PlanItem, PlanItemType, RunStatus, RunTestsRequest,
    ServiceState, SetBugRequest, Signal, SimulateMode, SimulateRequest, StreamReset,
    StreamResetReason, SystemStatus, Target, TestResult, TestRun, TestStatus, TimelineEntry,
    TimelineKind, WsMessage, codes,
};

/// The contract's OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "FixLoop API",
        version = "1.0.0",
        description = "REST and WebSocket contract between a FixLoop orchestrator and its dashboards.\n\nEvery error response carries `ErrorBody`. WebSocket messages on `GET /ws` are described by the `WsEnvelope` component schema.\n\nAuthentication: every operation takes a bearer token (`Authorization: Bearer <token>`, or the `access_token` query parameter where a client cannot set headers, as browsers opening `/ws`). A token has a role: `read` allows the `GET` operations and `/ws`, `operate` allows every operation. A server without configured tokens, listening on loopback only, needs none.\n\nBrowsers: a request whose `Host` is not one the server answers to (loopback, its bound address, its configured names) gets 421 with code `host_not_allowed` (on a server without tokens always, with tokens when names are configured), and `GET /ws` with an `Origin` other than the server's own and its CORS origins gets 403 with code `origin_not_allowed`.",
        license(name = "MIT OR Apache-2.0", identifier = "MIT OR Apache-2.0")
    ),
    paths(
        get_status,
        set_demo_bug,
        get_current_incident,
        simulate_incident,
        run_tests,
        get_test_run,
        ask_copilot,
        connect_websocket,
        list_services,
        get_service,
        list_incidents,
        get_incident
    ),
    components(schemas(
        IncidentState,
        RunStatus,
        TestStatus,
        PlanItemType,
        HttpMethod,
        SimulateMode,
        StreamResetReason,
        AnsweredBy,
        SystemStatus,
        ServiceState,
        IncidentCard,
        DatadogSummary,
        Signal,
        Link,
        Plan,
        PlanItem,
        Target,
        TestRun,
        TestResult,
        CopilotAnswer,
        PlanGenerated,
        StreamReset,
        SetBugRequest,
        SimulateRequest,
        RunTestsRequest,
        CopilotAskRequest,
        ErrorBody,
        ErrorDetail,
        IncidentPage,
        IncidentSummary,
        IncidentDetail,
        IncidentFigures,
        TimelineEntry,
        TimelineKind
    )),
    tags(
        (name = "status", description = "System status"),
        (name = "demo", description = "The demo service's bug switch"),
        (name = "incidents", description = "The current incident"),
        (name = "tests", description = "Validation runs"),
        (name = "copilot", description = "Questions about the current state"),
        (name = "websocket", description = "Real-time events"),
        (name = "services", description = "The watched services (additive)")
    )
)]
struct ApiDoc;

/// Builds the contract's OpenAPI 3.1 document, with examples, links and the WebSocket message schemas.
///
/// Render it with [`openapi_yaml`] or [`openapi_json`]: utoipa's own serializer spells the keys of a Link Object
/// in snake case, and those two functions correct them.
#[must_use]
pub fn openapi() -> Document {
    let mut doc = ApiDoc::openapi();
    add_websocket_schemas(&mut doc);
    add_security(&mut doc);
    add_examples(&mut doc);
    add_links(&mut doc);
    doc
}

/// The document rendered as YAML: the exact text of the committed `openapi.yaml`.
///
/// # Panics
///
/// Never in practice: the document is plain data built in this crate and always serializes.
#[must_use]
pub fn openapi_yaml() -> String {
    // Serializing a utoipa document cannot fail: it holds only strings, numbers, maps and JSON values.
    let yaml = openapi()
        .to_yaml()
        .expect("the OpenAPI document serializes");
    quote_timestamps(&camel_case_link_keys(&yaml))
}

/// The keys of utoipa's `Link` as it serializes them, and as OpenAPI spells them.
///
/// utoipa 5 serializes its Link Object without `rename_all = "camelCase"`, so `operationId` comes out as
/// `operation_id`, which no OpenAPI reader knows (schemathesis reports the link as naming no operation).
const LINK_KEYS: [(&str, &str); 3] = [
    ("operation_id", "operationId"),
    ("operation_ref", "operationRef"),
    ("request_body", "requestBody"),
];

/// Renames [`LINK_KEYS`] in a rendering (YAML or pretty JSON) of the document: only the keys of a Link Object,
/// that is the lines two levels below a `links` key.
fn camel_case_link_keys(text: &str) -> String {
    let indent_of = |line: &str| line.len() - line.trim_start().len();
    let mut out = String::with_capacity(text.len());
    let mut links_indent: Option<usize> = None;
    for line in text.lines() {
        let indent = indent_of(line);
        let trimmed = line.trim_start();
        if links_indent.is_some_and(|opener| indent <= opener) {
            links_indent = None;
        }
        let mut renamed = None;
        if let Some(opener) = links_indent
            && indent == opener + 4
        {
            renamed = LINK_KEYS.iter().find_map(|(snake, camel)| {
                let yaml = trimmed
                    .strip_prefix(&format!("{snake}:"))
                    .map(|rest| (*camel, rest, ""));
                let json = trimmed
                    .strip_prefix(&format!("\"{snake}\":"))
                    .map(|rest| (*camel, rest, "\""));
                yaml.or(json).map(|(camel, rest, quote)| {
                    format!("{}{quote}{camel}{quote}:{rest}", &line[..indent])
                })
            });
        }
        if trimmed == "links:" || trimmed == "\"links\": {" {
            links_indent = Some(indent);
        }
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

/// Quotes plain scalars that look like timestamps, so YAML 1.1 readers (PyYAML) keep them as strings.
fn quote_timestamps(yaml: &str) -> String {
    let mut out = String::with_capacity(yaml.len() + 256);
    for line in yaml.lines() {
        let split = line.rfind(": ").map(|at| at + 2).or_else(|| {
            line.trim_start()
                .starts_with("- ")
                .then(|| line.find("- ").map(|at| at + 2))
                .flatten()
        });
        match split {
            Some(at) if chrono::DateTime::parse_from_rfc3339(&line[at..]).is_ok() => {
                out.push_str(&line[..at]);
                out.push('\'');
                out.push_str(&line[at..]);
                out.push('\'');
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// The document rendered as pretty JSON (what `GET /openapi.json` serves).
///
/// # Panics
///
/// Never in practice, for the reason given on [`openapi_yaml`].
#[must_use]
pub fn openapi_json() -> String {
    let json = openapi()
        .to_pretty_json()
        .expect("the OpenAPI document serializes");
    let mut json = camel_case_link_keys(&json);
    // `to_pretty_json` ends without a newline; keep the rendering byte for byte apart from the renamed keys.
    json.pop();
    json
}

/// The example document of each schema, keyed by schema name; the same files the round-trip tests read.
pub const EXAMPLES: &[(&str, &str)] = &[
    (
        "SystemStatus",
        include_str!("../tests/examples/SystemStatus.json"),
    ),
    (
        "IncidentCard",
        include_str!("../tests/examples/IncidentCard.json"),
    ),
    ("TestRun", include_str!("../tests/examples/TestRun.json")),
    (
        "ServiceState",
        include_str!("../tests/examples/ServiceState.json"),
    ),
    (
        "CopilotAnswer",
        include_str!("../tests/examples/CopilotAnswer.json"),
    ),
    (
        "SetBugRequest",
        include_str!("../tests/examples/SetBugRequest.json"),
    ),
    (
        "SimulateRequest",
        include_str!("../tests/examples/SimulateRequest.json"),
    ),
    (
        "RunTestsRequest",
        include_str!("../tests/examples/RunTestsRequest.json"),
    ),
    (
        "CopilotAskRequest",
        include_str!("../tests/examples/CopilotAskRequest.json"),
    ),
    (
        "WsEnvelope",
        include_str!("../tests/examples/WsEnvelope.system.status.json"),
    ),
    (
        "IncidentPage",
        include_str!("../tests/examples/IncidentPage.json"),
    ),
    (
        "IncidentDetail",
        include_str!("../tests/examples/IncidentDetail.json"),
    ),
];

const SCHEMA_PREFIX: &str = "#/components/schemas/";

/// What `WsEnvelope.seq` means, for every message schema.
const SEQ_DESCRIPTION: &str = "Position in the server's event stream (additive, optional; omitted by servers that do not number events). Events are numbered by one counter shared by all watched services, so `seq` increases strictly along a connection's events; where it starts is the server's (the reference server starts at its start time in microseconds, above any earlier process's numbers). A join-snapshot message carries the `seq` of the latest event it already reflects. Reconnect with `GET /ws?since=<largest seq seen>` to receive exactly the missed events; a `since` the server cannot replay from (too old, from before a restart, or beyond its latest) gets `stream.reset` and the snapshot.";

/// Adds `WsEnvelope` (a `oneOf` discriminated on `type`) and one message schema per type.
fn add_websocket_schemas(doc: &mut Document) {
    let payloads = [
        ("SystemStatusMessage", "SystemStatus"),
        ("IncidentCreatedMessage", "IncidentCard"),
        ("PlanGeneratedMessage", "PlanGenerated"),
        ("TestsUpdatedMessage", "TestRun"),
        ("CopilotAnswerMessage", "CopilotAnswer"),
        ("StreamResetMessage", "StreamReset"),
    ];
    let components = doc.components.get_or_insert_with(Default::default);
    let mut one_of = OneOfBuilder::new().description(Some(
        "One WebSocket message as sent on `GET /ws`: `{type, payload, ts}` and the optional `seq`, discriminated on `type`. `stream.reset` is sent only to a client that connected with `since`.",
    ));
    let mut mapping = Vec::new();
    for ((message_name, payload_name), kind) in payloads.into_iter().zip(WsMessage::ALL_TYPES) {
        let message = ObjectBuilder::new()
            .description(Some(format!(
                "WebSocket message `{kind}`; its payload is a `{payload_name}`."
            )))
            .property(
                "type",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some([kind])),
            )
            .required("type")
            .property("payload", Ref::from_schema_name(payload_name))
            .required("payload")
            .property(
                "ts",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
                    .description(Some("When the message was emitted (RFC 3339, UTC).")),
            )
            .required("ts")
            .property(
                "seq",
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                    .minimum(Some(0))
                    .description(Some(SEQ_DESCRIPTION)),
            )
            .build();
        components
            .schemas
            .insert(message_name.to_owned(), RefOr::T(Schema::Object(message)));
        one_of = one_of.item(Ref::from_schema_name(message_name));
        mapping.push((kind.to_owned(), format!("{SCHEMA_PREFIX}{message_name}")));
    }
    let one_of = one_of
        .discriminator(Some(Discriminator::with_mapping("type", mapping)))
        .build();
    components
        .schemas
        .insert("WsEnvelope".to_owned(), RefOr::T(Schema::OneOf(one_of)));

    if let Some(operation) = doc
        .paths
        .paths
        .get_mut("/ws")
        .and_then(|item| item.get.as_mut())
    {
        operation.extensions = Some(
            ExtensionsBuilder::new()
                .add(
                    "x-websocket-messages",
                    serde_json::json!({ "$ref": format!("{SCHEMA_PREFIX}WsEnvelope") }),
                )
                .build(),
        );
    }
}

/// The name of the bearer security scheme (`Authorization: Bearer <token>`).
pub const BEARER_SCHEME: &str = "bearerAuth";
/// The name of the query security scheme (`?access_token=<token>`, RFC 6750 §2.3).
pub const QUERY_TOKEN_SCHEME: &str = "accessToken";
/// The operation that is rate-limited (it costs a language-model call).
pub const RATE_LIMITED_OPERATION: &str = "askCopilot";
/// The operations that start work (a run, an incident, a bug switch) and share one rate limit per caller.
pub const OPERATE_RATE_LIMITED_OPERATIONS: [&str; 3] =
    ["runTests", "simulateIncident", "setDemoBug"];

/// The role an operation needs: `read` for `GET` (reads and `/ws`), `operate` for the rest (they change state or
/// cost a language-model call). `operate` implies `read`.
#[must_use]
pub fn required_role(method: &str) -> &'static str {
    if method.eq_ignore_ascii_case("get") {
        "read"
    } else {
        "operate"
    }
}

/// Adds the two security schemes, each operation's `security` (its role as the requirement's list), the 401 of
/// every operation, the 403 of the `operate` ones and the 429 of the rate-limited one.
fn add_security(doc: &mut Document) {
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        BEARER_SCHEME,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "A token of FIXLOOP_API_TOKENS, sent as `Authorization: Bearer <token>`. The requirement lists the role it needs: `read` or `operate` (which implies `read`).",
                ))
                .build(),
        ),
    );
    components.add_security_scheme(
        QUERY_TOKEN_SCHEME,
        SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
            "access_token",
            "The same token as the `access_token` query parameter, for clients that cannot set headers (a browser opening `/ws`). Servers never log its value.",
        ))),
    );
    let error_body = || {
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorBody")))
            .build()
    };
    let string_header = |description: &str| {
        HeaderBuilder::new()
            .schema(ObjectBuilder::new().schema_type(Type::String))
            .description(Some(description))
            .build()
    };
    for (_, item) in &mut doc.paths.paths {
        for (method, operation) in operations_with_method_mut(item) {
            let role = required_role(method);
            operation.security = Some(vec![
                SecurityRequirement::new(BEARER_SCHEME, [role]),
                SecurityRequirement::new(QUERY_TOKEN_SCHEME, [role]),
            ]);
            let responses = &mut operation.responses.responses;
            responses.insert(
                "401".to_owned(),
                RefOr::T(
                    ResponseBuilder::new()
                        .description("No token, or not a valid one (code `unauthorized`)")
                        .header(
                            "www-authenticate",
                            string_header("`Bearer realm=\"fixloop\"`, with `error=\"invalid_token\"` for a wrong token (RFC 6750)."),
                        )
                        .content("application/json", error_body())
                        .build(),
                ),
            );
            if role == "operate" {
                responses.insert(
                    "403".to_owned(),
                    RefOr::T(
                        ResponseBuilder::new()
                            .description("The token's role is `read`; this operation needs `operate` (code `forbidden`)")
                            .header(
                                "www-authenticate",
                                string_header("`Bearer realm=\"fixloop\", error=\"insufficient_scope\", scope=\"operate\"` (RFC 6750)."),
                            )
                            .content("application/json", error_body())
                            .build(),
                    ),
                );
            }
            let limited = match operation.operation_id.as_deref() {
                Some(RATE_LIMITED_OPERATION) => Some(
                    "Too many requests from this token (or client address, on a server without tokens) (code `rate_limited`)",
                ),
                Some(id) if OPERATE_RATE_LIMITED_OPERATIONS.contains(&id) => Some(
                    "Too many runs, simulations and bug switches (one limit for the three) from this token (or client address, on a server without tokens) (code `rate_limited`)",
                ),
                _ => None,
            };
            if let Some(description) = limited {
                responses.insert(
                    "429".to_owned(),
                    RefOr::T(
                        ResponseBuilder::new()
                            .description(description)
                            .header(
                                "retry-after",
                                HeaderBuilder::new()
                                    .schema(
                                        ObjectBuilder::new()
                                            .schema_type(Type::Integer)
                                            .minimum(Some(1)),
                                    )
                                    .description(Some(
                                        "Seconds to wait before the next request will be accepted.",
                                    ))
                                    .build(),
                            )
                            .content("application/json", error_body())
                            .build(),
                    ),
                );
            }
        }
    }
}

/// Sets each JSON response's and request's `example` from the example documents.
fn add_examples(doc: &mut Document) {
    let example_for = |schema: &Option<RefOr<Schema>>| -> Option<serde_json::Value> {
        let reference = match schema.as_ref()? {
            RefOr::Ref(reference) => reference,
            // `Option<T>` renders as `oneOf: [null, $ref]`: use the referenced schema's example.
            RefOr::T(Schema::OneOf(one_of)) => one_of.items.iter().find_map(|item| match item {
                RefOr::Ref(reference) => Some(reference),
                RefOr::T(_) => None,
            })?,
            // `Vec<T>` renders as an array of `$ref`: a list of the referenced schema's example.
            RefOr::T(Schema::Array(array)) => {
                let utoipa::openapi::schema::ArrayItems::RefOrSchema(items) = &array.items else {
                    return None;
                };
                let RefOr::Ref(reference) = items.as_ref() else {
                    return None;
                };
                let name = reference.ref_location.strip_prefix(SCHEMA_PREFIX)?;
                let (_, text) = EXAMPLES.iter().find(|(schema, _)| *schema == name)?;
                return serde_json::from_str(text)
                    .ok()
                    .map(|example| serde_json::Value::Array(vec![example]));
            }
            RefOr::T(_) => return None,
        };
        let name = reference.ref_location.strip_prefix(SCHEMA_PREFIX)?;
        let (_, text) = EXAMPLES.iter().find(|(schema, _)| *schema == name)?;
        serde_json::from_str(text).ok()
    };
    let error_example = |status: &str, path: &str| -> serde_json::Value {
        let (code, message) = match status {
            "400" if path == "/ws" => (
                codes::WEBSOCKET_UPGRADE_REQUIRED,
                "expected a WebSocket upgrade request",
            ),
            "400" if path == "/api/incidents" => (
                codes::INVALID_QUERY,
                "limit must be an integer from 1 to 100",
            ),
            "400" => (
                codes::INVALID_JSON,
                "the request body is not valid JSON: expected value at line 1 column 1",
            ),
            "404" if path.contains("runs") => (codes::RUN_NOT_FOUND, "no run has id run-9999"),
            "404" if path.contains("services") => (
                codes::SERVICE_NOT_FOUND,
                "no watched service is called billing",
            ),
            "404" => (codes::INCIDENT_NOT_FOUND, "no incident has id inc-9999"),
            "409" => (
                codes::PLAN_NOT_READY,
                "incident inc-0001 has no validated plan yet",
            ),
            "401" => (
                codes::UNAUTHORIZED,
                "this route needs a bearer token: send Authorization: Bearer <token>, or ?access_token=<token> where headers cannot be set",
            ),
            "403" if path == "/ws" => (
                codes::ORIGIN_NOT_ALLOWED,
                "origin http://evil.example may not open /ws: only the server's own pages and FIXLOOP_CORS_ORIGINS may (clients that send no Origin are not affected)",
            ),
            "403" => (
                codes::FORBIDDEN,
                "this route needs a token with the operate role",
            ),
            "429" => (
                codes::RATE_LIMITED,
                "too many copilot requests: try again in 6 s",
            ),
            "413" => (
                codes::PAYLOAD_TOO_LARGE,
                "the request body is larger than 65536 bytes",
            ),
            "415" => (
                codes::UNSUPPORTED_MEDIA_TYPE,
                "expected Content-Type: application/json",
            ),
            "422" => (
                codes::INVALID_BODY,
                "the request body does not match the schema",
            ),
            "502" => (
                codes::UPSTREAM_ERROR,
                "the upstream service answered with an error",
            ),
            "504" => (
                codes::UPSTREAM_TIMEOUT,
                "the upstream service did not answer in time",
            ),
            _ => (codes::INTERNAL, "internal error; see the server log"),
        };
        serde_json::to_value(ErrorBody::new(code, message)).unwrap_or_default()
    };
    for (path, item) in &mut doc.paths.paths {
        for operation in operations_mut(item) {
            if let Some(body) = operation.request_body.as_mut() {
                for content in body.content.values_mut() {
                    content.example = example_for(&content.schema);
                }
            }
            for (status, response) in &mut operation.responses.responses {
                let RefOr::T(response) = response else {
                    continue;
                };
                for content in response.content.values_mut() {
                    content.example = if status.starts_with(['4', '5']) {
                        Some(error_example(status, path))
                    } else {
                        example_for(&content.schema)
                    };
                }
            }
        }
    }
}

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
fn add_links(doc: &mut Document) {
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

fn operations_with_method_mut(
    item: &mut PathItem,
) -> impl Iterator<Item = (&'static str, &mut utoipa::openapi::path::Operation)> {
    [
        ("get", item.get.as_mut()),
        ("post", item.post.as_mut()),
        ("put", item.put.as_mut()),
        ("delete", item.delete.as_mut()),
    ]
    .into_iter()
    .filter_map(|(method, operation)| operation.map(|operation| (method, operation)))
}

fn operations_mut(
    item: &mut PathItem,
) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [
        item.get.as_mut(),
        item.post.as_mut(),
        item.put.as_mut(),
        item.delete.as_mut(),
    ]
    .into_iter()
    .flatten()
}

// ---- operation descriptors (annotations only) ----

use descriptors::{
    __path_ask_copilot, __path_connect_websocket, __path_get_current_incident, __path_get_incident,
    __path_get_service, __path_get_status, __path_get_test_run, __path_list_incidents,
    __path_list_services, __path_run_tests, __path_set_demo_bug, __path_simulate_incident,
};

/// Functions that only carry `#[utoipa::path]` annotations; nothing calls them.
#[allow(dead_code, unused_qualifications)]
mod descriptors {
    use super::{
        CopilotAnswer, CopilotAskRequest, ErrorBody, IncidentCard, IncidentDetail, IncidentPage,
        RunTestsRequest, ServiceState, SetBugRequest, SimulateRequest, SystemStatus, TestRun,
    };

    /// The current system status.
    #[utoipa::path(
    get,
    path = "/api/status",
    operation_id = "getStatus",
    tag = "status",
    responses(
        (status = 200, description = "The current status", body = SystemStatus),
        (status = 500, description = "Server bug", body = ErrorBody),
    )
)]
    fn get_status() {}

    /// Sets the demo service's bug (it calls the demo service's `POST /admin/bug`) and emits `system.status`.
    #[utoipa::path(
    post,
    path = "/api/demo/bug",
    operation_id = "setDemoBug",
    tag = "demo",
    request_body(content = SetBugRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The bug is set; the current status", body = SystemStatus),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 422, description = "Missing field or wrong type", body = ErrorBody),
        (status = 500, description = "Server bug", body = ErrorBody),
        (status = 502, description = "The demo service answered with an error or could not be reached", body = ErrorBody),
        (status = 504, description = "The demo service did not answer in time", body = ErrorBody),
    )
)]
    fn set_demo_bug() {}

    /// The open incident, or `null` when there is none.
    #[utoipa::path(
    get,
    path = "/api/incidents/current",
    operation_id = "getCurrentIncident",
    tag = "incidents",
    responses(
        (status = 200, description = "The open incident, or null", body = Option<IncidentCard>),
        (status = 500, description = "Server bug", body = ErrorBody),
    )
)]
    fn get_current_incident() {}

    /// Opens (`INCIDENT_ON`) or closes (`INCIDENT_OFF`) an incident through the same pipeline as a real detection: the demo fallback.
    #[utoipa::path(
    post,
    path = "/api/incidents/simulate",
    operation_id = "simulateIncident",
    tag = "incidents",
    request_body(content = SimulateRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The open incident after the change, or null", body = Option<IncidentCard>),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 422, description = "Missing field, wrong type or unknown mode", body = ErrorBody),
        (status = 500, description = "Server bug", body = ErrorBody),
    )
)]
    fn simulate_incident() {}

    /// Starts a validation run of the incident's current plan, or returns the run already in progress; emits `tests.updated` as statuses change.
    ///
    /// At most one run per incident is in flight: a request while one runs answers 200 with that run (the same `run_id`) and starts nothing, however many requests arrive.
    #[utoipa::path(
    post,
    path = "/api/tests/run",
    operation_id = "runTests",
    tag = "tests",
    request_body(content = RunTestsRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The new run, or the run already in progress (the same `run_id`: nothing new is started)", body = TestRun),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 404, description = "No incident has this id", body = ErrorBody),
        (status = 409, description = "The incident is closed or has no validated plan yet", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 422, description = "Missing field or wrong type", body = ErrorBody),
        (status = 500, description = "Server bug", body = ErrorBody),
    )
)]
    fn run_tests() {}

    /// One run of this server, current or past.
    #[utoipa::path(
    get,
    path = "/api/tests/runs/{run_id}",
    operation_id = "getTestRun",
    tag = "tests",
    params(("run_id" = String, Path, description = "The run's id")),
    responses(
        (status = 200, description = "The run", body = TestRun),
        (status = 404, description = "No run has this id", body = ErrorBody),
        (status = 500, description = "Server bug", body = ErrorBody),
    )
)]
    fn get_test_run() {}

    /// Answers a question grounded in the current incident, plan and test results; emits `copilot.answer`. A
    /// language model that fails or misses its budget never fails the question: the embedded grounded copilot
    /// answers, marked `answered_by: GROUNDED_FALLBACK`.
    #[utoipa::path(
    post,
    path = "/api/copilot/ask",
    operation_id = "askCopilot",
    tag = "copilot",
    request_body(content = CopilotAskRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The answer", body = CopilotAnswer),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 404, description = "No incident has this id", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Content-Type is not application/json", body = ErrorBody),
        (status = 422, description = "Missing field, wrong type, empty question or a question over 4,000 characters", body = ErrorBody),
        (status = 500, description = "Server bug", body = ErrorBody),
        (status = 502, description = "The language model answered with an error. Not sent by this server: the grounded copilot answers instead, with `answered_by: GROUNDED_FALLBACK` (v1 clients should still handle it)", body = ErrorBody),
        (status = 504, description = "The language model did not answer in time. Not sent by this server: past the copilot's budget the grounded copilot answers instead, with `answered_by: GROUNDED_FALLBACK` (v1 clients should still handle it)", body = ErrorBody),
    )
)]
    fn ask_copilot() {}

    /// The real-time event stream.
    ///
    /// A WebSocket upgrade. The server sends every event as a text frame holding one `WsEnvelope` JSON document
    /// (`x-websocket-messages`). On connect it first sends the current `system.status`, then the open incident
    /// (`incident.created`, with its plan) and the current run (`tests.updated`) if any. Clients send nothing.
    ///
    /// Resume (additive): every event carries `seq`. `since=SEQ` replays, instead of the join snapshot, every event
    /// with a larger `seq` that the server still keeps (the latest 1,024 per watched service), in `seq` order, then
    /// the live events. When it cannot (an event after `SEQ` is no longer kept, or `SEQ` is beyond the latest `seq`
    /// because the server restarted), the client gets one `stream.reset` message, then the join snapshot, then the
    /// live events. Without `since` nothing changes: the join snapshot, then the live events, and never
    /// `stream.reset`.
    ///
    /// The four headers are the RFC 6455 opening handshake, checked as the server checks them: `Connection` must
    /// contain the token `upgrade` and `Upgrade` must be `websocket` (both in any case), `Sec-WebSocket-Version`
    /// must be `13`, and `Sec-WebSocket-Key` must be present (the server hashes it into `Sec-WebSocket-Accept`
    /// without checking its form). A request lacking any of them gets 400 `websocket_upgrade_required`.
    #[utoipa::path(
    get,
    path = "/ws",
    operation_id = "connectWebSocket",
    tag = "websocket",
    params(
        ("Connection" = String, Header, description = "Must contain the token `upgrade`, in any case", pattern = "[Uu][Pp][Gg][Rr][Aa][Dd][Ee]", example = "Upgrade"),
        ("Upgrade" = String, Header, description = "`websocket`, in any case", pattern = "^[Ww][Ee][Bb][Ss][Oo][Cc][Kk][Ee][Tt]$", example = "websocket"),
        ("Sec-WebSocket-Version" = String, Header, description = "The WebSocket protocol version", pattern = "^13$", example = "13"),
        ("Sec-WebSocket-Key" = String, Header, description = "The client's nonce (RFC 6455: 16 random bytes in base64)", example = "dGhlIHNhbXBsZSBub25jZQ=="),
        ("since" = Option<u64>, Query, description = "Resume after this `seq` (a decimal non-negative integer): the largest `seq` the client saw. Anything else is 400 `invalid_since`.", minimum = 0, example = 42),
    ),
    responses(
        (status = 101, description = "Switching Protocols: the connection is now a WebSocket carrying WsEnvelope messages"),
        (status = 400, description = "`since` is not a non-negative integer (`invalid_since`), or not a WebSocket upgrade request (`websocket_upgrade_required`)", body = ErrorBody),
        (status = 403, description = "A browser page of a foreign origin: the `Origin` header is neither the server's own origin nor one of its CORS origins (`origin_not_allowed`); a request without `Origin` is not affected", body = ErrorBody),
    )
)]
    fn connect_websocket() {}

    /// The watched services and their state, in profile order (additive).
    #[utoipa::path(
    get,
    path = "/api/services",
    operation_id = "listServices",
    tag = "services",
    responses(
        (status = 200, description = "Every watched service", body = Vec<ServiceState>),
        (status = 500, description = "Server bug", body = ErrorBody),
    )
)]
    fn list_services() {}

    /// One watched service and its state (additive).
    #[utoipa::path(
    get,
    path = "/api/services/{name}",
    operation_id = "getService",
    tag = "services",
    params(("name" = String, Path, description = "The service's name")),
    responses(
        (status = 200, description = "The service", body = ServiceState),
        (status = 404, description = "No watched service has this name", body = ErrorBody),
        (status = 500, description = "Server bug", body = ErrorBody),
    )
)]
    fn get_service() {}

    /// Recent incidents of every watched service, newest `detected_at` first, paginated (additive). Each service
    /// keeps its open incident and its last 100 closed ones.
    #[utoipa::path(
    get,
    path = "/api/incidents",
    operation_id = "listIncidents",
    tag = "incidents",
    params(
        ("limit" = Option<u32>, Query, description = "Page size, from 1 to 100 (default 20)", minimum = 1, maximum = 100),
        ("before" = Option<String>, Query, min_length = 1, description = "An incident id (a page's `next_before`): only incidents older than it in the list's order; an id the server does not know (never, or no longer kept) gives 404 `incident_not_found`"),
    ),
    responses(
        (status = 200, description = "A page of incidents, newest first", body = IncidentPage),
        (status = 400, description = "A malformed or out-of-bounds `limit`, or an empty `before`", body = ErrorBody),
        (status = 404, description = "`before` names no incident the server keeps", body = ErrorBody),
        (status = 500, description = "Server bug", body = ErrorBody),
    )
)]
    fn list_incidents() {}

    /// One incident (open or among the last 100 closed) with its timeline and its figures (additive).
    #[utoipa::path(
    get,
    path = "/api/incidents/{incident_id}",
    operation_id = "getIncident",
    tag = "incidents",
    params(("incident_id" = String, Path, description = "The incident's id")),
    responses(
        (status = 200, description = "The incident, its timeline and figures", body = IncidentDetail),
        (status = 404, description = "No incident has this id", body = ErrorBody),
        (status = 500, description = "Server bug", body = ErrorBody),
    )
)]
    fn get_incident() {}
}
