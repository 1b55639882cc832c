//! The document's root: its info, operations, component schemas and tags, from the `#[utoipa::path]` annotations
//! of the REST operations and `/ws` and from the annotated types.

use utoipa::OpenApi;

use crate::v1::{
    AnsweredBy, CiClassification, CiDecider, CiEvidence, CiFailureClass, CiHeal, CiHealDecision,
    CiIncident, CiIncidentList, CiIntake, CiIntakeList, CiIntakeStatus, CiJobStatus, CiLogRequest,
    CiUpstream, CopilotAnswer, CopilotAskRequest, DatadogSummary, ErrorBody, ErrorDetail,
    HttpMethod, IncidentCard, IncidentDetail, IncidentEscalated, IncidentFigures, IncidentPage,
    IncidentState, IncidentSummary, Link, Plan, PlanGenerated, PlanItem, PlanItemType,
    ReloadReport, RemediationMode, RemediationOutcome, RemediationProposal, RemediationState,
    RiskTier, RunStatus, RunTestsRequest, ServiceState, SetBugRequest, Signal, SimulateMode,
    SimulateRequest, StreamReset, StreamResetReason, SystemStatus, Target, TestResult, TestRun,
    TestStatus, TimelineEntry, TimelineKind,
};
use crate::v1::{
    KillSwitchRequest, KillSwitchState, RemediationActionStats, RemediationDecisionRequest,
    RemediationList, RemediationStats, ReplicaInfo, ReplicaLead, ReplicaList,
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
        get_incident,
        reload_profile,
        submit_ci_logs,
        list_ci_logs,
        list_ci_incidents,
        list_remediations,
        remediation_stats,
        approve_remediation,
        reject_remediation,
        set_remediation_kill_switch,
        list_replicas
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
        TimelineKind,
        ReloadReport,
        CiJobStatus,
        CiLogRequest,
        CiIntakeStatus,
        CiFailureClass,
        CiEvidence,
        CiClassification,
        CiUpstream,
        CiHealDecision,
        CiHeal,
        CiIntake,
        CiIntakeList,
        CiDecider,
        CiIncident,
        CiIncidentList,
        RemediationMode,
        RiskTier,
        RemediationState,
        RemediationOutcome,
        RemediationProposal,
        IncidentEscalated,
        RemediationList,
        RemediationDecisionRequest,
        KillSwitchRequest,
        KillSwitchState,
        RemediationActionStats,
        RemediationStats,
        ReplicaList,
        ReplicaInfo,
        ReplicaLead
    )),
    tags(
        (name = "status", description = "System status"),
        (name = "demo", description = "The demo service's bug switch"),
        (name = "incidents", description = "The current incident"),
        (name = "tests", description = "Validation runs"),
        (name = "copilot", description = "Questions about the current state"),
        (name = "websocket", description = "Real-time events"),
        (name = "services", description = "The watched services (additive)"),
        (name = "admin", description = "Operating the server itself (additive)"),
        (name = "ci", description = "CI failure intake and classification (additive)"),
        (name = "remediation", description = "Remediation proposals, operator decisions and the kill switch (additive)"),
        (name = "replicas", description = "The replicas sharing one database and the services each leads (additive)")
    )
)]
pub(super) struct ApiDoc;

// ---- operation descriptors (annotations only) ----

use descriptors::{
    __path_ask_copilot, __path_connect_websocket, __path_get_current_incident, __path_get_incident,
    __path_get_service, __path_get_status, __path_get_test_run, __path_list_ci_incidents,
    __path_list_ci_logs, __path_list_incidents, __path_list_replicas, __path_list_services,
    __path_reload_profile, __path_run_tests, __path_set_demo_bug, __path_simulate_incident,
    __path_submit_ci_logs,
};
use remediation_descriptors::{
    __path_approve_remediation, __path_list_remediations, __path_reject_remediation,
    __path_remediation_stats, __path_set_remediation_kill_switch,
};

/// The remediation operations' annotations; nothing calls them.
#[allow(dead_code, unused_qualifications)]
mod remediation_descriptors {
    use super::{
        ErrorBody, KillSwitchRequest, KillSwitchState, RemediationDecisionRequest, RemediationList,
        RemediationProposal, RemediationStats,
    };

    /// The remediation proposals (additive): of the incident `incident_id` names, or, without it, the kept
    /// proposals of every watched service; newest first, with the global kill switch.
    #[utoipa::path(
    get,
    path = "/api/remediations",
    operation_id = "listRemediations",
    tag = "remediation",
    params(
        ("incident_id" = Option<String>, Query, description = "Only this incident's proposals (1 to 128 characters)"),
    ),
    responses(
        (status = 200, description = "The proposals, newest first, and the kill switch", body = RemediationList),
        (status = 400, description = "A malformed `incident_id` (`invalid_query`)", body = ErrorBody),
        (status = 404, description = "No incident has this id (`incident_not_found`)", body = ErrorBody),
        (status = 500, description = "Server bug, or the store could not be read", body = ErrorBody),
    )
)]
    fn list_remediations() {}

    /// The success figures of remediation actions (additive): per (service, incident kind, action), the actions
    /// carried out and judged, and how many were effective.
    #[utoipa::path(
    get,
    path = "/api/remediations/stats",
    operation_id = "getRemediationStats",
    tag = "remediation",
    responses(
        (status = 200, description = "The figures", body = RemediationStats),
        (status = 500, description = "Server bug", body = ErrorBody),
    )
)]
    fn remediation_stats() {}

    /// Approves a proposal awaiting approval (additive), naming the `version` the operator saw (compare-and-set):
    /// the action is carried out. Needs the `approve` role; who approved (the token's name) is recorded.
    #[utoipa::path(
    post,
    path = "/api/remediations/{proposal_id}/approve",
    operation_id = "approveRemediation",
    tag = "remediation",
    params(("proposal_id" = String, Path, description = "The proposal")),
    request_body(content = RemediationDecisionRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Approved: the proposal after it", body = RemediationProposal),
        (status = 400, description = "Malformed JSON (`invalid_json`)", body = ErrorBody),
        (status = 404, description = "No proposal has this id (`proposal_not_found`)", body = ErrorBody),
        (status = 409, description = "The proposal is at another version (`version_conflict`, the message says which), does not await an approval (`not_awaiting_approval`), or the kill switch is engaged (`kill_switch_engaged`)", body = ErrorBody),
        (status = 415, description = "Not `application/json` (`unsupported_media_type`)", body = ErrorBody),
        (status = 422, description = "`version` is missing or not a non-negative integer (`invalid_body`)", body = ErrorBody),
        (status = 500, description = "Server bug", body = ErrorBody),
    )
)]
    fn approve_remediation() {}

    /// Rejects a proposal awaiting approval (additive), with the same compare-and-set as an approval: the action
    /// is not proposed again for this incident. Needs the `approve` role.
    #[utoipa::path(
    post,
    path = "/api/remediations/{proposal_id}/reject",
    operation_id = "rejectRemediation",
    tag = "remediation",
    params(("proposal_id" = String, Path, description = "The proposal")),
    request_body(content = RemediationDecisionRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Rejected: the proposal after it", body = RemediationProposal),
        (status = 400, description = "Malformed JSON (`invalid_json`)", body = ErrorBody),
        (status = 404, description = "No proposal has this id (`proposal_not_found`)", body = ErrorBody),
        (status = 409, description = "The proposal is at another version (`version_conflict`) or does not await an approval (`not_awaiting_approval`)", body = ErrorBody),
        (status = 415, description = "Not `application/json` (`unsupported_media_type`)", body = ErrorBody),
        (status = 422, description = "`version` is missing or not a non-negative integer (`invalid_body`)", body = ErrorBody),
        (status = 500, description = "Server bug", body = ErrorBody),
    )
)]
    fn reject_remediation() {}

    /// Engages or releases the global remediation kill switch (additive): engaged, every service's action in
    /// flight is cancelled, proposals awaiting approval are withdrawn and approvals are refused. It survives
    /// restarts and applies to services started later. Needs the `approve` role.
    #[utoipa::path(
    post,
    path = "/api/remediation/kill-switch",
    operation_id = "setRemediationKillSwitch",
    tag = "remediation",
    request_body(content = KillSwitchRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The kill switch as it now stands", body = KillSwitchState),
        (status = 400, description = "Malformed JSON (`invalid_json`)", body = ErrorBody),
        (status = 415, description = "Not `application/json` (`unsupported_media_type`)", body = ErrorBody),
        (status = 422, description = "`engaged` is missing or not a boolean (`invalid_body`)", body = ErrorBody),
        (status = 500, description = "Server bug, or the setting could not be saved", body = ErrorBody),
        (status = 503, description = "A service's driver did not answer (the setting is saved)", body = ErrorBody),
    )
)]
    fn set_remediation_kill_switch() {}
}

/// Functions that only carry `#[utoipa::path]` annotations; nothing calls them.
#[allow(dead_code, unused_qualifications)]
mod descriptors {
    use super::{
        CiIncidentList, CiIntake, CiIntakeList, CiLogRequest, CopilotAnswer, CopilotAskRequest,
        ErrorBody, IncidentCard, IncidentDetail, IncidentPage, ReloadReport, ReplicaList,
        RunTestsRequest, ServiceState, SetBugRequest, SimulateRequest, SystemStatus, TestRun,
    };

    /// The replicas sharing this server's database, each with its advertised URL, latest heartbeat and the
    /// services it leads with their lease (additive). A server with a journal of its own (SQLite, memory) lists
    /// itself alone, leading every service.
    #[utoipa::path(
    get,
    path = "/api/replicas",
    operation_id = "listReplicas",
    tag = "replicas",
    responses(
        (status = 200, description = "The live replicas, by id", body = ReplicaList),
        (status = 500, description = "Server bug", body = ErrorBody),
        (status = 503, description = "The database cannot be read (`service_unavailable`)", body = ErrorBody),
    )
)]
    fn list_replicas() {}

    /// Receives one failed CI job (additive): its log excerpt is classified by the deterministic classifier
    /// (class, confidence, evidence lines), the intake is recorded with the history, and, when forwarding is
    /// configured (`FIXLOOP_CI_FORWARD_URL`), the intake is posted to that one downstream URL and its answer returned
    /// as `upstream` (a downstream that fails or times out gives `upstream.error`; the intake is never lost).
    /// Needs the intake's own token (`FIXLOOP_CI_TOKEN`, security scheme `ciToken`), not an API token; a server
    /// without one answers 404 `ci_intake_disabled` to a request with a bearer token (401 to one without).
    /// With CI self-heal configured (the profile's `[ci]` section), a failure whose class the policy lists is rerun
    /// through the CI provider's API, at most `max_attempts` times per (run, class), and the answer carries the
    /// decision, its context and the provider's report as `heal`; an intake with status `PASSED` closes the run's
    /// CI incident (`RECOVERED` only after FixLoop's rerun).
    #[utoipa::path(
    post,
    path = "/api/ci/logs",
    operation_id = "submitCiLogs",
    tag = "ci",
    request_body = CiLogRequest,
    responses(
        (status = 200, description = "Received, classified and recorded", body = CiIntake),
        (status = 400, description = "Malformed JSON (`invalid_json`)", body = ErrorBody),
        (status = 404, description = "The CI intake is off: the server has no `FIXLOOP_CI_TOKEN` (`ci_intake_disabled`, to a request with a bearer token)", body = ErrorBody),
        (status = 413, description = "The body, or `log_excerpt` (over 65,536 bytes), is too large (`payload_too_large`)", body = ErrorBody),
        (status = 415, description = "Not `application/json` (`unsupported_media_type`)", body = ErrorBody),
        (status = 422, description = "A field is missing, of the wrong type (`invalid_body`) or out of bounds: blank or too long names, more than 20 artifact links, a link that is not an http(s) URL (`invalid_value`)", body = ErrorBody),
        (status = 500, description = "Server bug, or the intake could not be recorded", body = ErrorBody),
    )
)]
    fn submit_ci_logs() {}

    /// The latest CI intakes, newest first (additive).
    #[utoipa::path(
    get,
    path = "/api/ci/logs",
    operation_id = "listCiLogs",
    tag = "ci",
    params(
        ("limit" = Option<u32>, Query, description = "How many, from 1 to 100 (default 20)", minimum = 1, maximum = 100),
    ),
    responses(
        (status = 200, description = "The latest intakes, newest first", body = CiIntakeList),
        (status = 400, description = "A malformed or out-of-bounds `limit` (`invalid_query`)", body = ErrorBody),
        (status = 500, description = "Server bug, or the store could not be read", body = ErrorBody),
    )
)]
    fn list_ci_logs() {}

    /// The CI incidents, newest first (additive): one per (repository, run id) with a failed intake (a run that only
    /// passed is no incident, so a page may hold fewer than `limit`), summing its intakes up: the
    /// state after the latest intake (`RECOVERED` only when a rerun FixLoop requested passed), the class of the
    /// latest failure, the reruns FixLoop requested, the first and latest intake times and the latest job status.
    #[utoipa::path(
    get,
    path = "/api/ci/incidents",
    operation_id = "listCiIncidents",
    tag = "ci",
    params(
        ("limit" = Option<u32>, Query, description = "How many, from 1 to 100 (default 20)", minimum = 1, maximum = 100),
    ),
    responses(
        (status = 200, description = "The CI incidents, newest first", body = CiIncidentList),
        (status = 400, description = "A malformed or out-of-bounds `limit` (`invalid_query`)", body = ErrorBody),
        (status = 500, description = "Server bug, or the store could not be read", body = ErrorBody),
    )
)]
    fn list_ci_incidents() {}

    /// Reads the server's profile file again and brings the watched services in line with it, as `SIGHUP` does
    /// (additive). Services are matched by name: new ones start, removed ones stop (their journal is kept), changed
    /// ones restart with their open incident restored, unchanged ones are not touched. A profile with problems, or
    /// with a service that cannot start, is refused whole (422 `invalid_profile`, each problem a detail) and the
    /// running services stay as they were. A server not started from a profile file answers 409 `no_profile`.
    /// Reloads are applied one at a time.
    #[utoipa::path(
    post,
    path = "/api/admin/reload",
    operation_id = "reloadProfile",
    tag = "admin",
    responses(
        (status = 200, description = "The profile was applied: what changed", body = ReloadReport),
        (status = 409, description = "The server was not started from a profile file (`no_profile`)", body = ErrorBody),
        (status = 422, description = "The profile was refused (`invalid_profile`); `details` lists each problem; nothing changed", body = ErrorBody),
        (status = 500, description = "Server bug", body = ErrorBody),
        (status = 503, description = "The server is shutting down", body = ErrorBody),
    )
)]
    fn reload_profile() {}

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
        ("events" = Option<String>, Query, description = "Optional event groups to receive besides the seed's five types (additive): a comma-separated list of known groups, given once. `remediation` adds `remediation.proposed`, `remediation.updated` and `incident.escalated`. An unknown group, an empty item or a repeated parameter is 400 `invalid_events`. A client that does not name a group never receives its types, live or replayed.", pattern = "^remediation(,remediation)*$", example = "remediation"),
    ),
    responses(
        (status = 101, description = "Switching Protocols: the connection is now a WebSocket carrying WsEnvelope messages"),
        (status = 400, description = "`since` is not a non-negative integer (`invalid_since`), `events` names an unknown group or is malformed (`invalid_events`), or not a WebSocket upgrade request (`websocket_upgrade_required`)", body = ErrorBody),
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
