// Type-check fixture for fixloop-contract.ts, compiled by `tsc -p .` in .ci/run (nothing is emitted or run).
// It writes the example documents' shapes as typed literals, so the compiler proves the generated types accept
// them, and switches over every WebSocket message type, so it proves `WsEnvelope` is a discriminated union.

import type {
  CopilotAskRequest,
  ErrorBody,
  IncidentCard,
  IncidentState,
  RunTestsRequest,
  ServiceState,
  SetBugRequest,
  SimulateRequest,
  SystemStatus,
  TestRun,
  WsEnvelope,
} from "./fixloop-contract";

const status: SystemStatus = {
  status: "INCIDENT_ACTIVE",
  error_rate_5m: 31.0,
  p95_latency_ms_5m: 184.5,
  active_incident_id: "inc-0001",
  updated_at: "2026-11-21T10:15:03Z",
  service: "demo-checkout",
};

const card: IncidentCard = {
  incident_id: "inc-0001",
  title: "Checkout error rate 31% (5 min)",
  detected_at: "2026-11-21T10:15:00Z",
  datadog_summary: {
    monitor_id: null,
    service: "demo-checkout",
    signal: { error_rate_5m: 31.0, p95_latency_ms_5m: 184.5, top_error: null },
    evidence_links: [{ label: "metrics", url: "http://127.0.0.1:8001/metrics" }],
  },
  plan: {
    plan_id: "plan-0001",
    generated_at: "2026-11-21T10:15:02Z",
    items: [
      {
        test_id: "t5-auth",
        name: "Auth check",
        type: "SYNTHETIC",
        priority: 5,
        what_it_checks: "A valid token is accepted",
        target: {
          method: "GET",
          url: "http://127.0.0.1:8001/auth/me",
          headers: { authorization: "Bearer demo-token" },
          body_json: {},
        },
        pass_criteria: "status == 200",
      },
    ],
  },
};

const run: TestRun = {
  run_id: "run-0001",
  incident_id: "inc-0001",
  started_at: "2026-11-21T10:16:00Z",
  status: "RUNNING",
  tests: [
    { test_id: "t5-auth", name: "Auth check", status: "PASS", last_update_at: "2026-11-21T10:16:01Z", details: null },
  ],
};

const service: ServiceState = {
  name: "orders",
  base_url: "http://orders.internal:9100",
  signals: "scrape of http://orders.internal:9100/metrics",
  status: { ...status, status: "HEALTHY", active_incident_id: null },
  current_incident: null,
};

const requests: [SetBugRequest, SimulateRequest, RunTestsRequest, CopilotAskRequest, CopilotAskRequest] = [
  { enabled: true },
  { mode: "INCIDENT_ON" },
  { incident_id: "inc-0001" },
  { question: "Why is checkout failing?" },
  { incident_id: null, question: "Is the system healthy?" },
];

const error: ErrorBody = {
  code: "invalid_json",
  message: "the body is not JSON",
  details: [{ path: "", message: "expected value at line 1 column 1" }],
};

/** What a dashboard does with one WebSocket message: `switch` narrows `payload` by `type`. */
function describe(envelope: WsEnvelope): string {
  switch (envelope.type) {
    case "system.status":
      return `${envelope.payload.status} at ${envelope.ts}`;
    case "incident.created":
      return envelope.payload.title;
    case "plan.generated":
      return `${envelope.payload.plan.items.length} tests for ${envelope.payload.incident_id}`;
    case "tests.updated":
      return envelope.payload.tests.map((t) => `${t.test_id}: ${t.status}`).join(", ");
    case "copilot.answer":
      // `answered_by` is additive: older servers leave it out.
      return envelope.payload.answered_by === "GROUNDED_FALLBACK"
        ? `${envelope.payload.answer} (grounded fallback: ${envelope.payload.fallback_reason ?? "model unavailable"})`
        : envelope.payload.answer;
    case "stream.reset":
      // Only for a client that resumed with `since`: the join snapshot follows.
      return `resume from ${envelope.payload.since} refused (${envelope.payload.reason}); oldest kept ${envelope.payload.oldest_available}`;
    case "remediation.proposed":
    case "remediation.updated":
      // Only for a client that connected with `events=remediation`; `version` grows at every change.
      return `${envelope.payload.action_id} (${envelope.payload.tier}): ${envelope.payload.state} v${envelope.payload.version}`;
    case "incident.escalated":
      return `${envelope.payload.incident_id} needs a human: ${envelope.payload.reason}`;
    default: {
      // Every message type is handled: a new one added to the contract fails here until it is.
      const _never: never = envelope;
      return _never;
    }
  }
}

const states: IncidentState[] = ["HEALTHY", "INCIDENT_ACTIVE", "VALIDATING", "RECOVERED"];

// @ts-expect-error an enum value outside the contract is rejected
const wrongState: IncidentState = "DEGRADED";

// @ts-expect-error a payload of the wrong shape for its `type` is rejected
const wrongPayload: WsEnvelope = { type: "system.status", payload: run, ts: "2026-11-21T10:16:00Z" };

export const checked = [
  describe({ type: "system.status", payload: status, ts: "2026-11-21T10:15:03Z" }),
  describe({ type: "incident.created", payload: card, ts: "2026-11-21T10:15:00Z" }),
  describe({ type: "plan.generated", payload: { incident_id: card.incident_id, plan: card.plan }, ts: "2026-11-21T10:15:02Z" }),
  describe({ type: "tests.updated", payload: run, ts: "2026-11-21T10:16:01Z" }),
  describe({
    type: "copilot.answer",
    payload: { incident_id: null, question: "?", answer: "!", citations: [], created_at: "2026-11-21T10:17:00Z" },
    ts: "2026-11-21T10:17:00Z",
  }),
  describe({
    type: "copilot.answer",
    payload: {
      incident_id: null,
      question: "?",
      answer: "!",
      citations: [],
      created_at: "2026-11-21T10:17:00Z",
      answered_by: "GROUNDED_FALLBACK",
      fallback_reason: "the model did not answer within 8 s",
    },
    ts: "2026-11-21T10:17:00Z",
  }),
  service,
  requests,
  error,
  states,
  wrongState,
  wrongPayload,
];
