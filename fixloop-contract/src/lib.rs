//! The wire contract of FixLoop: every REST body and WebSocket message, and the generators of `openapi.yaml` and of
//! the TypeScript types for frontends ([`typescript`]).
//!
//! This crate is the single source of the contract's types. The keys and enum spellings are fixed by the
//! seed contract (`backend-agent-spec.md`, section 5) that a real dashboard already depends on: nothing here may be
//! renamed. Types are versioned under [`v1`] and re-exported at the crate root.
//!
//! What this crate deliberately does not do: no I/O, no validation beyond what the types express (the plan
//! validator lives in `fixloop-core`), no HTTP framework. It depends only on serde, serde_json, chrono and utoipa.
//!
//! # Serialization policy
//!
//! - Keys are snake_case and enum values SCREAMING_SNAKE_CASE, exactly as the seed spells them.
//! - Nullable fields are always present and serialize as `null`, never omitted.
//! - Timestamps are RFC 3339 in UTC (`2026-11-21T10:15:00Z`); readers accept any RFC 3339 offset and reject a
//!   timestamp without one.
//! - `target.headers` and `target.body_json` are always JSON objects (`{}` when empty); a reader also takes `null`
//!   or a missing key as `{}`.
//! - Readers ignore unknown fields.
//!
//! # Wire format
//!
//! ## `SystemStatus` (`GET /api/status`, `POST /api/demo/bug`, WebSocket `system.status`)
//! | field | type | meaning |
//! | --- | --- | --- |
//! | `status` | `HEALTHY` \| `INCIDENT_ACTIVE` \| `VALIDATING` \| `RECOVERED` | system-level incident state |
//! | `error_rate_5m` | number, percent in \[0, 100\] | share of requests answered with a 5xx over the detection window (5.0 = 5%) |
//! | `p95_latency_ms_5m` | number, milliseconds | 95th percentile latency over the window |
//! | `active_incident_id` | string or `null` | the open incident |
//! | `updated_at` | RFC 3339 | when the status was computed |
//!
//! ## `IncidentCard` (`GET /api/incidents/current`, `POST /api/incidents/simulate`, WebSocket `incident.created`)
//! | field | type | meaning |
//! | --- | --- | --- |
//! | `incident_id` | string | stable id |
//! | `title` | string | one-line title |
//! | `detected_at` | RFC 3339 | detection time |
//! | `datadog_summary.monitor_id` | string or `null` | alerting monitor, `null` for polling or simulation |
//! | `datadog_summary.service` | string | monitored service |
//! | `datadog_summary.signal.error_rate_5m` | number, percent in \[0, 100\] | error rate over the window at detection (the figure the title states) |
//! | `datadog_summary.signal.p95_latency_ms_5m` | number, ms | p95 latency at detection |
//! | `datadog_summary.signal.top_error` | string or `null` | most frequent error signature |
//! | `datadog_summary.evidence_links[]` | `{label, url}` | links to the raw telemetry |
//! | `plan` | `Plan` | the plan; `items` is empty in `incident.created` |
//!
//! ## `Plan` and `PlanItem`
//! | field | type | meaning |
//! | --- | --- | --- |
//! | `plan_id` | string | stable id |
//! | `generated_at` | RFC 3339 | generation time |
//! | `items[].test_id` | string | unique within the plan |
//! | `items[].name` | string | short name |
//! | `items[].type` | `API` \| `UI` \| `SYNTHETIC` | kind of test |
//! | `items[].priority` | integer 1..=5 | 1 is the highest |
//! | `items[].what_it_checks` | string | what the test proves |
//! | `items[].target.method` | `GET` \| `POST` \| `PUT` \| `DELETE` | HTTP method |
//! | `items[].target.url` | string | absolute URL |
//! | `items[].target.headers` | object string → string | request headers, `{}` when none |
//! | `items[].target.body_json` | object | JSON body, `{}` when none |
//! | `items[].pass_criteria` | string | an expression of the criteria language (see `fixloop-core`) |
//!
//! ## `TestRun`
//! | field | type | meaning |
//! | --- | --- | --- |
//! | `run_id` | string | stable id |
//! | `incident_id` | string | the incident validated |
//! | `started_at` | RFC 3339 | start time |
//! | `status` | `QUEUED` \| `RUNNING` \| `COMPLETED` \| `FAILED` | run status |
//! | `tests[].test_id`, `tests[].name` | string | from the plan item |
//! | `tests[].status` | `PENDING` \| `RUNNING` \| `PASS` \| `FAIL` | test status |
//! | `tests[].last_update_at` | RFC 3339 | last status change |
//! | `tests[].details` | string or `null` | one-line explanation of the verdict |
//!
//! ## `CopilotAnswer`
//! | field | type | meaning |
//! | --- | --- | --- |
//! | `incident_id` | string or `null` | incident asked about |
//! | `question` | string | the question |
//! | `answer` | string | the answer |
//! | `citations[]` | `{label, url}` | links the answer rests on |
//! | `created_at` | RFC 3339 | answer time |
//! | `answered_by` | `MODEL` \| `GROUNDED` \| `GROUNDED_FALLBACK`, optional | additive: who wrote the answer (the LLM; the embedded grounded copilot, no LLM configured; the grounded copilot because the LLM missed its budget or failed); absent from servers that do not say |
//! | `fallback_reason` | string, optional | additive: with `GROUNDED_FALLBACK`, why the LLM's answer was not used |
//! | `redacted` | boolean, optional | additive: `true` when the server's safety rule changed the answer: before `RECOVERED` the model's sentences about the service's health, recovery, safety or traffic were left out (or the answer withheld) and the server's status sentence speaks instead; absent when the answer is as written |
//!
//! ## Incident history (additive: `GET /api/incidents`, `GET /api/incidents/{incident_id}`)
//! `IncidentPage` is `{incidents: [IncidentSummary], next_before: string | null}`: newest `detected_at` first (ties
//! by `incident_id`, descending), at most `limit` (1..=100, default 20); `next_before` is the `before` of the next
//! page (the page's last incident id), `null` on the last page. A malformed `limit` or an unknown `before` is 400
//! `invalid_query`.
//!
//! | field | type | meaning |
//! | --- | --- | --- |
//! | `IncidentSummary.incident_id`, `.title`, `.service` | string | the incident, its title, its watched service |
//! | `IncidentSummary.detected_at` | RFC 3339 | detection time |
//! | `IncidentSummary.incident_end` | RFC 3339 or `null` | when it closed; `null` while open |
//! | `IncidentSummary.status` | `IncidentState` or `null` | the status while open; `null` once closed |
//! | `IncidentSummary.resolution` | string or `null` | why it closed |
//! | `IncidentDetail.incident` | `IncidentCard` | the card with its latest plan |
//! | `IncidentDetail.service`, `.incident_end`, `.status`, `.resolution` | | as in `IncidentSummary` |
//! | `IncidentDetail.timeline[]` | `TimelineEntry` | oldest first, at most 200 (the oldest after DETECTED are dropped) |
//! | `TimelineEntry.at` | RFC 3339 | when |
//! | `TimelineEntry.kind` | `DETECTED` \| `ANNOUNCED` \| `PLAN_VALIDATED` \| `RUN_STARTED` \| `RUN_FINISHED` \| `STATUS_CHANGED` \| `COPILOT_ANSWERED` \| `RESOLVED` | what happened |
//! | `TimelineEntry.summary` | string | one line (the reason, the run's outcome, the copilot question) |
//! | `TimelineEntry.run_id`, `.run_status`, `.status`, `.plan_id` | string / `RunStatus` / `IncidentState` / string, or `null` | set by the kinds they concern |
//! | `IncidentFigures.first_hot_sample_at` | RFC 3339 or `null` | first hot sample of the window that opened the incident; `null` unless polling opened it |
//! | `IncidentFigures.first_run_at`, `.recovered_at` | RFC 3339 or `null` | first run start; last entry into RECOVERED (`null` after a relapse until it recovers again) |
//! | `IncidentFigures.time_to_detect_seconds` | number, s, or `null` | `first_hot_sample_at` to `detected_at` |
//! | `IncidentFigures.time_to_first_run_seconds` | number, s, or `null` | `detected_at` to `first_run_at` |
//! | `IncidentFigures.time_to_recover_seconds` | number, s, or `null` | `detected_at` to `recovered_at` |
//!
//! ## Requests
//! - `POST /api/demo/bug`: `{"enabled": boolean}`.
//! - `POST /api/incidents/simulate`: `{"mode": "INCIDENT_ON" | "INCIDENT_OFF"}`.
//! - `POST /api/tests/run`: `{"incident_id": string}` (1 to 128 characters, not all whitespace).
//! - `POST /api/copilot/ask`: `{"incident_id": string | null, "question": string}` (1 to 4,000 characters, not all
//!   whitespace: the spec's `pattern` is [`NON_BLANK_PATTERN`]).
//!
//! ## WebSocket (`GET /ws`)
//! Every message is `{"type": string, "payload": object, "ts": RFC 3339}` with `type` one of `system.status`
//! (payload `SystemStatus`), `incident.created` (`IncidentCard`), `plan.generated` (`{incident_id, plan}`),
//! `tests.updated` (`TestRun`) and `copilot.answer` (`CopilotAnswer`).
//! Additive `seq` (integer ≥ 0, omitted when absent): the message's position in the server's event stream.
//! Events are numbered from 1 by one counter per server process, shared by all watched services, so `seq`
//! increases strictly along a connection's events; a join-snapshot message carries the `seq` of the latest event
//! it already reflects (0 before the first event). A restarted server starts a new sequence.
//! `GET /ws?since=SEQ` (a decimal integer ≥ 0, else 400 `invalid_since`) replays, instead of the join snapshot, the
//! kept events with a larger `seq` (the latest 1,024 per service) in `seq` order, then the live ones.
//! When it cannot, the first message is the additive `stream.reset` (payload [`StreamReset`]: `since`, the client's
//! value; `oldest_available`, the `seq` of the oldest event still replayable for every service; `reason`,
//! `TOO_OLD` or `TOO_NEW`), followed by the join snapshot; a client that never sends `since` never receives it.
//! Additive event groups: `GET /ws?events=remediation` (a comma-separated list of known groups, given once; else
//! 400 `invalid_events`) adds `remediation.proposed` and `remediation.updated` (payload [`RemediationProposal`]:
//! `proposal_id`, `incident_id`, `service`, `kind`, `action_id`, `tier`, `mode`, `version` (grows at every change;
//! an approval names it), `state`, `outcome` (once `FINISHED`), `proposed_at`, `updated_at`, `expires_at` and
//! `decided_by` (omitted when absent), `note`) and `incident.escalated` (payload [`IncidentEscalated`]:
//! `incident_id`, `service`, `reason`, `escalated_at`); that client's join snapshot also carries the open
//! incident's proposals as `remediation.updated`. A client that names no group never receives these types, live or
//! replayed.
//! The upgrade request carries the RFC 6455 headers the spec declares as required parameters (`Connection`
//! containing `upgrade`, `Upgrade: websocket`, `Sec-WebSocket-Version: 13`, `Sec-WebSocket-Key`); without them the
//! answer is 400 `websocket_upgrade_required`.
//!
//! ## Errors
//! Every 4xx and 5xx carries [`ErrorBody`]: `{"code": string, "message": string, "details": [{"path", "message"}]}`,
//! with `code` from [`codes`].
//!
//! # Example
//!
//! ```
//! use fixloop_contract::{IncidentState, SystemStatus, WsMessage};
//!
//! let status = SystemStatus {
//!     status: IncidentState::Healthy,
//!     error_rate_5m: 0.0,
//!     p95_latency_ms_5m: 12.5,
//!     active_incident_id: None,
//!     updated_at: "2026-11-21T10:15:00Z".parse().unwrap(),
//!     service: None,
//!     signals_degraded: None,
//! };
//! let json = serde_json::to_string(&WsMessage::SystemStatus(status).at("2026-11-21T10:15:00Z".parse().unwrap())).unwrap();
//! assert!(json.contains(r#""type":"system.status""#));
//! assert!(json.contains(r#""active_incident_id":null"#));
//! ```

pub mod openapi;
pub mod typescript;
pub mod v1;

pub use v1::*;

/// The date-time library the contract's timestamps use, re-exported so dependents (the sans-IO core) use the same one.
pub use chrono;
/// The JSON library of `body_json`, re-exported for the same reason.
pub use serde_json;
