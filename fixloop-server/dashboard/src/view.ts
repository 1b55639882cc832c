// Renders the model into the page. Server text only ever becomes a text node (`textContent`), never markup, and a
// link is made only from an http(s) URL: an incident title with `<script>` in it is shown as those characters.

import type {
  CopilotAnswer,
  IncidentCard,
  Link,
  PlanItem,
  TestRun,
} from "../../../fixloop-contract/typescript/fixloop-contract.js";
import {
  awaitsDecision,
  finishedAt,
  proposalChoice,
  proposalLine,
  proposalsOf,
  runsOf,
  safeUrl,
  shownIncident,
  statusOf,
  worstStatus,
  type HistoryRow,
  type Model,
} from "./model.js";

type Child = Node | string | null;

/** Builds an element; strings become text nodes. */
export function el(tag: string, attributes: Record<string, string> = {}, ...children: Child[]): HTMLElement {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  for (const child of children) {
    if (child === null) continue;
    element.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return element;
}

/** The element with this id (the page's skeleton has every one of them). */
export function byId(id: string): HTMLElement {
  const element = document.getElementById(id);
  if (element === null) throw new Error(`the page has no #${id}`);
  return element;
}

const CONNECTION_TEXT: Record<Model["connection"], string> = {
  connecting: "connecting…",
  live: "live",
  reconnecting: "reconnecting…",
  unreachable: "backend unreachable",
  unauthorized: "token required",
};

/** Renders every panel whose content changed. */
export function render(model: Model, expandedPlanItems: Set<string>): void {
  const focused = document.activeElement instanceof HTMLElement ? document.activeElement.dataset["key"] : undefined;
  const live = model.connection === "live";
  const incident = shownIncident(model);
  renderStatusBar(model, live);
  renderIncident(incident, live, model.lastMessageAt);
  renderPlan(incident, expandedPlanItems);
  renderBlocker(model, incident);
  renderRemediation(model, incident, live);
  renderRuns(model, incident);
  renderAnswers(model.answers);
  renderHistory(model.history);
  renderControls(incident, live);
  if (focused !== undefined) {
    const again = document.querySelector<HTMLElement>(`[data-key="${CSS.escape(focused)}"]`);
    if (again !== null && again !== document.activeElement) again.focus();
  }
}

function renderStatusBar(model: Model, live: boolean): void {
  const status = live ? worstStatus(model) : null;
  const badge = byId("status");
  // Without a live connection the status is unknown: the page never shows a stale HEALTHY.
  badge.textContent = status === null ? "UNKNOWN" : status.status;
  badge.dataset["status"] = status === null ? "UNKNOWN" : status.status;
  byId("error-rate").textContent = status === null ? "–" : `${status.error_rate_5m.toFixed(1)}%`;
  byId("p95").textContent = status === null ? "–" : `${Math.round(status.p95_latency_ms_5m)} ms`;
  byId("service").textContent = status?.service ?? "–";
  const connection = byId("connection");
  connection.textContent = CONNECTION_TEXT[model.connection];
  connection.dataset["connection"] = model.connection;
  const degraded = byId("degraded");
  const reason = status?.signals_degraded ?? null;
  degraded.hidden = reason === null;
  degraded.textContent = reason === null ? "" : `Signals degraded: ${reason}`;
}

let incidentKey = "";

function renderIncident(incident: IncidentCard | null, live: boolean, lastMessageAt: number | null): void {
  const key = JSON.stringify([incident, live]);
  if (key === incidentKey) return;
  incidentKey = key;
  const body = byId("incident-body");
  const children: Node[] = [];
  if (!live && lastMessageAt !== null) {
    children.push(
      el("p", { class: "stale" }, `Not live: shown as of ${clock(new Date(lastMessageAt).toISOString())}.`),
    );
  }
  if (incident === null) {
    children.push(el("p", { class: "empty" }, live ? "No open incident." : "Waiting for the backend…"));
    body.replaceChildren(...children);
    return;
  }
  const summary = incident.datadog_summary;
  const signal = summary.signal;
  children.push(
    el("h3", { id: "incident-title" }, incident.title),
    el(
      "dl",
      { class: "facts" },
      fact("Detected", `${clock(incident.detected_at)} (${incident.detected_at})`),
      fact("Service", summary.service),
      fact("Signal", `error rate ${signal.error_rate_5m.toFixed(1)}%, p95 ${Math.round(signal.p95_latency_ms_5m)} ms`),
      fact("Top error", signal.top_error ?? "none observed"),
      fact("Monitor", summary.monitor_id ?? "— (detected by FixLoop)"),
      fact("Incident id", incident.incident_id),
    ),
  );
  if (summary.evidence_links.length > 0) {
    children.push(el("h4", {}, "Evidence"), el("ul", { class: "links" }, ...summary.evidence_links.map((l) => el("li", {}, link(l)))));
  }
  body.replaceChildren(...children);
}

let planKey = "";

function renderPlan(incident: IncidentCard | null, expanded: Set<string>): void {
  const key = JSON.stringify(incident?.plan ?? null);
  if (key === planKey) return;
  planKey = key;
  const list = byId("plan");
  const note = byId("plan-note");
  if (incident === null) {
    note.textContent = "No plan: no incident is open.";
    list.replaceChildren();
    return;
  }
  const plan = incident.plan;
  note.textContent =
    plan.items.length === 0
      ? "The plan is being generated…"
      : `Plan ${plan.plan_id}, generated ${clock(plan.generated_at)}: ${plan.items.length} tests by priority.`;
  list.replaceChildren(...plan.items.map((item) => planItem(item, expanded)));
}

function planItem(item: PlanItem, expanded: Set<string>): HTMLElement {
  const details = el(
    "details",
    { "data-test-id": item.test_id },
    el(
      "summary",
      { "data-key": `plan-${item.test_id}` },
      el("span", { class: "priority" }, `P${item.priority}`),
      " ",
      el("span", { class: "type" }, item.type),
      " ",
      el("strong", {}, item.name),
      el("span", { class: "checks" }, ` — ${item.what_it_checks}`),
    ),
    el(
      "dl",
      { class: "facts" },
      fact("Target", `${item.target.method} ${item.target.url}`),
      fact("Pass criteria", item.pass_criteria),
      fact("Headers", Object.keys(item.target.headers ?? {}).length === 0 ? "none" : JSON.stringify(item.target.headers)),
      fact("Body", Object.keys(item.target.body_json ?? {}).length === 0 ? "none" : JSON.stringify(item.target.body_json)),
      fact("Test id", item.test_id),
    ),
  );
  if (expanded.has(item.test_id)) details.setAttribute("open", "");
  details.addEventListener("toggle", () => {
    if ((details as HTMLDetailsElement).open) expanded.add(item.test_id);
    else expanded.delete(item.test_id);
  });
  return el("li", {}, details);
}

function renderBlocker(model: Model, incident: IncidentCard | null): void {
  const panel = byId("blocker");
  const status = statusOf(model, incident);
  const lines: Node[] = [];
  if (model.connection !== "live") {
    lines.push(el("li", {}, "Unknown while the backend is not live."));
  } else if (incident === null || status === null || status.status === "HEALTHY") {
    lines.push(el("li", {}, "No open incident."));
  } else if (status.status === "RECOVERED") {
    lines.push(el("li", {}, "RECOVERED: every test passed and the signals are healthy."));
  } else {
    const blocker = model.blockers.get(incident.incident_id);
    if (blocker === undefined || blocker === null) {
      lines.push(
        el("li", {}, model.blockerReported ? "Waiting for the server's reason…" : "This server does not report the reason."),
      );
    } else {
      // The engine states the tests gate and the signals gate, separated by "; ".
      for (const part of blocker.split("; ")) lines.push(el("li", {}, part));
    }
  }
  const key = JSON.stringify(lines.map((line) => line.textContent));
  if (panel.dataset["key"] === key) return;
  panel.dataset["key"] = key;
  panel.replaceChildren(...lines);
}

let remediationKey = "";

/**
 * The shown incident's remediation proposals, newest first, each with Approve and Reject while it awaits an
 * operator (the buttons carry the version the operator saw: compare-and-set), the escalation, and the kill switch.
 */
function renderRemediation(model: Model, incident: IncidentCard | null, live: boolean): void {
  const proposals = incident === null ? [] : proposalsOf(model, incident.incident_id);
  const escalation = incident === null ? undefined : model.escalations.get(incident.incident_id);
  const key = JSON.stringify([proposals, escalation ?? null, model.killSwitch, live]);
  if (key === remediationKey) return;
  remediationKey = key;
  const engaged = model.killSwitch?.engaged === true;
  const state = byId("kill-switch-state");
  state.dataset["engaged"] = String(engaged);
  state.textContent =
    model.killSwitch === null
      ? "Kill switch: unknown"
      : engaged
        ? `Kill switch ENGAGED${model.killSwitch.changed_by ? ` by ${model.killSwitch.changed_by}` : ""}: no action runs`
        : "Kill switch released: actions may run";
  const toggle = byId("kill-switch") as HTMLButtonElement;
  toggle.textContent = engaged ? "Release the kill switch" : "Engage the kill switch";
  toggle.dataset["engage"] = String(!engaged);
  if (toggle.dataset["busy"] !== "true") toggle.disabled = !live || model.killSwitch === null;
  const items: Node[] = [];
  if (escalation !== undefined) {
    items.push(el("li", { class: "escalated", "data-testid": "escalation" }, `Escalated to a human: ${escalation}`));
  }
  for (const proposal of proposals) {
    const decide = awaitsDecision(model, proposal);
    const buttons = decide
      ? el(
          "span",
          { class: "decisions" },
          el("button", {
            type: "button",
            "data-decision": "approve",
            "data-proposal-id": proposal.proposal_id,
            "data-version": String(proposal.version),
            "data-testid": "approve",
            "data-key": `approve-${proposal.proposal_id}`,
            ...(live ? {} : { disabled: "" }),
          }, "Approve"),
          el("button", {
            type: "button",
            "data-decision": "reject",
            "data-proposal-id": proposal.proposal_id,
            "data-version": String(proposal.version),
            "data-testid": "reject",
            "data-key": `reject-${proposal.proposal_id}`,
            ...(live ? {} : { disabled: "" }),
          }, "Reject"),
        )
      : null;
    items.push(
      el(
        "li",
        { "data-testid": "proposal", "data-proposal-id": proposal.proposal_id, "data-state": proposal.state },
        el("strong", {}, proposalLine(proposal)),
        el("br"),
        el("span", { class: "details" }, proposal.note),
        proposalChoice(proposal) === null
          ? null
          : el("span", { class: "details", "data-testid": "choice" }, ` · ${proposalChoice(proposal)}`),
        proposal.decided_by ? el("span", { class: "time" }, ` (decided by ${proposal.decided_by})`) : null,
        buttons,
      ),
    );
  }
  if (items.length === 0) {
    items.push(el("li", { class: "empty" }, incident === null ? "No open incident." : "No remediation proposed."));
  }
  byId("proposals").replaceChildren(...items);
}

let runsKey = "";

function renderRuns(model: Model, incident: IncidentCard | null): void {
  const runs = incident === null ? [] : runsOf(model, incident.incident_id);
  const latest = runs.at(-1) ?? null;
  const shown = runs.find((run) => run.run_id === model.selectedRun) ?? latest;
  const key = JSON.stringify([runs, shown?.run_id ?? null]);
  if (key === runsKey) return;
  runsKey = key;
  const summary = byId("run");
  const table = byId("tests");
  if (shown === null) {
    summary.textContent = incident === null ? "No run: no incident is open." : "No run yet.";
    table.replaceChildren();
  } else {
    summary.replaceChildren(
      el("span", { class: "run-status", "data-status": shown.status }, shown.status),
      ` ${shown.run_id}${shown === latest ? " (latest)" : ""}: ${timing(shown)}`,
    );
    table.replaceChildren(...shown.tests.map((test) =>
      el(
        "tr",
        { "data-test-id": test.test_id },
        el("td", {}, test.name),
        el("td", {}, el("span", { class: "test-status", "data-status": test.status }, test.status)),
        el("td", { class: "details" }, test.details ?? (test.status === "PENDING" ? "waiting" : "")),
        el("td", { class: "time" }, clock(test.last_update_at)),
      ),
    ));
  }
  const history = byId("runs");
  history.replaceChildren(...[...runs].reverse().map((run) => {
    const passed = run.tests.filter((test) => test.status === "PASS").length;
    const button = el(
      "button",
      {
        type: "button",
        class: "run-button",
        "data-run-id": run.run_id,
        "data-key": `run-${run.run_id}`,
        "aria-pressed": String(run === shown),
      },
      el("span", { class: "run-status", "data-status": run.status }, run.status),
      ` ${run.run_id}: ${passed} of ${run.tests.length} passed, ${timing(run)}`,
    );
    return el("li", {}, button);
  }));
}

let answersKey = "";

function renderAnswers(answers: CopilotAnswer[]): void {
  const key = JSON.stringify(answers);
  if (key === answersKey) return;
  answersKey = key;
  const list = byId("answers");
  if (answers.length === 0) {
    list.replaceChildren(el("li", { class: "empty" }, "No question asked yet."));
    return;
  }
  list.replaceChildren(...answers.map((answer) =>
    el(
      "li",
      { class: "answer" },
      el("p", { class: "question" }, el("span", { class: "sr-label" }, "Q: "), answer.question),
      el("p", { class: "reply" }, answer.answer),
      answer.citations.length === 0
        ? null
        : el("ul", { class: "links citations", "aria-label": "Citations" }, ...answer.citations.map((l) => el("li", {}, link(l)))),
      el(
        "p",
        { class: "time" },
        `${clock(answer.created_at)}${answer.incident_id === null ? "" : ` · ${answer.incident_id}`}${
          answer.answered_by === "GROUNDED_FALLBACK" ? " · (grounded fallback)" : ""
        }${answer.redacted === true ? " · (status sentences left out by FixLoop)" : ""}`,
      ),
    ),
  ));
}

let historyKey = "";

function renderHistory(rows: HistoryRow[]): void {
  const key = JSON.stringify(rows);
  if (key === historyKey) return;
  historyKey = key;
  const table = byId("history");
  if (rows.length === 0) {
    table.replaceChildren(el("tr", {}, el("td", { class: "empty", colspan: "5" }, "No incident yet.")));
    return;
  }
  table.replaceChildren(...rows.map((row) =>
    el(
      "tr",
      { "data-kind": row.kind, "data-incident-id": row.id },
      el("td", {}, el("span", { class: "kind", "data-kind": row.kind }, row.kind === "ci" ? "CI" : "runtime")),
      el("td", {}, row.title, el("br"), el("span", { class: "time" }, row.id)),
      el("td", {}, el("span", { class: "history-status", "data-status": row.status ?? "CLOSED" }, row.status ?? "closed")),
      el("td", { class: "details" }, row.detail),
      el("td", { class: "time" }, clock(row.at)),
    ),
  ));
}

function renderControls(incident: IncidentCard | null, live: boolean): void {
  // The controls act on the backend: without a live connection they would only fail.
  for (const id of ["break", "fix", "simulate-on", "simulate-off", "ask-button"]) {
    const button = byId(id) as HTMLButtonElement;
    if (button.dataset["busy"] !== "true") button.disabled = !live;
  }
  const run = byId("run-validation") as HTMLButtonElement;
  if (run.dataset["busy"] !== "true") run.disabled = !live || incident === null || incident.plan.items.length === 0;
}

function fact(term: string, value: string): HTMLElement {
  return el("div", {}, el("dt", {}, term), el("dd", {}, value));
}

function link(target: Link): Node {
  const url = safeUrl(target.url);
  if (url === null) return el("span", { class: "unsafe-link" }, `${target.label} (${target.url})`);
  return el("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, target.label);
}

function timing(run: TestRun): string {
  const finished = finishedAt(run);
  const started = Date.parse(run.started_at);
  if (finished === null) return `started ${clock(run.started_at)}, in progress`;
  const seconds = Math.max(0, (Date.parse(finished) - started) / 1000);
  return `started ${clock(run.started_at)}, took ${seconds.toFixed(1)} s`;
}

/** A timestamp as the local wall clock (`14:02:11`), or the raw text when it does not parse. */
export function clock(timestamp: string): string {
  const at = new Date(timestamp);
  if (Number.isNaN(at.getTime())) return timestamp;
  return at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
}
