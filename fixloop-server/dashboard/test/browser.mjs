// The dashboard's browser test: Debian's chromium, driven by playwright-core, against real `fixloop demo`
// processes on loopback. Nothing is downloaded: the browser is /usr/bin/chromium.
//
//   node test/browser.mjs --bin target/release/fixloop [--screenshots target/dashboard-screenshots]
//
// The ports are free loopback ports chosen at start (the machine may run other servers).
//
// Scenario A (1280×800, then 390×844): HEALTHY; break checkout → the incident, its plan of five and failing tests;
// a page opened late shows the same at once; ask the copilot (the answer is shown once, with its citations as
// links); fix → RECOVERED, with the incident still shown. Scenario B, against a demo that demands an API token
// (its real auth, `FIXLOOP_API_TOKENS`: `Authorization: Bearer` on REST, `?access_token=` on /ws, behind a proxy that
// can cut its WebSockets): the token field, then an alert
// whose title carries `<script>` is shown as text, the stream is cut and the page reconnects to the same state,
// then the backend is stopped and the page says "backend unreachable", never a stale status. Scenario A also
// waits for the incident to close after its soak window: no stale incident, plan or results remain. Scenario C:
// `fixloop verify` against demo A's shop writes its HTML report, which the browser opens from the file alone (any
// other request fails the test: the report is self-contained) and screenshots. Scenario D: `fixloop demo --remediate
// --environment production`, where even the flag step is risky: break checkout, the proposal waits with Approve and
// Reject, the operator approves it in the page, the action runs and the incident is RECOVERED without the bug switch;
// then the kill switch is engaged and released from the page. Every panel's rendered text is asserted; each step is saved as a
// screenshot; any console error, page error, failed request or unexpected HTTP error fails the test.

import { spawn } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { chromium } from "playwright-core";

const args = parseArgs(process.argv.slice(2));
const bin = resolve(args.bin ?? "target/release/fixloop");
const shots = resolve(args.screenshots ?? "target/dashboard-screenshots");
const TOKEN = "browser-test-token-0123456789";
const WEBHOOK_SECRET = "browser-test-webhook-secret-0123";
const STEP_MS = 30_000;
const XSS_TITLE = `<script>window.__fixloopXss = 1</script><img src=x onerror="window.__fixloopXss = 2"> checkout alert`;

mkdirSync(shots, { recursive: true });
const children = [];
const problems = [];
let browser;
let stub;

try {
  const ports = await freePorts(6);
  const [demoA, demoB, demoD] = await Promise.all([
    startDemo(ports[0], ports[1], {}),
    startDemo(ports[2], ports[3], { FIXLOOP_WEBHOOK_SECRET: WEBHOOK_SECRET, FIXLOOP_API_TOKENS: `browser:operate:${TOKEN}` }),
    startDemo(ports[4], ports[5], {}, ["--remediate", "--environment", "production"]),
  ]);
  stub = await startProxy(ports[2]);
  browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    chromiumSandbox: false,
    timeout: STEP_MS,
    args: [
      "--no-sandbox",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-default-apps",
      "--disable-sync",
      "--no-first-run",
      "--disable-features=Translate,OptimizationHints,MediaRouter",
    ],
  });
  await scenarioA(demoA);
  await scenarioB(demoB, `http://127.0.0.1:${stub.address().port}`);
  await scenarioC(`http://127.0.0.1:${ports[1]}`);
  await scenarioD(demoD, `http://127.0.0.1:${ports[5]}`);
} catch (error) {
  problems.push(`test failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}`);
} finally {
  await browser?.close().catch(() => {});
  stub?.close();
  for (const child of children) child.kill("SIGTERM");
}

if (problems.length > 0) {
  console.error(`dashboard browser test FAILED (screenshots in ${shots}):`);
  for (const problem of problems) console.error(`  - ${problem}`);
  process.exit(1);
}
console.log(`dashboard browser test passed; screenshots in ${shots}`);
process.exit(0);

// --- scenarios --------------------------------------------------------------------------------------------------

async function scenarioA(demo) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  context.setDefaultTimeout(STEP_MS);
  const page = await watchedPage(context, "A");
  step("A1 healthy");
  await page.goto(demo.url);
  await expectText(page, "#connection", "live");
  await expectText(page, "#status", "HEALTHY");
  await expectText(page, "#incident-body", "No open incident.");
  await expectText(page, "#blocker", "No open incident.");
  await expectText(page, "#plan-note", "No plan: no incident is open.");
  await expectText(page, "#run", "No run: no incident is open.");
  await expectMatch(page, "#error-rate", /^\d+\.\d%$/);
  await expectMatch(page, "#p95", /^\d+ ms$/);
  await shot(page, "01-healthy");

  step("A2 break: incident and plan of five");
  await page.getByRole("button", { name: "Break checkout" }).click();
  await expectText(page, "#notice", "Checkout is broken");
  await expectMatch(page, "#status", /^(INCIDENT_ACTIVE|VALIDATING)$/);
  await expectMatch(page, "#incident-title", /error rate \d+\.\d% over the window/);
  await expectText(page, "#incident-body", "Top error");
  await expectText(page, "#incident-body", "POST /checkout");
  await page.waitForFunction(() => document.querySelectorAll("#plan > li").length === 5);
  const items = await page.locator("#plan > li summary").allInnerTexts();
  for (let priority = 1; priority <= 5; priority += 1) {
    if (!items.some((text) => text.startsWith(`P${priority}`))) throw new Error(`no plan item of priority ${priority}: ${items}`);
  }
  if (!items.every((text) => /\b(API|UI|SYNTHETIC)\b/.test(text))) throw new Error(`a plan item without a type: ${items}`);
  // Target and pass criteria are shown on demand, by keyboard too.
  const first = page.locator("#plan > li summary").first();
  await first.focus();
  await page.keyboard.press("Enter");
  await expectText(page, "#plan > li:first-child details[open]", "Pass criteria");
  await expectText(page, "#plan > li:first-child details[open]", "http://127.0.0.1:");
  await shot(page, "02-incident-and-plan");

  step("A3 failing tests, run history, blocker");
  await page.waitForFunction(() =>
    [...document.querySelectorAll("#tests .test-status")].some((cell) => cell.textContent === "FAIL"));
  await expectMatch(page, "#runs", /FAILED .*: \d of 5 passed, started .*took \d+\.\d s/);
  await expectText(page, "#tests", "status");
  await expectMatch(page, "#blocker", /(failed|in progress|not validated)/);
  await shot(page, "03-failing-tests");
  // The first screen as a visitor sees it at 1280×800 (the README's picture is made from it).
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: join(shots, "03-failing-tests-1280x800.png") });

  step("A4 a page opened late is correct at once");
  const late = await watchedPage(context, "A-late");
  await late.goto(demo.url);
  await expectText(late, "#connection", "live");
  await expectText(late, "#incident-title", await page.locator("#incident-title").innerText());
  await late.waitForFunction(() => document.querySelectorAll("#plan > li").length === 5);
  await late.waitForFunction(() => document.querySelectorAll("#tests tr").length === 5);
  await late.close();

  step("A5 copilot: the answer once, citations as links");
  const broadcast = frameOfType(page, "copilot.answer");
  const reply = page.waitForResponse((response) => response.url().endsWith("/api/copilot/ask"));
  await page.getByLabel("Ask about the incident").fill("What is failing?");
  await page.keyboard.press("Enter");
  await reply;
  await broadcast;
  // Wait until the page has applied both copies: the REST reply (its notice) and every frame received so far.
  const frames = page.frameTypes.length;
  await expectText(page, "#notice", "The copilot answered.");
  await page.waitForFunction((count) => Number(document.body.dataset.messages ?? 0) >= count, frames);
  await page.evaluate(() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done))));
  const answers = await page.locator("#answers .answer").count();
  if (answers !== 1) throw new Error(`the copilot answer is shown ${answers} times`);
  await expectText(page, "#answers .question", "What is failing?");
  await expectMatch(page, "#answers .reply", /\S{3,}/);
  const citations = await page.locator("#answers .citations a").evaluateAll((links) => links.map((link) => link.href));
  if (citations.length === 0 || !citations.every((href) => /^https?:\/\//.test(href))) {
    throw new Error(`citations are not links: ${citations}`);
  }
  await shot(page, "04-copilot");

  step("A6 fix: RECOVERED, the incident kept");
  const title = await page.locator("#incident-title").innerText();
  await page.getByRole("button", { name: "Fix checkout" }).click();
  await expectText(page, "#notice", "Checkout is fixed");
  await expectText(page, "#incident-title", title);
  await expectText(page, "#status", "RECOVERED", 60_000);
  await expectText(page, "#incident-title", title);
  await expectText(page, "#blocker", "RECOVERED: every test passed and the signals are healthy.");
  // The fix's notice ("…waits for healthy signals") is outlived by RECOVERED: it is gone, not contradicting it.
  const notice = await page.locator("#notice").innerText();
  if (notice.includes("Checkout is fixed")) throw new Error(`a stale notice at RECOVERED: ${notice}`);
  // The status bar stays in view when the page is scrolled to the bottom.
  await page.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
  const barTop = await page.locator("header.statusbar").evaluate((bar) => bar.getBoundingClientRect().top);
  if (Math.abs(barTop) > 1) throw new Error(`the status bar scrolled away: its top is at ${barTop} px`);
  await page.evaluate(() => window.scrollTo(0, 0));
  await expectMatch(page, "#run", /^COMPLETED /);
  const verdicts = await page.locator("#tests .test-status").allInnerTexts();
  if (verdicts.length !== 5 || !verdicts.every((verdict) => verdict === "PASS")) throw new Error(`latest run: ${verdicts}`);
  const history = await page.locator("#runs li").count();
  if (history < 2) throw new Error(`run history has ${history} runs, expected the failed one and the passing one`);
  await shot(page, "05-recovered");

  step("A7 phone width");
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  phone.setDefaultTimeout(STEP_MS);
  const small = await watchedPage(phone, "A-phone");
  await small.goto(demo.url);
  await expectText(small, "#connection", "live");
  await expectMatch(small, "#status", /^(RECOVERED|HEALTHY)$/);
  const width = await small.evaluate(() => document.documentElement.scrollWidth);
  if (width > 390) throw new Error(`the page scrolls sideways at 390 px: ${width} px wide`);
  await shot(small, "07-phone");
  await phone.close();

  step("A8 the incident closes after the soak window: no stale incident, plan or results");
  await expectText(page, "#status", "HEALTHY", 60_000);
  await expectText(page, "#incident-body", "No open incident.");
  await expectText(page, "#plan-note", "No plan: no incident is open.");
  await expectText(page, "#run", "No run: no incident is open.");
  await expectText(page, "#blocker", "No open incident.");
  const leftovers = await page.evaluate(() => document.querySelectorAll("#plan > li, #tests tr, #runs li").length);
  if (leftovers !== 0) throw new Error(`${leftovers} plan items, test rows or runs of the closed incident are still shown`);
  await shot(page, "06-closed");
  await context.close();
}

async function scenarioB(demo, stubUrl) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  context.setDefaultTimeout(STEP_MS);
  let tokenEntered = false;
  let stopped = false;
  // Before the token, the server's 401s (and Chromium's console line about them) are the point; after the backend
  // is stopped, failed requests are.
  const page = await watchedPage(context, "B", {
    expected: (kind, text) =>
      (!tokenEntered && (kind === "401" || (kind === "console" && text.includes("401")))) ||
      (stopped && (kind === "requestfailed" || kind === "console" || kind === "5xx")),
  });
  step("B1 the token field");
  await page.goto(stubUrl);
  await expectText(page, "#connection", "token required");
  await page.locator("#auth").waitFor({ state: "visible" });
  await expectText(page, "#auth-message", "The API needs a token.");
  await shot(page, "08-token");
  await page.getByLabel("Token (kept for this tab only)").fill(TOKEN);
  tokenEntered = true;
  await page.keyboard.press("Enter");
  await expectText(page, "#connection", "live");
  await expectText(page, "#status", "HEALTHY");
  const kept = await page.evaluate(() => sessionStorage.getItem("fixloop.api-token"));
  if (kept === null) throw new Error("the token is not kept in sessionStorage");

  step("B2 an incident title with <script> is shown as text");
  const response = await fetch(`${demo.url}/internal/alertmanager/webhook`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${WEBHOOK_SECRET}` },
    body: JSON.stringify(alertmanagerPayload(XSS_TITLE)),
    signal: AbortSignal.timeout(5000),
  });
  if (response.status !== 202) throw new Error(`webhook answered ${response.status}: ${await response.text()}`);
  await expectText(page, "#incident-title", XSS_TITLE);
  const injected = await page.evaluate(() => ({
    flag: window.__fixloopXss ?? null,
    elements: document.querySelectorAll("#incident-body script, #incident-body img, #incident-body [onerror]").length,
  }));
  if (injected.flag !== null || injected.elements !== 0) throw new Error(`server text became markup: ${JSON.stringify(injected)}`);
  await shot(page, "09-title-as-text");

  step("B3 the stream drops: reconnecting, then resumed where it left off (since), correct at once");
  const title = await page.locator("#incident-title").innerText();
  const socketsBefore = page.socketUrls.length;
  stub.dropSockets();
  await expectText(page, "#connection", "reconnecting");
  await expectText(page, "#connection", "live");
  const resumedWith = page.socketUrls.slice(socketsBefore).map((url) => new URL(url).searchParams.get("since"));
  if (resumedWith.length === 0 || !resumedWith.every((since) => since !== null && /^[0-9]+$/.test(since))) {
    throw new Error(`the page reconnected without resuming: ${JSON.stringify(page.socketUrls.slice(socketsBefore))}`);
  }
  await expectText(page, "#incident-title", title);
  await page.waitForFunction(() => document.querySelectorAll("#plan > li").length === 5);
  await expectMatch(page, "#status", /^(INCIDENT_ACTIVE|VALIDATING|RECOVERED)$/);
  await shot(page, "10-reconnected");

  step("B4 backend stopped: unreachable, never a stale status");
  stopped = true;
  demo.child.kill("SIGTERM");
  await expectText(page, "#connection", "backend unreachable");
  await expectText(page, "#status", "UNKNOWN");
  await expectText(page, "#blocker", "Unknown while the backend is not live.");
  await shot(page, "11-unreachable");
  await context.close();
}

async function scenarioD(demo, shopUrl) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  context.setDefaultTimeout(STEP_MS);
  const page = await watchedPage(context, "D");
  step("D1 remediating demo in production: the kill switch is released, nothing proposed");
  await page.goto(demo.url);
  await expectText(page, "#connection", "live");
  await expectText(page, "#kill-switch-state", "Kill switch released");
  await expectText(page, "#proposals", "No open incident.");
  const socket = page.socketUrls.at(-1) ?? "";
  if (new URL(socket).searchParams.get("events") !== "remediation") throw new Error(`the page did not ask for remediation events: ${socket}`);

  step("D2 break: the risky flag step waits for an approval");
  await page.getByRole("button", { name: "Break checkout" }).click();
  await page.locator('[data-testid="proposal"][data-state="AWAITING_APPROVAL"]').waitFor({ timeout: 60_000 });
  await expectText(page, '[data-testid="proposal"]', "payment-provider-off (risky, auto): AWAITING_APPROVAL");
  await shot(page, "12-awaiting-approval");
  const before = await (await fetch(`${shopUrl}/admin/flags`, { signal: AbortSignal.timeout(5000) })).json();
  if (before.flags[0].enabled !== true) throw new Error(`the flag changed before any approval: ${JSON.stringify(before)}`);

  step("D3 approve in the page: the action runs, RECOVERED without the bug switch");
  await page.locator('[data-testid="approve"]').first().click();
  await expectText(page, "#status", "RECOVERED", 90_000);
  await expectMatch(page, '[data-testid="proposal"]', /decided by 127\.0\.0\.1/);
  const after = await (await fetch(`${shopUrl}/admin/flags`, { signal: AbortSignal.timeout(5000) })).json();
  if (after.flags[0].enabled !== false) throw new Error(`the approved action did not run: ${JSON.stringify(after)}`);
  const bug = await (await fetch(`${shopUrl}/admin/bug`, { signal: AbortSignal.timeout(5000) })).json();
  if (bug.enabled !== true) throw new Error(`the bug switch was touched: ${JSON.stringify(bug)}`);
  await shot(page, "13-approved-recovered");

  step("D4 the kill switch, engaged and released from the page");
  await page.getByRole("button", { name: "Engage the kill switch" }).click();
  await expectText(page, "#kill-switch-state", "Kill switch ENGAGED");
  await shot(page, "14-kill-switch");
  await page.getByRole("button", { name: "Release the kill switch" }).click();
  await expectText(page, "#kill-switch-state", "Kill switch released");
  await context.close();
}

// --- helpers ----------------------------------------------------------------------------------------------------

async function scenarioC(shopUrl) {
  step("C1 fixloop verify against the healthy shop: exit 0 and a self-contained HTML report");
  const html = join(shots, "verify-report.html");
  const json = join(shots, "verify-report.json");
  // The default hold (the gate's shortest: 12 s with the default thresholds); the demo's traffic feeds the signals.
  const code = await runToEnd(["verify", "--profile", "demo", "--base-url", shopUrl, "--html", html, "--json", json]);
  const report = JSON.parse(readFileSync(json, "utf8"));
  if (code !== 0 || report.exit_code !== 0) throw new Error(`fixloop verify exited ${code}: ${report.summary}`);
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  context.setDefaultTimeout(STEP_MS);
  // The file itself is the only request the report may make.
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith("file:")) return route.continue();
    problems.push(`[C] the HTML report requested ${url}`);
    return route.abort();
  });
  const page = await watchedPage(context, "C");
  await page.goto(pathToFileURL(html).href);
  await expectText(page, "h1", "fixloop verify: demo-checkout");
  await expectText(page, ".banner.ok", "exit 0 · verified");
  const rows = await page.evaluate(() => document.querySelectorAll("table")[1].querySelectorAll("tr").length);
  if (rows !== 6) throw new Error(`the tests table has ${rows} rows, expected a header and 5 tests`);
  await shot(page, "07-verify-report");
  await context.close();
}

/** Runs the fixloop binary with `args` to its end (bounded by 60 s) and returns its exit code. */
function runToEnd(args) {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(bin, args, { env: { ...process.env, RUST_LOG: "warn" }, stdio: ["ignore", "ignore", "inherit"] });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`fixloop ${args[0]} did not end within 60 s`));
    }, 60_000);
    child.on("error", reject);
    child.on("exit", (code) => {
      clearTimeout(timer);
      resolvePromise(code);
    });
  });
}

function step(name) {
  console.log(`step ${name}`);
}

/** A page whose console errors, page errors, failed requests and HTTP errors are problems (unless `expected`). */
async function watchedPage(context, label, { expected = () => false } = {}) {
  const page = await context.newPage();
  // The types of the WebSocket frames the page received (Playwright sees sockets opened after this listener).
  page.frameTypes = [];
  page.socketUrls = [];
  page.on("websocket", (socket) => {
    page.socketUrls.push(socket.url());
    socket.on("framereceived", (frame) => {
      try {
        page.frameTypes.push(JSON.parse(String(frame.payload)).type);
      } catch {
        page.frameTypes.push("unparsable");
      }
    });
  });
  const report = (kind, text) => {
    if (!expected(kind, text)) problems.push(`[${label}] ${kind}: ${text}`);
  };
  page.on("console", (message) => {
    if (message.type() === "error") report("console", message.text());
  });
  page.on("pageerror", (error) => report("pageerror", error.message));
  page.on("requestfailed", (request) => report("requestfailed", `${request.method()} ${request.url()}: ${request.failure()?.errorText}`));
  page.on("response", (response) => {
    const status = response.status();
    if (status === 401) report("401", `${response.request().method()} ${response.url()}`);
    else if (status >= 500) report("5xx", `${response.request().method()} ${response.url()} ${status}`);
    else if (status >= 400) report("4xx", `${response.request().method()} ${response.url()} ${status}`);
  });
  return page;
}

/** Resolves when one of the page's WebSockets has received a frame of this `type` (bounded by the step timeout). */
function frameOfType(page, type) {
  return new Promise((resolvePromise, reject) => {
    const started = Date.now();
    const check = setInterval(() => {
      if (page.frameTypes.includes(type)) {
        clearInterval(check);
        resolvePromise();
      } else if (Date.now() - started > STEP_MS) {
        clearInterval(check);
        reject(new Error(`no ${type} frame within ${STEP_MS} ms`));
      }
    }, 20);
  });
}

async function expectText(page, selector, text, timeout = STEP_MS) {
  try {
    await page.waitForFunction(
      ([selector, text]) => [...document.querySelectorAll(selector)].some((element) => element.textContent?.includes(text)),
      [selector, text],
      { timeout },
    );
  } catch {
    const actual = await page.locator(selector).allTextContents().catch(() => []);
    throw new Error(`${selector} never showed ${JSON.stringify(text)}; it shows ${JSON.stringify(actual)}`);
  }
}

async function expectMatch(page, selector, pattern, timeout = STEP_MS) {
  try {
    await page.waitForFunction(
      ([selector, source, flags]) => {
        const regex = new RegExp(source, flags);
        return [...document.querySelectorAll(selector)].some((element) => regex.test(element.textContent ?? ""));
      },
      [selector, pattern.source, pattern.flags],
      { timeout },
    );
  } catch {
    const actual = await page.locator(selector).allTextContents().catch(() => []);
    throw new Error(`${selector} never matched ${pattern}; it shows ${JSON.stringify(actual)}`);
  }
}

async function shot(page, name) {
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
}

/** Starts `fixloop demo` on loopback and waits (bounded) for its /healthz. */
async function startDemo(port, demoPort, env, extra = []) {
  // --ephemeral: each demo starts HEALTHY with a journal of its own in memory (two run at once, and neither may
  // restore an earlier run's incident from a data directory).
  const child = spawn(bin, ["demo", "--ephemeral", "--bind", "127.0.0.1", "--port", String(port), "--demo-port", String(demoPort), ...extra], {
    env: { ...process.env, RUST_LOG: "warn", ...env },
    stdio: ["ignore", "ignore", "inherit"],
  });
  children.push(child);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`fixloop demo on ${port} exited with ${child.exitCode}`);
    try {
      const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) });
      if (response.ok) return { url, child };
    } catch {
      // Not listening yet.
    }
    await new Promise((done) => setTimeout(done, 200));
  }
  throw new Error(`fixloop demo on ${port} did not answer /healthz within 30 s`);
}

/**
 * A pass-through proxy in front of demo B, which checks the token itself (`FIXLOOP_API_TOKENS`, the server's real
 * auth: `Authorization: Bearer` on `/api/*`, `?access_token=` on `/ws`); the proxy is there only to cut the page's
 * WebSockets as a network blip would. Requests and answers, 401s included, pass unchanged.
 */
function startProxy(backendPort) {
  const upgraded = new Set();
  const server = http.createServer((request, response) => {
    const upstream = http.request(
      { host: "127.0.0.1", port: backendPort, method: request.method, path: request.url, headers: request.headers, timeout: 10_000 },
      (answer) => {
        response.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(response);
      },
    );
    upstream.on("error", () => {
      response.writeHead(502, { "content-type": "application/json" });
      response.end(JSON.stringify({ code: "upstream_error", message: "backend unreachable", details: [] }));
    });
    request.pipe(upstream);
  });
  server.on("upgrade", (request, socket, head) => {
    upgraded.add(socket);
    socket.on("close", () => upgraded.delete(socket));
    const upstream = net.connect(backendPort, "127.0.0.1", () => {
      const headers = Object.entries(request.headers).map(([name, value]) => `${name}: ${value}`).join("\r\n");
      upstream.write(`${request.method} ${request.url} HTTP/1.1\r\n${headers}\r\n\r\n`);
      upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    upstream.on("error", () => socket.destroy());
    socket.on("error", () => upstream.destroy());
  });
  // Cuts every proxied WebSocket, as a network blip would.
  server.dropSockets = () => {
    for (const socket of upgraded) socket.destroy();
  };
  return new Promise((done) => server.listen(0, "127.0.0.1", () => done(server)));
}

/** `count` distinct free loopback ports (held open together while choosing, so they differ). */
async function freePorts(count) {
  const servers = await Promise.all(
    Array.from({ length: count }, () => new Promise((done) => {
      const server = net.createServer();
      server.listen(0, "127.0.0.1", () => done(server));
    })),
  );
  const ports = servers.map((server) => server.address().port);
  await Promise.all(servers.map((server) => new Promise((done) => server.close(done))));
  return ports;
}

function alertmanagerPayload(summary) {
  return {
    version: "4",
    groupKey: "{}:{alertname=\"CheckoutErrors\"}",
    status: "firing",
    receiver: "fixloop",
    groupLabels: { alertname: "CheckoutErrors" },
    commonLabels: { alertname: "CheckoutErrors", service: "demo-checkout" },
    commonAnnotations: { summary },
    externalURL: "http://alertmanager.invalid",
    alerts: [
      {
        status: "firing",
        labels: { alertname: "CheckoutErrors", service: "demo-checkout" },
        annotations: { summary },
        startsAt: new Date().toISOString(),
        endsAt: "0001-01-01T00:00:00Z",
        generatorURL: "http://prometheus.invalid/graph",
        fingerprint: "browser-test-xss",
      },
    ],
  };
}

function parseArgs(list) {
  const parsed = {};
  for (let index = 0; index < list.length; index += 2) parsed[list[index].replace(/^--/, "")] = list[index + 1];
  return parsed;
}
