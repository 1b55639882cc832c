// The dashboard's state and the rules that change it: pure functions of the contract's messages, no DOM, no I/O.
//
// The rules fix what the seed's dashboard got wrong: a copilot answer is kept once however it arrives (the REST
// reply and the `copilot.answer` broadcast are the same answer), the incident is cleared only when the server says
// no incident is open (never by a button), test results go with their incident, and the status is shown only
// while the connection is live.

import type {
  CiIncident,
  CopilotAnswer,
  IncidentCard,
  IncidentSummary,
  IncidentState,
  KillSwitchState,
  RemediationList,
  RemediationProposal,
  ServiceState,
  SystemStatus,
  TestRun,
  WsEnvelope,
} from "../../../fixloop-contract/typescript/fixloop-contract.js";

/** The connection to the backend, as the status bar shows it. */
export type Connection = "connecting" | "live" | "reconnecting" | "unreachable" | "unauthorized";

/** Everything the page shows. */
export interface Model {
  /** The connection state; the status is trusted only while `live`. */
  connection: Connection;
  /** The latest status of each service (key: `service`, or `""` for an unnamed one). */
  statuses: Map<string, SystemStatus>;
  /** The open incidents, by id. */
  incidents: Map<string, IncidentCard>;
  /** The runs of the open incidents, by run id. */
  runs: Map<string, TestRun>;
  /** The run whose tests are shown, or `null` for the latest one. */
  selectedRun: string | null;
  /** Why each open incident is not RECOVERED yet (`ServiceState.recovery_blocker`), by incident id. */
  blockers: Map<string, string | null>;
  /** Whether the server reports `recovery_blocker` at all (older servers do not). */
  blockerReported: boolean;
  /** The copilot's answers, oldest first, each once. */
  answers: CopilotAnswer[];
  /** When the latest message arrived (milliseconds since the epoch), for "as of" notes. */
  lastMessageAt: number | null;
  /** The largest `seq` seen on the stream, to resume with `GET /ws?since=` after a reconnection (`null`: none). */
  lastSeq: number | null;
  /** Recent incidents, runtime and CI, newest first (`GET /api/incidents` and `GET /api/ci/incidents`). */
  history: HistoryRow[];
  /** Remediation proposals by id, each at the newest version seen (`remediation.*` events, `GET /api/remediations`). */
  proposals: Map<string, RemediationProposal>;
  /** Why each escalated incident needs a human (`incident.escalated`), by incident id. */
  escalations: Map<string, string>;
  /** The global kill switch, or `null` while unknown (a server without remediation). */
  killSwitch: KillSwitchState | null;
}

/** One line of the incident history: a runtime incident, or one CI run's incident. */
export interface HistoryRow {
  /** `runtime` (an engine incident) or `ci` (a failed CI run). */
  kind: "runtime" | "ci";
  /** The incident id, or `<repository>#<run id>` for a CI run. */
  id: string;
  /** One line: the incident's title, or the CI run's job and class. */
  title: string;
  /** The incident's status (the contract's states), or `null` once a runtime incident is closed. */
  status: IncidentState | null;
  /** When it was detected (the CI run's first failure). */
  at: string;
  /** Why it closed, or the latest self-heal decision and its reason. */
  detail: string;
}

/** How many history rows the page shows. */
export const MAX_HISTORY = 20;

/** How many copilot answers the page keeps. */
export const MAX_ANSWERS = 50;

/** An empty model: connecting, nothing known. */
export function initialModel(): Model {
  return {
    connection: "connecting",
    statuses: new Map(),
    incidents: new Map(),
    runs: new Map(),
    selectedRun: null,
    blockers: new Map(),
    blockerReported: false,
    answers: [],
    lastMessageAt: null,
    lastSeq: null,
    history: [],
    proposals: new Map(),
    escalations: new Map(),
    killSwitch: null,
  };
}

/** Forgets the statuses before a (re)connection's join snapshot replaces them; incidents and runs are pruned by it. */
export function startSnapshot(model: Model): void {
  model.statuses.clear();
}

/** Applies one WebSocket message. */
export function applyEnvelope(model: Model, envelope: WsEnvelope, now: number): void {
  model.lastMessageAt = now;
  if (typeof envelope.seq === "number") model.lastSeq = Math.max(model.lastSeq ?? 0, envelope.seq);
  switch (envelope.type) {
    case "system.status":
      applyStatus(model, envelope.payload);
      break;
    case "incident.created":
      model.incidents.set(envelope.payload.incident_id, envelope.payload);
      break;
    case "plan.generated": {
      const incident = model.incidents.get(envelope.payload.incident_id);
      if (incident !== undefined) {
        model.incidents.set(incident.incident_id, { ...incident, plan: envelope.payload.plan });
      }
      break;
    }
    case "tests.updated":
      model.runs.set(envelope.payload.run_id, envelope.payload);
      break;
    case "copilot.answer":
      addAnswer(model, envelope.payload);
      break;
    case "remediation.proposed":
    case "remediation.updated":
      applyProposal(model, envelope.payload);
      break;
    case "incident.escalated":
      model.escalations.set(envelope.payload.incident_id, envelope.payload.reason);
      break;
    case "stream.reset":
      // The server could not replay from our `since`: the join snapshot follows (the connection handles it).
      break;
  }
}

/**
 * Whether a notice about an operator's action ("Checkout is fixed: FixLoop reruns the plan…") is outlived by the
 * worst status moving from `before` to `after`: once the page shows RECOVERED or HEALTHY, a notice that still talks
 * about what is being waited for would contradict the status bar.
 */
export function noticeOutlived(before: string | null, after: string | null): boolean {
  return before !== after && (after === "RECOVERED" || after === "HEALTHY");
}

/** A status: remembered per service; incidents no service reports open any more are dropped with their runs. */
export function applyStatus(model: Model, status: SystemStatus): void {
  model.statuses.set(status.service ?? "", status);
  const open = new Set<string>();
  for (const each of model.statuses.values()) {
    if (each.active_incident_id !== null) open.add(each.active_incident_id);
  }
  for (const id of [...model.incidents.keys()]) {
    if (!open.has(id)) model.incidents.delete(id);
  }
  for (const [runId, run] of [...model.runs]) {
    if (!open.has(run.incident_id)) model.runs.delete(runId);
  }
  for (const id of [...model.blockers.keys()]) {
    if (!open.has(id)) model.blockers.delete(id);
  }
  if (model.selectedRun !== null && !model.runs.has(model.selectedRun)) model.selectedRun = null;
}

/** A run from a REST reply: kept only when the stream has not told us about it yet (the stream is newer). */
export function addRunIfUnknown(model: Model, run: TestRun): void {
  if (!model.runs.has(run.run_id)) model.runs.set(run.run_id, run);
}

/** A copilot answer, from the REST reply or the broadcast: kept once. */
export function addAnswer(model: Model, answer: CopilotAnswer): void {
  const key = answerKey(answer);
  if (model.answers.some((each) => answerKey(each) === key)) return;
  model.answers.push(answer);
  model.answers.sort((a, b) => a.created_at.localeCompare(b.created_at));
  if (model.answers.length > MAX_ANSWERS) model.answers.splice(0, model.answers.length - MAX_ANSWERS);
}

/** The blockers of `GET /api/services`. */
export function applyServices(model: Model, services: ServiceState[]): void {
  for (const service of services) {
    if ("recovery_blocker" in service) model.blockerReported = true;
    const incident = service.current_incident;
    if (incident !== null && model.incidents.has(incident.incident_id)) {
      model.blockers.set(incident.incident_id, service.recovery_blocker ?? null);
    }
  }
}

const SEVERITY: Record<IncidentState, number> = {
  INCIDENT_ACTIVE: 3,
  VALIDATING: 2,
  RECOVERED: 1,
  HEALTHY: 0,
};

/** The status that matters most (as `GET /api/status` picks it), or `null` before the first one. */
export function worstStatus(model: Model): SystemStatus | null {
  let worst: SystemStatus | null = null;
  for (const status of model.statuses.values()) {
    if (worst === null || SEVERITY[status.status] > SEVERITY[worst.status]) worst = status;
  }
  return worst;
}

/** The incident the page shows: the worst status's, else any open one. */
export function shownIncident(model: Model): IncidentCard | null {
  const status = worstStatus(model);
  const id = status?.active_incident_id ?? null;
  if (id !== null) {
    const incident = model.incidents.get(id);
    if (incident !== undefined) return incident;
  }
  const first = model.incidents.values().next();
  return first.done === true ? null : first.value;
}

/** The status of the shown incident's service (the one that opened it), else the worst. */
export function statusOf(model: Model, incident: IncidentCard | null): SystemStatus | null {
  if (incident !== null) {
    for (const status of model.statuses.values()) {
      if (status.active_incident_id === incident.incident_id) return status;
    }
  }
  return worstStatus(model);
}

/** The runs of an incident, oldest first. */
export function runsOf(model: Model, incidentId: string): TestRun[] {
  return [...model.runs.values()]
    .filter((run) => run.incident_id === incidentId)
    .sort((a, b) => a.started_at.localeCompare(b.started_at) || a.run_id.localeCompare(b.run_id));
}

/** When a finished run finished (its last test update), or `null` while it runs. */
export function finishedAt(run: TestRun): string | null {
  if (run.status !== "COMPLETED" && run.status !== "FAILED") return null;
  let last = run.started_at;
  for (const test of run.tests) {
    if (test.last_update_at > last) last = test.last_update_at;
  }
  return last;
}

/** A link target the page may follow: `http:` and `https:` URLs only (never `javascript:` or `data:`). */
export function safeUrl(url: string): string | null {
  try {
    const parsed = new URL(url);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch {
    return null;
  }
}

/**
 * The incident history: runtime incidents and CI incidents (one per CI run, `repository` and `run_id`, as
 * `GET /api/ci/incidents` sums them up) side by side, newest first, at most `MAX_HISTORY`. A CI incident's status
 * is the server's (RECOVERED only when FixLoop's rerun passed); the server lists no run that only ever passed.
 */
export function historyRows(incidents: IncidentSummary[], ciIncidents: CiIncident[]): HistoryRow[] {
  const rows: HistoryRow[] = incidents.map((incident) => ({
    kind: "runtime",
    id: incident.incident_id,
    title: `${incident.service}: ${incident.title}`,
    status: incident.status,
    at: incident.detected_at,
    detail: incident.resolution ?? "",
  }));
  for (const run of ciIncidents) {
    const reruns = run.attempts === 1 ? "1 rerun" : `${run.attempts} reruns`;
    rows.push({
      kind: "ci",
      id: `${run.repository}#${run.run_id}`,
      title: `CI ${run.job}: ${run.class}`,
      status: run.state,
      at: run.first_intake_at,
      detail: `${run.latest_job_status}, ${reruns}${run.escalated ? " (escalated)" : ""}`,
    });
  }
  rows.sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : a.id < b.id ? 1 : -1));
  return rows.slice(0, MAX_HISTORY);
}

function answerKey(answer: CopilotAnswer): string {
  return JSON.stringify([answer.created_at, answer.incident_id, answer.question, answer.answer]);
}

/** The most proposals the page keeps (the newest). */
export const MAX_PROPOSALS = 50;

/**
 * A proposal from an event or a REST reply: kept at the newest version seen, so an older answer that arrives late
 * never undoes a newer state (a version only grows).
 */
export function applyProposal(model: Model, proposal: RemediationProposal): void {
  const known = model.proposals.get(proposal.proposal_id);
  if (known !== undefined && known.version > proposal.version) return;
  model.proposals.set(proposal.proposal_id, proposal);
  if (model.proposals.size > MAX_PROPOSALS) {
    const oldest = [...model.proposals.values()].sort(newestFirst).slice(MAX_PROPOSALS);
    for (const each of oldest) model.proposals.delete(each.proposal_id);
  }
}

/** `GET /api/remediations`: its proposals (each at the newest version) and the kill switch. */
export function applyRemediations(model: Model, list: RemediationList): void {
  for (const proposal of list.proposals) applyProposal(model, proposal);
  model.killSwitch = list.kill_switch;
}

/** The proposals of an incident, newest first. */
export function proposalsOf(model: Model, incidentId: string): RemediationProposal[] {
  return [...model.proposals.values()].filter((each) => each.incident_id === incidentId).sort(newestFirst);
}

/** Whether an operator may approve or reject the proposal now (it waits for one and the kill switch is off). */
export function awaitsDecision(model: Model, proposal: RemediationProposal): boolean {
  return proposal.state === "AWAITING_APPROVAL" && model.killSwitch?.engaged !== true;
}

/** One line about a proposal: its action, tier and mode, and where it stands. */
export function proposalLine(proposal: RemediationProposal): string {
  const state = proposal.outcome === undefined || proposal.outcome === null ? proposal.state : `${proposal.state} ${proposal.outcome}`;
  return `${proposal.action_id} (${proposal.tier}, ${proposal.mode}): ${state}`;
}

/**
 * Who picked a proposal's action, when a model was involved: the model's pick as the server checked it (`choice`),
 * or null when the rules picked without asking (or the server predates the model's choice).
 */
export function proposalChoice(proposal: RemediationProposal): string | null {
  const choice = proposal.choice ?? null;
  if (proposal.chosen_by === "model") return `picked by the model${choice === null ? "" : `: ${choice}`}`;
  return choice === null ? null : `picked by the rules: ${choice}`;
}

function newestFirst(a: RemediationProposal, b: RemediationProposal): number {
  return b.proposed_at.localeCompare(a.proposed_at) || b.proposal_id.localeCompare(a.proposal_id);
}
