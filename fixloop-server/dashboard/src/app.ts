// The dashboard's entry point: the connection to the backend (the `/ws` stream, with its join snapshot after every
// (re)connection), the REST calls of the controls and the copilot, and the API token.
//
// Connection rules: the page first asks `GET /api/status` (a 401 shows the token field; a network error or 5xx
// counts as a failure), then opens `/ws`. It is `live` from the first message of the stream; when the stream
// closes it is `reconnecting`, and after repeated failures `backend unreachable`. A reconnection resumes with
// `?since=<largest seq seen>`: the missed events, or `stream.reset` and the join snapshot (live once open). `GET /api/services` is polled
// for the recovery blocker, and a failed poll also ends the stream, so a dead backend is noticed even when its
// socket does not close.

import type {
  CiIncidentList,
  CopilotAnswer,
  CopilotAskRequest,
  ErrorBody,
  IncidentPage,
  KillSwitchRequest,
  KillSwitchState,
  RemediationDecisionRequest,
  RemediationList,
  RemediationProposal,
  RunTestsRequest,
  ServiceState,
  SetBugRequest,
  SimulateRequest,
  TestRun,
  WsEnvelope,
} from "../../../fixloop-contract/typescript/fixloop-contract.js";
import {
  addAnswer,
  addRunIfUnknown,
  applyEnvelope,
  applyProposal,
  applyRemediations,
  applyServices,
  historyRows,
  initialModel,
  noticeOutlived,
  shownIncident,
  startSnapshot,
  worstStatus,
} from "./model.js";
import { byId, render } from "./view.js";

const TOKEN_KEY = "fixloop.api-token";
const POLL_MS = 2000;
/** The incident history is read every this many polls. */
const HISTORY_EVERY = 5;
const REQUEST_TIMEOUT_MS = 10_000;
const COPILOT_TIMEOUT_MS = 40_000;
/** Failed attempts in a row before "reconnecting" becomes "backend unreachable". */
const UNREACHABLE_AFTER = 2;

const model = initialModel();
const expandedPlanItems = new Set<string>();
let token: string | null = sessionStorage.getItem(TOKEN_KEY);
let socket: WebSocket | null = null;
let failures = 0;
let retryTimer: number | undefined;
let pollTimer: number | undefined;
let renderQueued = false;
let tokenWaiters: Array<() => void> = [];
let connecting = false;
let messagesApplied = 0;
let polls = 0;

/** A failed API call: the HTTP status (0 for a network error or timeout) and the contract's error body. */
class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

async function api<T>(method: "GET" | "POST", path: string, body?: unknown, timeoutMs = REQUEST_TIMEOUT_MS): Promise<T> {
  const controller = new AbortController();
  const timer = window.setTimeout(() => controller.abort(), timeoutMs);
  const headers: Record<string, string> = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (token !== null) headers["authorization"] = `Bearer ${token}`;
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? null : JSON.stringify(body),
      signal: controller.signal,
      cache: "no-store",
    });
  } catch (error) {
    window.clearTimeout(timer);
    const timedOut = error instanceof DOMException && error.name === "AbortError";
    throw new ApiFailure(0, timedOut ? "timeout" : "network", timedOut ? `${method} ${path} timed out` : `${method} ${path}: the backend is unreachable`);
  }
  try {
    const text = await response.text();
    let json: unknown = null;
    try {
      json = text === "" ? null : JSON.parse(text);
    } catch {
      json = null;
    }
    if (response.status === 401) {
      // Ask for a token, then send the same request again with it.
      window.clearTimeout(timer);
      await tokenEntered(token === null ? "The API needs a token." : "The token was refused; enter another.");
      return await api<T>(method, path, body, timeoutMs);
    }
    if (!response.ok) {
      const error = json as Partial<ErrorBody> | null;
      throw new ApiFailure(response.status, error?.code ?? `http_${response.status}`, error?.message ?? `${method} ${path} answered ${response.status}`);
    }
    return json as T;
  } finally {
    window.clearTimeout(timer);
  }
}

function update(): void {
  if (renderQueued) return;
  renderQueued = true;
  window.requestAnimationFrame(() => {
    renderQueued = false;
    render(model, expandedPlanItems);
  });
}

function notify(text: string): void {
  byId("notice").textContent = text;
  byId("error").textContent = "";
}

function fail(error: unknown): void {
  byId("notice").textContent = "";
  byId("error").textContent = error instanceof ApiFailure ? `${error.message} (${error.code})` : String(error);
}

// --- connection -------------------------------------------------------------------------------------------------

async function connect(): Promise<void> {
  window.clearTimeout(retryTimer);
  if (socket !== null || connecting) return;
  connecting = true;
  try {
    await api("GET", "/api/status", undefined, 5000);
  } catch {
    connectionLost();
    return;
  } finally {
    connecting = false;
  }
  if (socket !== null) return;
  const url = new URL("/ws", window.location.href);
  url.protocol = window.location.protocol === "https:" ? "wss:" : "ws:";
  if (token !== null) url.searchParams.set("access_token", token);
  // Remediation events are opt-in: proposals and escalations reach only a client that names the group.
  url.searchParams.set("events", "remediation");
  // After a reconnection, resume where the stream left off: the server replays exactly the missed events, or says
  // `stream.reset` and sends the join snapshot when it cannot (too old, or a restarted server).
  const since = model.lastSeq;
  if (since !== null) url.searchParams.set("since", String(since));
  const ws = new WebSocket(url);
  socket = ws;
  let first = true;
  const goLive = (): void => {
    first = false;
    failures = 0;
    model.connection = "live";
    schedulePoll(0);
  };
  if (since !== null) {
    // A resumed stream with nothing missed sends nothing until the next event: it is live once open.
    ws.addEventListener("open", () => {
      if (socket !== ws || !first) return;
      goLive();
      update();
    });
  }
  ws.addEventListener("message", (event: MessageEvent) => {
    if (socket !== ws || typeof event.data !== "string") return;
    let envelope: WsEnvelope;
    try {
      envelope = JSON.parse(event.data) as WsEnvelope;
    } catch {
      return;
    }
    if (envelope.type === "stream.reset" || (first && since === null)) {
      // The join snapshot (current status, open incident, current run) replaces what the page knew; a resumed
      // stream needs none, unless the server says it could not resume.
      startSnapshot(model);
    }
    if (first) goLive();
    const before = worstStatus(model)?.status ?? null;
    applyEnvelope(model, envelope, Date.now());
    if (noticeOutlived(before, worstStatus(model)?.status ?? null)) byId("notice").textContent = "";
    // A count of applied messages, for tests that must know the page has seen a given frame.
    messagesApplied += 1;
    document.body.dataset["messages"] = String(messagesApplied);
    update();
  });
  ws.addEventListener("close", () => {
    if (socket !== ws) return;
    socket = null;
    connectionLost();
  });
}

function connectionLost(): void {
  failures += 1;
  model.connection = failures >= UNREACHABLE_AFTER ? "unreachable" : "reconnecting";
  update();
  window.clearTimeout(retryTimer);
  retryTimer = window.setTimeout(() => void connect(), Math.min(5000, 250 * 2 ** failures));
}

function schedulePoll(delay: number): void {
  window.clearTimeout(pollTimer);
  pollTimer = window.setTimeout(() => void poll(), delay);
}

async function poll(): Promise<void> {
  if (socket === null || model.connection !== "live") return;
  try {
    applyServices(model, await api<ServiceState[]>("GET", "/api/services", undefined, 5000));
    if (polls % HISTORY_EVERY === 0) await refreshHistory();
    await refreshRemediations();
    polls += 1;
    update();
  } catch (error) {
    if (error instanceof ApiFailure && error.status === 0 && socket !== null) {
      // The backend stopped answering while its socket looks open: treat the stream as gone.
      const ws = socket;
      socket = null;
      ws.close();
      connectionLost();
      return;
    }
  }
  schedulePoll(POLL_MS);
}

/** Reads the proposals and the kill switch; a server without remediation (404) keeps the page as it was. */
async function refreshRemediations(): Promise<void> {
  try {
    applyRemediations(model, await api<RemediationList>("GET", "/api/remediations", undefined, 5000));
  } catch (error) {
    if (!(error instanceof ApiFailure) || error.status === 0) throw error;
  }
}

/** Reads the runtime incidents and the CI incidents; a server without either keeps the rows it had. */
async function refreshHistory(): Promise<void> {
  const [incidents, ci] = await Promise.allSettled([
    api<IncidentPage>("GET", "/api/incidents?limit=20", undefined, 5000),
    api<CiIncidentList>("GET", "/api/ci/incidents?limit=20", undefined, 5000),
  ]);
  if (incidents.status === "rejected" && ci.status === "rejected") throw incidents.reason;
  model.history = historyRows(
    incidents.status === "fulfilled" ? incidents.value.incidents : [],
    ci.status === "fulfilled" ? ci.value.incidents : [],
  );
}

/** Shows the token field and resolves once a token was entered. */
function tokenEntered(message: string): Promise<void> {
  const panel = byId("auth");
  panel.hidden = false;
  byId("auth-message").textContent = message;
  if (socket === null) model.connection = "unauthorized";
  update();
  (byId("token") as HTMLInputElement).focus();
  return new Promise((resolve) => tokenWaiters.push(resolve));
}

// --- controls ---------------------------------------------------------------------------------------------------

async function control(label: string, run: () => Promise<string>, button: HTMLButtonElement): Promise<void> {
  button.disabled = true;
  button.dataset["busy"] = "true";
  notify(`${label}…`);
  try {
    notify(await run());
  } catch (error) {
    fail(error);
  } finally {
    button.dataset["busy"] = "false";
    button.disabled = false;
    update();
  }
}

function wire(): void {
  const bind = (id: string, label: string, run: () => Promise<string>): void => {
    const button = byId(id) as HTMLButtonElement;
    button.addEventListener("click", () => void control(label, run, button));
  };
  bind("break", "Breaking checkout", async () => {
    const body: SetBugRequest = { enabled: true };
    await api("POST", "/api/demo/bug", body);
    return "Checkout is broken: every POST /checkout now fails. Watch the incident open.";
  });
  bind("fix", "Fixing checkout", async () => {
    const body: SetBugRequest = { enabled: false };
    await api("POST", "/api/demo/bug", body);
    return "Checkout is fixed: FixLoop reruns the plan and waits for healthy signals.";
  });
  bind("simulate-on", "Simulating an incident", async () => {
    const body: SimulateRequest = { mode: "INCIDENT_ON" };
    await api("POST", "/api/incidents/simulate", body);
    return "A simulated incident was requested.";
  });
  bind("simulate-off", "Closing the simulated incident", async () => {
    const body: SimulateRequest = { mode: "INCIDENT_OFF" };
    await api("POST", "/api/incidents/simulate", body);
    return "The simulated incident was closed.";
  });
  bind("run-validation", "Starting a validation run", async () => {
    const incident = shownIncident(model);
    if (incident === null) return "No incident is open.";
    const body: RunTestsRequest = { incident_id: incident.incident_id };
    const run = await api<TestRun>("POST", "/api/tests/run", body);
    addRunIfUnknown(model, run);
    model.selectedRun = null;
    return `Run ${run.run_id} started.`;
  });

  const killSwitch = byId("kill-switch") as HTMLButtonElement;
  killSwitch.addEventListener("click", () => {
    const engaged = killSwitch.dataset["engage"] === "true";
    void control(engaged ? "Engaging the kill switch" : "Releasing the kill switch", async () => {
      const body: KillSwitchRequest = { engaged };
      model.killSwitch = await api<KillSwitchState>("POST", "/api/remediation/kill-switch", body);
      return engaged ? "Kill switch engaged: every action stopped." : "Kill switch released.";
    }, killSwitch);
  });

  byId("proposals").addEventListener("click", (event) => {
    const button = (event.target as Element).closest<HTMLButtonElement>("button[data-decision]");
    if (button === null) return;
    const decision = button.dataset["decision"] === "approve" ? "approve" : "reject";
    const id = button.dataset["proposalId"] ?? "";
    // The version the operator saw: a proposal that changed since is refused (409 version_conflict), never decided blind.
    const body: RemediationDecisionRequest = { version: Number(button.dataset["version"]) };
    void control(decision === "approve" ? "Approving" : "Rejecting", async () => {
      const proposal = await api<RemediationProposal>(
        "POST",
        `/api/remediations/${encodeURIComponent(id)}/${decision}`,
        body,
      );
      applyProposal(model, proposal);
      return `${proposal.action_id}: ${decision === "approve" ? "approved" : "rejected"} (now ${proposal.state}).`;
    }, button);
  });

  byId("runs").addEventListener("click", (event) => {
    const button = (event.target as Element).closest<HTMLElement>("[data-run-id]");
    if (button === null) return;
    const runId = button.dataset["runId"] ?? null;
    const runs = [...model.runs.values()];
    // Choosing the latest run means following it as new runs start.
    const latest = runs.sort((a, b) => a.started_at.localeCompare(b.started_at)).at(-1);
    model.selectedRun = runId === latest?.run_id ? null : runId;
    update();
  });

  const form = byId("ask") as HTMLFormElement;
  const question = byId("question") as HTMLTextAreaElement;
  const ask = byId("ask-button") as HTMLButtonElement;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = question.value.trim();
    if (text === "") return;
    const incident = shownIncident(model);
    const body: CopilotAskRequest = { incident_id: incident?.incident_id ?? null, question: text };
    ask.disabled = true;
    ask.dataset["busy"] = "true";
    notify("Asking the copilot…");
    api<CopilotAnswer>("POST", "/api/copilot/ask", body, COPILOT_TIMEOUT_MS)
      .then((answer) => {
        addAnswer(model, answer);
        question.value = "";
        notify("The copilot answered.");
        update();
      })
      .catch(fail)
      .finally(() => {
        ask.dataset["busy"] = "false";
        ask.disabled = false;
        update();
      });
  });
  question.addEventListener("keydown", (event) => {
    // Enter asks, Shift+Enter starts a new line.
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  const authForm = byId("auth-form") as HTMLFormElement;
  authForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const input = byId("token") as HTMLInputElement;
    const value = input.value.trim();
    if (value === "") return;
    token = value;
    sessionStorage.setItem(TOKEN_KEY, value);
    input.value = "";
    byId("auth").hidden = true;
    failures = 0;
    if (model.connection === "unauthorized") model.connection = "connecting";
    update();
    // The waiting requests retry with the new token (the first of them is the connection's own, when it waits).
    for (const resolve of tokenWaiters.splice(0)) resolve();
    if (socket !== null) {
      // Reconnect the stream with the new token too.
      const ws = socket;
      socket = null;
      ws.close();
      void connect();
    }
  });
  byId("forget-token").addEventListener("click", () => {
    token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    notify("The token was forgotten for this tab.");
  });
}

wire();
update();
void connect();
