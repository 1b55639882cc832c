//! The WebSocket messages in the document: `WsEnvelope`, a `oneOf` discriminated on `type`, and one message schema
//! per type.

use utoipa::openapi::extensions::ExtensionsBuilder;
use utoipa::openapi::schema::{
    Discriminator, KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type,
};
use utoipa::openapi::{OpenApi as Document, Ref, RefOr, Schema};

use super::paths::SCHEMA_PREFIX;
use crate::v1::WsMessage;

/// What `WsEnvelope.seq` means, for every message schema.
const SEQ_DESCRIPTION: &str = "Position in the server's event stream (additive, optional; omitted by servers that do not number events). Events are numbered by one counter shared by all watched services, so `seq` increases strictly along a connection's events; where it starts is the server's (the reference server starts at its start time in microseconds, above any earlier process's numbers). A join-snapshot message carries the `seq` of the latest event it already reflects. Reconnect with `GET /ws?since=<largest seq seen>` to receive exactly the missed events; a `since` the server cannot replay from (too old, from before a restart, or beyond its latest) gets `stream.reset` and the snapshot.";

/// Adds `WsEnvelope` (a `oneOf` discriminated on `type`) and one message schema per type.
pub(super) fn add_websocket_schemas(doc: &mut Document) {
    let payloads = [
        ("SystemStatusMessage", "SystemStatus"),
        ("IncidentCreatedMessage", "IncidentCard"),
        ("PlanGeneratedMessage", "PlanGenerated"),
        ("TestsUpdatedMessage", "TestRun"),
        ("CopilotAnswerMessage", "CopilotAnswer"),
        ("StreamResetMessage", "StreamReset"),
        ("RemediationProposedMessage", "RemediationProposal"),
        ("RemediationUpdatedMessage", "RemediationProposal"),
        ("IncidentEscalatedMessage", "IncidentEscalated"),
    ];
    let components = doc.components.get_or_insert_with(Default::default);
    let mut one_of = OneOfBuilder::new().description(Some(
        "One WebSocket message as sent on `GET /ws`: `{type, payload, ts}` and the optional `seq`, discriminated on `type`. `stream.reset` is sent only to a client that connected with `since`; `remediation.proposed`, `remediation.updated` and `incident.escalated` only to a client that connected with `events=remediation`.",
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
