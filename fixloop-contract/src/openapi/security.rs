//! Authentication in the document: the two security schemes, the role each operation needs, and the 401, 403 and
//! 429 answers that follow from them.

use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, OpenApi as Document, Ref, RefOr, ResponseBuilder,
};

use super::paths::operations_with_method_mut;

/// The name of the bearer security scheme (`Authorization: Bearer <token>`).
pub const BEARER_SCHEME: &str = "bearerAuth";
/// The name of the query security scheme (`?access_token=<token>`, RFC 6750 §2.3).
pub const QUERY_TOKEN_SCHEME: &str = "accessToken";
/// The name of the CI intake's bearer security scheme (`FIXLOOP_CI_TOKEN`).
pub const CI_TOKEN_SCHEME: &str = "ciToken";
/// The operation that takes the CI intake's own token instead of an API token.
pub const CI_INTAKE_OPERATION: &str = "submitCiLogs";
/// The operation that is rate-limited (it costs a language-model call).
pub const RATE_LIMITED_OPERATION: &str = "askCopilot";
/// The operations that start work (a run, an incident, a bug switch) and share one rate limit per caller.
pub const OPERATE_RATE_LIMITED_OPERATIONS: [&str; 3] =
    ["runTests", "simulateIncident", "setDemoBug"];

/// The operations that decide about remediation (approve, reject, the kill switch): they need the `approve` role.
pub const APPROVE_OPERATIONS: [&str; 3] = [
    "approveRemediation",
    "rejectRemediation",
    "setRemediationKillSwitch",
];

/// The role an operation needs: `read` for `GET` (reads and `/ws`), `approve` for the remediation decisions
/// ([`APPROVE_OPERATIONS`]), `operate` for the rest (they change state or cost a language-model call). `approve`
/// implies `operate`, which implies `read`.
#[must_use]
pub fn required_role(method: &str, operation_id: Option<&str>) -> &'static str {
    if method.eq_ignore_ascii_case("get") {
        "read"
    } else if operation_id.is_some_and(|id| APPROVE_OPERATIONS.contains(&id)) {
        "approve"
    } else {
        "operate"
    }
}

/// Adds the two security schemes, each operation's `security` (its role as the requirement's list), the 401 of
/// every operation, the 403 of the `operate` ones and the 429 of the rate-limited one.
pub(super) fn add_security(doc: &mut Document) {
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        BEARER_SCHEME,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "A token of FIXLOOP_API_TOKENS, sent as `Authorization: Bearer <token>`. The requirement lists the role it needs: `read`, `operate` (which implies `read`) or `approve` (which implies `operate`; granted only explicitly).",
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
    components.add_security_scheme(
        CI_TOKEN_SCHEME,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "The CI intake's own token, FIXLOOP_CI_TOKEN, sent as `Authorization: Bearer <token>` by the CI system; API tokens are not accepted there, and this token opens nothing else.",
                ))
                .build(),
        ),
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
            if operation.operation_id.as_deref() == Some(CI_INTAKE_OPERATION) {
                operation.security = Some(vec![SecurityRequirement::new(
                    CI_TOKEN_SCHEME,
                    Vec::<String>::new(),
                )]);
                operation.responses.responses.insert(
                    "401".to_owned(),
                    RefOr::T(
                        ResponseBuilder::new()
                            .description(
                                "No CI token, or not FIXLOOP_CI_TOKEN (code `unauthorized`)",
                            )
                            .content("application/json", error_body())
                            .build(),
                    ),
                );
                continue;
            }
            let role = required_role(method, operation.operation_id.as_deref());
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
            if role == "operate" || role == "approve" {
                let (description, challenge) = if role == "approve" {
                    (
                        "The token's role is `read` or `operate`; this operation needs `approve` (code `forbidden`)",
                        "`Bearer realm=\"fixloop\", error=\"insufficient_scope\", scope=\"approve\"` (RFC 6750).",
                    )
                } else {
                    (
                        "The token's role is `read`; this operation needs `operate` (code `forbidden`)",
                        "`Bearer realm=\"fixloop\", error=\"insufficient_scope\", scope=\"operate\"` (RFC 6750).",
                    )
                };
                responses.insert(
                    "403".to_owned(),
                    RefOr::T(
                        ResponseBuilder::new()
                            .description(description)
                            .header("www-authenticate", string_header(challenge))
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
