//! The OpenAPI 3.1 document of the contract, generated from the annotated types.
//!
//! [`openapi()`] builds the document; `openapi.yaml` at the repository root is its committed YAML rendering
//! ([`openapi_yaml()`]), and a test in this crate fails when the two differ.
//!
//! One module per concern, each adding its part to the document in [`openapi()`]: `operations` (the root: info,
//! the operation descriptors, which are not handlers and only carry the `#[utoipa::path]` annotations of the REST
//! operations and `/ws`, the component schemas and tags), `websocket` (`WsEnvelope` and the message schemas),
//! `security` (schemes, roles, the 401/403/429 answers), `examples`, `links`, and `render` (the corrections to
//! utoipa's YAML and JSON renderings); `paths` walks the operations for them.

mod examples;
mod links;
mod operations;
mod paths;
mod render;
mod security;
mod websocket;

use utoipa::OpenApi as _;
use utoipa::openapi::OpenApi as Document;

pub use self::examples::EXAMPLES;
pub use self::security::{
    APPROVE_OPERATIONS, BEARER_SCHEME, CI_INTAKE_OPERATION, CI_TOKEN_SCHEME,
    OPERATE_RATE_LIMITED_OPERATIONS, QUERY_TOKEN_SCHEME, RATE_LIMITED_OPERATION, required_role,
};

/// Builds the contract's OpenAPI 3.1 document, with examples, links and the WebSocket message schemas.
///
/// Render it with [`openapi_yaml`] or [`openapi_json`]: utoipa's own serializer spells the keys of a Link Object
/// in snake case, and those two functions correct them.
#[must_use]
pub fn openapi() -> Document {
    let mut doc = operations::ApiDoc::openapi();
    websocket::add_websocket_schemas(&mut doc);
    security::add_security(&mut doc);
    examples::add_examples(&mut doc);
    links::add_links(&mut doc);
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
    render::quote_timestamps(&render::camel_case_link_keys(&yaml))
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
    let mut json = render::camel_case_link_keys(&json);
    // `to_pretty_json` ends without a newline; keep the rendering byte for byte apart from the renamed keys.
    json.pop();
    json
}
