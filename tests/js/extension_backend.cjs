// The extension's backend settings and sending, driven by
// tests/tests/extension_backend.rs. Environment (besides harness.cjs's):
//   PRICEWATCH_FAKE_PORT       the fake Amazon's HTTPS port
//   PRICEWATCH_BACKEND_URL     the backend the extension copy was built for
//   PRICEWATCH_SCENARIO        "switch" | "kill"
//   PRICEWATCH_SECOND_BACKEND  "switch": the backend to move to
// Prints {"result": {...}, "errors": [...]} (see harness.cjs).
//
// switch: consent, one report to the built-in backend, then the options
//   page changes the backend URL (typed, saved with a real click: the
//   host-permission request needs the click's user gesture) and the next
//   report must go to the new backend.
//   Judgement call on the permission prompt: Chromium's extension
//   permission dialog is a browser-UI dialog that headless Chromium cannot
//   show and Playwright cannot answer (measured: saving
//   http://localhost:PORT, an origin not yet allowed, leaves
//   chrome.permissions.request pending; no answer within 8 s). So the
//   second backend is another
//   `pricewatch serve` on 127.0.0.1 (another port): its origin is already
//   covered by the manifest's host permission (`http://127.0.0.1/*`,
//   Chrome's match patterns ignore the port), and
//   chrome.permissions.request resolves to true without a dialog, but it
//   still demands the gesture, so the real options-page code path runs.
//
// kill: the extension is pointed (through the options page) at a proxy in
//   this script in front of the backend. The proxy holds the first
//   POST /v1/reports; while it is held the service worker is stopped
//   (DevTools protocol ServiceWorker.stopAllWorkers, what
//   chrome://serviceworker-internals' Stop does); then the held request
//   goes on to the backend (which stores the report; the answer has no one
//   to reach); then the worker is woken (the options page asks its status)
//   and must send the still-queued report again, which the backend
//   recognises as a duplicate (same key and nonce) and the queue empties.
//   The Rust side checks that the backend holds it exactly once.

"use strict";

const http = require("http");
const { run, waitFor } = require("./harness.cjs");

const port = process.env.PRICEWATCH_FAKE_PORT;
const backend = process.env.PRICEWATCH_BACKEND_URL;
const scenario = process.env.PRICEWATCH_SCENARIO;

const rules = ["amazon.com"]
  .flatMap((d) => [`MAP www.${d} 127.0.0.1:${port}`, `MAP ${d} 127.0.0.1:${port}`])
  .concat(["MAP * ~NOTFOUND", "EXCLUDE 127.0.0.1", "EXCLUDE localhost"])
  .join(", ");

/// The service worker's log of sent reports (chrome.storage.session, kept
/// across worker restarts). Read from an extension page so that reading
/// it neither needs nor wakes the worker.
async function sentLog(extPage) {
  const stored = await extPage.evaluate(() => chrome.storage.session.get("pricewatch_sent"));
  return stored.pricewatch_sent || [];
}

/// Reports waiting in the worker's IndexedDB queue, read from an
/// extension page (same origin, same database).
async function queued(extPage) {
  return extPage.evaluate(
    () =>
      new Promise((resolve, reject) => {
        const open = indexedDB.open("pricewatch");
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const db = open.result;
          if (!db.objectStoreNames.contains("queue")) {
            db.close();
            return resolve(0);
          }
          const req = db.transaction("queue").objectStore("queue").count();
          req.onsuccess = () => {
            db.close();
            resolve(req.result);
          };
          req.onerror = () => reject(req.error);
        };
      }),
  );
}

async function giveConsent(context, extensionId) {
  const url = `chrome-extension://${extensionId}/onboarding.html`;
  const page = await waitFor("the onboarding tab", async () => context.pages().find((p) => p.url() === url), { timeoutMs: 10000 });
  await page.click('[data-testid="consent-accept"]');
  await waitFor("consent to be stored", () => page.evaluate(() => document.body.dataset.consent === "given"));
  return page;
}

async function visit(page, url) {
  process.stderr.write(`visit ${url}\n`);
  await page.goto(url, { waitUntil: "domcontentloaded" });
  return waitFor(
    `the content script on ${url}`,
    () =>
      page.evaluate(() => {
        const root = document.documentElement;
        if (!root.getAttribute("data-pricewatch-runs")) return null;
        return { path: root.getAttribute("data-pricewatch-path"), reported: root.getAttribute("data-pricewatch-reported") };
      }),
    { timeoutMs: 15000 },
  );
}

async function openOptions(context, extensionId) {
  const options = await context.newPage();
  await options.goto(`chrome-extension://${extensionId}/options.html`);
  await waitFor("the options page", () => options.evaluate(() => document.body.dataset.ready === "1"));
  return options;
}

/// Types `url` into the options page's backend field and saves it with a
/// click (the user gesture the permission request needs); returns the
/// page's note.
async function setBackend(options, url) {
  await options.fill('[data-testid="backend-url"]', url);
  await options.click('#backend-form button[type="submit"]');
  return waitFor("the backend setting's answer", () =>
    options.evaluate(() => {
      const note = document.getElementById("backend-note").textContent;
      return note && note !== "" ? note : null;
    }),
  );
}

function waitForSent(extPage, what, predicate, timeoutMs = 20000) {
  return waitFor(what, async () => (await sentLog(extPage)).find(predicate), { timeoutMs });
}

/// A pass-through HTTP proxy to `target` that holds the first
/// POST /v1/reports until release() is called.
function holdingProxy(target) {
  // passedAnswers: the backend's answers to the POST /v1/reports that
  // went straight through (every one after the held one).
  const state = { held: null, heldAnswer: null, reportPosts: 0, passedAnswers: [] };
  let onHeld;
  const heldPromise = new Promise((resolve) => {
    onHeld = resolve;
  });
  const forward = (req, body) =>
    new Promise((resolve, reject) => {
      const out = http.request(
        new URL(req.url, target),
        { method: req.method, headers: { ...req.headers, host: new URL(target).host } },
        (answer) => {
          const chunks = [];
          answer.on("data", (c) => chunks.push(c));
          answer.on("end", () => resolve({ status: answer.statusCode, headers: answer.headers, body: Buffer.concat(chunks) }));
        },
      );
      out.on("error", reject);
      out.end(body);
    });
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", async () => {
      const body = Buffer.concat(chunks);
      const isReports = req.method === "POST" && req.url.startsWith("/v1/reports");
      if (isReports) state.reportPosts += 1;
      if (isReports && !state.held) {
        state.held = { req, res, body, clientGone: false };
        res.on("close", () => {
          state.held.clientGone = true;
        });
        onHeld();
        return;
      }
      try {
        const answer = await forward(req, body);
        if (isReports) state.passedAnswers.push({ status: answer.status, body: JSON.parse(answer.body.toString() || "null") });
        res.writeHead(answer.status, answer.headers);
        res.end(answer.body);
      } catch (err) {
        res.writeHead(502);
        res.end(String(err));
      }
    });
  });
  return {
    state,
    held: heldPromise,
    listen: () => new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${server.address().port}`))),
    // Sends the held request on to the backend; returns the backend's
    // answer (and tries to pass it on to a client that is gone).
    async release() {
      const { req, res, body } = state.held;
      const answer = await forward(req, body);
      state.heldAnswer = { status: answer.status, body: JSON.parse(answer.body.toString() || "null"), clientGone: state.held.clientGone };
      if (!res.destroyed) {
        res.writeHead(answer.status, answer.headers);
        res.end(answer.body);
      }
      return state.heldAnswer;
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const scenarios = {
  async switch({ context, extensionId }) {
    const second = process.env.PRICEWATCH_SECOND_BACKEND;
    if (!second) throw new Error("PRICEWATCH_SECOND_BACKEND is not set");
    await giveConsent(context, extensionId);
    const options = await openOptions(context, extensionId);
    const page = await context.newPage();
    await visit(page, "https://www.amazon.com/dp/B0PWTEST01");
    await waitForSent(options, "the report of B0PWTEST01", (e) => e.report.obs.asin === "B0PWTEST01");
    const before = await options.evaluate(() => chrome.runtime.sendMessage({ type: "status" }));
    const note = await setBackend(options, second);
    const after = await options.evaluate(() => chrome.runtime.sendMessage({ type: "status" }));
    const field = await options.inputValue('[data-testid="backend-url"]');
    await visit(page, "https://www.amazon.com/dp/B0PWTEST02");
    await waitForSent(options, "the report of B0PWTEST02", (e) => e.report.obs.asin === "B0PWTEST02");
    await waitFor("an empty queue", async () => (await queued(options)) === 0);
    return { before, note, after, field, sent: await sentLog(options) };
  },

  async kill({ context, extensionId }) {
    const proxy = holdingProxy(backend);
    const proxyUrl = await proxy.listen();
    try {
      await giveConsent(context, extensionId);
      const options = await openOptions(context, extensionId);
      const note = await setBackend(options, proxyUrl);
      const page = await context.newPage();
      await visit(page, "https://www.amazon.com/dp/B0PWTEST01");
      // The worker is now waiting for the answer to its POST /v1/reports.
      await Promise.race([
        proxy.held,
        new Promise((_, reject) => setTimeout(() => reject(new Error("no POST /v1/reports reached the proxy")), 20000)),
      ]);
      const queuedWhileHeld = await queued(options);
      // Playwright reports no "close" for a stopped service worker; the
      // DevTools protocol's ServiceWorker domain does.
      const cdp = await context.newCDPSession(options);
      const statuses = [];
      let onStatus = () => {};
      cdp.on("ServiceWorker.workerVersionUpdated", (e) => {
        for (const v of e.versions) {
          if (v.scriptURL === `chrome-extension://${extensionId}/service_worker.js`) {
            statuses.push(v.runningStatus);
            onStatus(v.runningStatus);
          }
        }
      });
      const reached = (want, what) =>
        new Promise((resolve, reject) => {
          if (statuses[statuses.length - 1] === want) return resolve();
          const timer = setTimeout(() => reject(new Error(`${what}: the service worker is ${statuses[statuses.length - 1]}`)), 15000);
          onStatus = (status) => {
            if (status === want) {
              clearTimeout(timer);
              resolve();
            }
          };
        });
      await cdp.send("ServiceWorker.enable");
      await reached("running", "before the kill");
      await cdp.send("ServiceWorker.stopAllWorkers");
      await reached("stopped", "after ServiceWorker.stopAllWorkers");
      // The request the dead worker sent reaches the backend now.
      const heldAnswer = await proxy.release();
      const queuedAfterKill = await queued(options);
      const sentBeforeRestart = (await sentLog(options)).length;
      // Wake the worker: the options page asks for its status. The
      // restarted worker sends what is still queued.
      await options.reload();
      await waitFor("the options page", () => options.evaluate(() => document.body.dataset.ready === "1"));
      await reached("running", "after the options page asked for its status");
      // Judgement call: the outcome is checked at the proxy and the
      // backend, not in the worker's sent log: the backend answers a batch
      // of one duplicate with HTTP 409 (with the per-report results), and
      // the worker treats any 4xx batch answer as final without logging
      // it. The report leaves the queue either way.
      const resent = await waitFor("the queued report sent again after the restart", () => proxy.state.passedAnswers[0], { timeoutMs: 30000 });
      await waitFor("an empty queue", async () => (await queued(options)) === 0, { timeoutMs: 20000 });
      // A moment for a (wrong) extra send to show up.
      await new Promise((r) => setTimeout(r, 1000));
      await cdp.detach();
      return {
        note,
        workerStatuses: statuses,
        queuedWhileHeld,
        heldAnswer,
        queuedAfterKill,
        sentBeforeRestart,
        resent,
        reportPosts: proxy.state.reportPosts,
        passedAnswers: proxy.state.passedAnswers,
        queuedAfter: await queued(options),
        sent: await sentLog(options),
      };
    } finally {
      await proxy.close();
    }
  },
};

run(
  async (browser) => {
    const body = scenarios[scenario];
    if (!body) throw new Error(`unknown scenario ${scenario}`);
    return body(browser);
  },
  {
    extraArgs: [`--host-resolver-rules=${rules}`, "--ignore-certificate-errors", `--ip-address-space-overrides=127.0.0.1:${port}=public`],
  },
);
