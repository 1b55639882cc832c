// Unit tests of the dashboard's state rules (assets/model.js, compiled from src/model.ts), with Node's own test
// runner: `node --test test/model.test.mjs`. Each case is one of the seed dashboard's mistakes, or a safety rule.

import assert from "node:assert/strict";
import test from "node:test";

import {
  addAnswer,
  addRunIfUnknown,
  applyEnvelope,
  applyProposal,
  applyRemediations,
  applyServices,
  awaitsDecision,
  historyRows,
  initialModel,
  noticeOutlived,
  proposalChoice,
  proposalLine,
  proposalsOf,
  runsOf,
  safeUrl,
  shownIncident,
  startSnapshot,
  worstStatus,
} from "../assets/model.js";

const TS = "2026-12-02T10:00:00Z";

function status(state, incidentId, service = "shop") {
  return { status: state, error_rate_5m: 0, p95_latency_ms_5m: 10, active_incident_id: incidentId, updated_at: TS, service };
}

function card(incidentId, items = 0) {
  return {
    incident_id: incidentId,
    title: `incident ${incidentId}`,
    detected_at: TS,
    datadog_summary: {
      monitor_id: null,
      service: "shop",
      signal: { error_rate_5m: 20, p95_latency_ms_5m: 10, top_error: null },
      evidence_links: [],
    },
    plan: { plan_id: `${incidentId}-plan`, generated_at: TS, items: Array.from({ length: items }, (_, index) => ({ test_id: `t${index}` })) },
  };
}

function run(runId, incidentId, state, startedAt = TS) {
  return { run_id: runId, incident_id: incidentId, started_at: startedAt, status: state, tests: [] };
}

function answer(question, createdAt = TS) {
  return { incident_id: "inc-1", question, answer: "because", citations: [], created_at: createdAt };
}

function send(model, type, payload) {
  applyEnvelope(model, { type, payload, ts: TS }, 0);
}

function withOpenIncident() {
  const model = initialModel();
  send(model, "system.status", status("INCIDENT_ACTIVE", "inc-1"));
  send(model, "incident.created", card("inc-1"));
  send(model, "plan.generated", { incident_id: "inc-1", plan: card("inc-1", 5).plan });
  send(model, "tests.updated", run("run-1", "inc-1", "FAILED"));
  return model;
}

test("a copilot answer that arrives by REST and by broadcast is shown once", () => {
  const model = initialModel();
  addAnswer(model, answer("What is failing?"));
  send(model, "copilot.answer", answer("What is failing?"));
  assert.equal(model.answers.length, 1);
  addAnswer(model, answer("What is failing?", "2026-12-02T10:00:05Z"));
  assert.equal(model.answers.length, 2, "the same question asked again is a new answer");
});

test("the plan of five arrives on the incident and the incident stays until the server closes it", () => {
  const model = withOpenIncident();
  assert.equal(shownIncident(model)?.plan.items.length, 5);
  // What a click on "fix" leads to: VALIDATING, then RECOVERED, the incident is kept throughout.
  send(model, "system.status", status("VALIDATING", "inc-1"));
  send(model, "system.status", status("RECOVERED", "inc-1"));
  assert.equal(shownIncident(model)?.incident_id, "inc-1");
  assert.equal(runsOf(model, "inc-1").length, 1);
});

test("when the incident closes its plan, runs and blocker go with it", () => {
  const model = withOpenIncident();
  applyServices(model, [{ name: "shop", base_url: "", signals: "", status: status("INCIDENT_ACTIVE", "inc-1"), current_incident: card("inc-1"), recovery_blocker: "tests failing" }]);
  assert.equal(model.blockers.get("inc-1"), "tests failing");
  send(model, "system.status", status("HEALTHY", null));
  assert.equal(shownIncident(model), null);
  assert.equal(model.runs.size, 0);
  assert.equal(model.blockers.size, 0);
});

test("a new incident replaces the closed one, without its old runs", () => {
  const model = withOpenIncident();
  send(model, "system.status", status("INCIDENT_ACTIVE", "inc-2"));
  send(model, "incident.created", card("inc-2"));
  assert.equal(shownIncident(model)?.incident_id, "inc-2");
  assert.deepEqual(runsOf(model, "inc-1"), []);
});

test("a REST reply never overwrites the newer state the stream delivered", () => {
  const model = withOpenIncident();
  addRunIfUnknown(model, run("run-1", "inc-1", "RUNNING"));
  assert.equal(model.runs.get("run-1")?.status, "FAILED");
  addRunIfUnknown(model, run("run-2", "inc-1", "RUNNING", "2026-12-02T10:00:09Z"));
  assert.deepEqual(runsOf(model, "inc-1").map((each) => each.run_id), ["run-1", "run-2"]);
});

test("a reconnection's snapshot replaces the statuses; an incident closed meanwhile disappears", () => {
  const model = withOpenIncident();
  startSnapshot(model);
  send(model, "system.status", status("HEALTHY", null));
  assert.equal(worstStatus(model)?.status, "HEALTHY");
  assert.equal(shownIncident(model), null);
});

test("with several services the worst status and its incident are shown", () => {
  const model = initialModel();
  send(model, "system.status", status("HEALTHY", null, "a"));
  send(model, "system.status", status("VALIDATING", "inc-b", "b"));
  send(model, "incident.created", card("inc-b"));
  assert.equal(worstStatus(model)?.service, "b");
  assert.equal(shownIncident(model)?.incident_id, "inc-b");
  send(model, "system.status", status("HEALTHY", null, "a"));
  assert.equal(shownIncident(model)?.incident_id, "inc-b", "another service's status does not close it");
});

test("only http and https URLs become links", () => {
  assert.equal(safeUrl("https://app.datadoghq.com/x?y=1"), "https://app.datadoghq.com/x?y=1");
  assert.equal(safeUrl("http://127.0.0.1:8000/api/tests/runs/run-1"), "http://127.0.0.1:8000/api/tests/runs/run-1");
  for (const unsafe of ["javascript:alert(1)", "JAVASCRIPT:alert(1)", "data:text/html,<script>", "not a url", "//evil.example"]) {
    assert.equal(safeUrl(unsafe), null, unsafe);
  }
});

test("the largest seq seen is kept for resuming, and a stream.reset changes no state by itself", () => {
  const model = initialModel();
  assert.equal(model.lastSeq, null);
  applyEnvelope(model, { type: "system.status", payload: status("HEALTHY", null), ts: TS, seq: 41 }, 0);
  applyEnvelope(model, { type: "system.status", payload: status("HEALTHY", null), ts: TS, seq: 42 }, 0);
  // A join snapshot message after a reset may carry an older seq than one seen: the largest stays.
  applyEnvelope(model, { type: "system.status", payload: status("HEALTHY", null), ts: TS, seq: 40 }, 0);
  assert.equal(model.lastSeq, 42);
  const before = JSON.stringify([...model.statuses]);
  applyEnvelope(model, { type: "stream.reset", payload: { since: 42, oldest_available: 100, reason: "TOO_OLD" }, ts: TS }, 0);
  assert.equal(JSON.stringify([...model.statuses]), before);
  // A server that does not number its events leaves the page without a resume point.
  const unnumbered = initialModel();
  applyEnvelope(unnumbered, { type: "system.status", payload: status("HEALTHY", null), ts: TS }, 0);
  assert.equal(unnumbered.lastSeq, null);
});

test("an action's notice is outlived when the status turns RECOVERED or HEALTHY, not before", () => {
  assert.equal(noticeOutlived("INCIDENT_ACTIVE", "VALIDATING"), false);
  assert.equal(noticeOutlived("VALIDATING", "VALIDATING"), false);
  assert.equal(noticeOutlived("VALIDATING", "RECOVERED"), true);
  assert.equal(noticeOutlived("RECOVERED", "HEALTHY"), true);
  assert.equal(noticeOutlived("HEALTHY", "HEALTHY"), false);
  assert.equal(noticeOutlived(null, "HEALTHY"), true);
});

function ciIncident(runId, state, first, last, { attempts = 0, escalated = false, latest = "FAILED" } = {}) {
  return {
    repository: "acme/shop",
    run_id: runId,
    state,
    class: "infrastructure",
    attempts,
    escalated,
    intakes: attempts + 1,
    job: "e2e",
    latest_job_status: latest,
    first_intake_at: first,
    last_intake_at: last,
  };
}

test("CI incidents are listed next to runtime incidents, newest first, with the server's state", () => {
  const runtime = { incident_id: "inc-1", title: "Checkout errors", service: "shop", detected_at: "2026-12-02T10:00:00Z", incident_end: null, status: "VALIDATING", resolution: null };
  // As GET /api/ci/incidents lists them: newest last intake first.
  const incidents = [
    ciIncident("7", "RECOVERED", "2026-12-02T11:00:00Z", "2026-12-02T11:05:00Z", { attempts: 1, latest: "PASSED" }),
    ciIncident("6", "INCIDENT_ACTIVE", "2026-12-02T09:00:00Z", "2026-12-02T09:30:00Z", { attempts: 2, escalated: true }),
    ciIncident("5", "INCIDENT_ACTIVE", "2026-12-02T08:00:00Z", "2026-12-02T08:00:00Z"),
  ];
  const rows = historyRows([runtime], incidents);
  assert.deepEqual(rows.map((row) => [row.kind, row.id, row.status]), [
    ["ci", "acme/shop#7", "RECOVERED"],
    ["runtime", "inc-1", "VALIDATING"],
    ["ci", "acme/shop#6", "INCIDENT_ACTIVE"],
    ["ci", "acme/shop#5", "INCIDENT_ACTIVE"],
  ]);
  assert.equal(rows[0].at, "2026-12-02T11:00:00Z", "a CI incident starts at its run's first intake");
  assert.equal(rows[0].title, "CI e2e: infrastructure");
  assert.match(rows[0].detail, /PASSED, 1 rerun/);
  assert.match(rows[2].detail, /2 reruns \(escalated\)/);
  assert.match(rows[3].detail, /FAILED, 0 reruns/);
});

function proposal(id, version, state, { incidentId = "inc-1", proposedAt = TS, outcome = undefined } = {}) {
  const value = {
    proposal_id: id,
    incident_id: incidentId,
    service: "shop",
    kind: "payment-errors",
    action_id: "restart-shop",
    tier: "risky",
    mode: "auto",
    version,
    state,
    proposed_at: proposedAt,
    updated_at: TS,
    note: `note ${version}`,
  };
  if (outcome !== undefined) value.outcome = outcome;
  return value;
}

test("a proposal is kept at its newest version: a late, older answer never undoes a newer state", () => {
  const model = withOpenIncident();
  send(model, "remediation.proposed", proposal("rem-1", 1, "AWAITING_APPROVAL"));
  send(model, "remediation.updated", proposal("rem-1", 3, "EXECUTING"));
  // The REST reply of the approval (version 2) arrives after the event of version 3.
  applyProposal(model, proposal("rem-1", 2, "EXECUTING"));
  assert.equal(model.proposals.get("rem-1").version, 3);
  applyRemediations(model, { proposals: [proposal("rem-1", 1, "AWAITING_APPROVAL")], kill_switch: { engaged: false } });
  assert.equal(model.proposals.get("rem-1").state, "EXECUTING", "a poll never rolls a proposal back");
  send(model, "remediation.updated", proposal("rem-1", 5, "FINISHED", { outcome: "EFFECTIVE" }));
  assert.equal(proposalLine(model.proposals.get("rem-1")), "restart-shop (risky, auto): FINISHED EFFECTIVE");
});

test("only a proposal awaiting approval can be decided, and not while the kill switch is engaged", () => {
  const model = withOpenIncident();
  const waiting = proposal("rem-1", 1, "AWAITING_APPROVAL");
  applyRemediations(model, { proposals: [waiting, proposal("rem-2", 4, "EXECUTING")], kill_switch: { engaged: false } });
  assert.equal(awaitsDecision(model, model.proposals.get("rem-1")), true);
  assert.equal(awaitsDecision(model, model.proposals.get("rem-2")), false);
  applyRemediations(model, { proposals: [], kill_switch: { engaged: true, changed_by: "oncall" } });
  assert.equal(awaitsDecision(model, model.proposals.get("rem-1")), false);
  assert.equal(model.killSwitch.changed_by, "oncall");
});

test("an incident's proposals are listed newest first, other incidents' left out, escalations remembered", () => {
  const model = withOpenIncident();
  send(model, "remediation.proposed", proposal("rem-1", 1, "FINISHED", { proposedAt: "2026-12-02T10:00:00Z", outcome: "INEFFECTIVE" }));
  send(model, "remediation.proposed", proposal("rem-2", 1, "AWAITING_APPROVAL", { proposedAt: "2026-12-02T10:05:00Z" }));
  send(model, "remediation.proposed", proposal("rem-9", 1, "RECORDED", { incidentId: "inc-2" }));
  assert.deepEqual(proposalsOf(model, "inc-1").map((each) => each.proposal_id), ["rem-2", "rem-1"]);
  send(model, "incident.escalated", { incident_id: "inc-1", service: "shop", reason: "strategy exhausted", escalated_at: TS });
  assert.equal(model.escalations.get("inc-1"), "strategy exhausted");
});

test("a proposal says who picked its action when a model was asked, and nothing when the rules picked alone", () => {
  const base = { proposal_id: "rem-1", incident_id: "inc-1", service: "demo-checkout", action_id: "flag-off", tier: "safe", mode: "auto", state: "EXECUTING", version: 2, note: "", proposed_at: "2026-12-08T00:00:00Z" };
  assert.equal(proposalChoice(base), null, "a server that predates the model's choice");
  assert.equal(proposalChoice({ ...base, chosen_by: "rules" }), null);
  assert.equal(
    proposalChoice({ ...base, chosen_by: "model", choice: "model chose \"flag-off\": fewer strikes" }),
    "picked by the model: model chose \"flag-off\": fewer strikes",
  );
  assert.equal(
    proposalChoice({ ...base, chosen_by: "rules", choice: "model chose \"rm-rf\": refused: action \"rm-rf\" is not declared; rule-based choice flag-off" }),
    "picked by the rules: model chose \"rm-rf\": refused: action \"rm-rf\" is not declared; rule-based choice flag-off",
  );
});
