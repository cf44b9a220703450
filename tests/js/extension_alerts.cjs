// End-to-end alert scenarios for the extension (issue 8, parts 3 and 4),
// driven by tests/tests/extension_alerts.rs. Environment (besides
// harness.cjs's):
//   PRICEWATCH_FAKE_PORT     the fake Amazon's HTTPS port
//   PRICEWATCH_BACKEND_URL   the backend the extension copy talks to
//   PRICEWATCH_SCENARIO      "drop" | "correction" | "outage"
//   PRICEWATCH_PRODUCT       JSON {marketplace, asin, target_minor, target_text}
//   PRICEWATCH_POPUP_SCREENSHOT  optional: where to save a screenshot of
//                            the popup (PNG)
//   PRICEWATCH_SIGNAL_DIR    folder for the handshake with the Rust side,
//                            which owns the fake Amazon and the database:
//                            the script writes `<name>` and waits for
//                            `<name>.done` (names: "drop", "correct",
//                            "stop" and "start" for the backend).
// Prints {"result": {...}, "errors": [...]} (see harness.cjs).
//
// The overlay's elements live in a closed shadow root (or, on a page whose
// CSP blocks wasm, in an extension iframe): they are reached through CDP,
// whose DOM.getDocument({pierce: true}) includes closed shadow roots, in
// the page or in the iframe's own target. Nothing here opens the root for
// the page.
//
// The alarm is shortened through the extension's test-only setting
// `pricewatch_test_alert_period_s` (see extension/static/sw_alerts.js), so
// the notifications come from the real alarm path; the click goes through
// `self.pricewatchAlerts.click(id)`, the handler a real click runs
// (headless Chromium has no notification UI to click).

"use strict";

const fs = require("fs");
const path = require("path");
const { run, waitFor } = require("./harness.cjs");

const port = process.env.PRICEWATCH_FAKE_PORT;
const scenario = process.env.PRICEWATCH_SCENARIO || "drop";
const product = JSON.parse(process.env.PRICEWATCH_PRODUCT || "{}");

const DOMAINS = ["amazon.com", "amazon.co.uk", "amazon.de", "amazon.fr", "amazon.it", "amazon.es", "amazon.nl", "amazon.se", "amazon.pl", "amazon.com.be", "amazon.ca", "amazon.com.mx", "amazon.com.br", "amazon.co.jp", "amazon.in", "amazon.com.au", "amazon.sg", "amazon.ae", "amazon.sa", "amazon.com.tr", "amazon.eg"];
const rules = DOMAINS.flatMap((d) => [`MAP www.${d} 127.0.0.1:${port}`, `MAP ${d} 127.0.0.1:${port}`])
  .concat(["MAP * ~NOTFOUND", "EXCLUDE 127.0.0.1", "EXCLUDE localhost"])
  .join(", ");

const productUrl = `https://www.${product.marketplace}/dp/${product.asin}`;

function log(line) {
  process.stderr.write(`${line}\n`);
}

async function newPage(context) {
  const page = await context.newPage();
  page.on("console", (m) => {
    if (m.text().includes("pricewatch")) log(`[page ${m.type()}] ${m.text()}`);
  });
  return page;
}

function worker(context) {
  const sw = context.serviceWorkers().find((w) => w.url().startsWith("chrome-extension://"));
  if (!sw) throw new Error("the extension's service worker is gone");
  return sw;
}

async function session(context, key) {
  const stored = await worker(context).evaluate((k) => chrome.storage.session.get(k), key);
  return stored[key] || [];
}

async function signalAndWait(name, timeoutMs = 30000) {
  const dir = process.env.PRICEWATCH_SIGNAL_DIR;
  fs.writeFileSync(path.join(dir, name), "");
  await waitFor(`the test side to do "${name}"`, () => fs.existsSync(path.join(dir, `${name}.done`)), { timeoutMs, intervalMs: 50 });
}

async function giveConsent(context, extensionId) {
  const url = `chrome-extension://${extensionId}/onboarding.html`;
  const page = await waitFor("the onboarding tab", async () => context.pages().find((p) => p.url() === url), { timeoutMs: 10000 });
  await page.click('[data-testid="consent-accept"]');
  await waitFor("consent to be stored", () => page.evaluate(() => document.body.dataset.consent === "given"));
  return page;
}

async function visit(page, url, runs = 1) {
  log(`visit ${url}`);
  await page.goto(url, { waitUntil: "domcontentloaded" });
  return waitFor(
    `the content script on ${url}`,
    () =>
      page.evaluate((want) => {
        const root = document.documentElement;
        const n = Number(root.getAttribute("data-pricewatch-runs") || 0);
        return n >= want ? { runs: n, path: root.getAttribute("data-pricewatch-path") } : null;
      }, runs),
    { timeoutMs: 15000 },
  );
}

function waitForReport(context, price, timeoutMs = 15000) {
  return waitFor(
    `the report of ${product.asin} at ${price}`,
    async () => (await session(context, "pricewatch_sent")).find((e) => e.report.obs.asin === product.asin && e.report.obs.price_minor === price),
    { timeoutMs },
  );
}

// ---------------------------------------------------------------------
// The overlay through CDP (closed shadow roots, extension iframes).

/// Where the overlay's DOM lives: the extension iframe (fallback path) or
/// the page itself.
async function overlayTarget(page) {
  return waitFor(
    "the overlay",
    async () => {
      const frame = page.frames().find((f) => f !== page.mainFrame() && f.url().startsWith("chrome-extension://"));
      const target = frame || page;
      const cdp = await page.context().newCDPSession(target);
      const found = await cdpFind(cdp, "pw-overlay");
      if (found) return { cdp, frame: Boolean(frame) };
      await cdp.detach().catch(() => {});
      return null;
    },
    { timeoutMs: 15000, intervalMs: 200 },
  );
}

function findNode(node, testid) {
  const attrs = node.attributes || [];
  for (let i = 0; i + 1 < attrs.length; i += 2) {
    if (attrs[i] === "data-testid" && attrs[i + 1] === testid) return node;
  }
  for (const child of [...(node.children || []), ...(node.shadowRoots || []), ...(node.contentDocument ? [node.contentDocument] : [])]) {
    const hit = findNode(child, testid);
    if (hit) return hit;
  }
  return null;
}

/// The remote object id of the element with this data-testid, or null.
async function cdpFind(cdp, testid) {
  const { root } = await cdp.send("DOM.getDocument", { depth: -1, pierce: true });
  const node = findNode(root, testid);
  if (!node) return null;
  const { object } = await cdp.send("DOM.resolveNode", { backendNodeId: node.backendNodeId });
  return object.objectId;
}

async function cdpCall(cdp, testid, fn, ...args) {
  const objectId = await waitFor(`overlay element ${testid}`, () => cdpFind(cdp, testid), { timeoutMs: 10000, intervalMs: 100 });
  const { result, exceptionDetails } = await cdp.send("Runtime.callFunctionOn", {
    objectId,
    functionDeclaration: fn.toString(),
    arguments: args.map((value) => ({ value })),
    returnByValue: true,
    awaitPromise: true,
  });
  if (exceptionDetails) throw new Error(`${testid}: ${JSON.stringify(exceptionDetails)}`);
  return result.value;
}

const click = (cdp, testid) =>
  cdpCall(cdp, testid, function () {
    this.click();
    return true;
  });
const text = (cdp, testid) =>
  cdpCall(cdp, testid, function () {
    return this.textContent;
  });
const fill = (cdp, testid, value) =>
  cdpCall(
    cdp,
    testid,
    function (v) {
      this.focus();
      this.value = v;
      this.dispatchEvent(new Event("input", { bubbles: true }));
      this.dispatchEvent(new Event("change", { bubbles: true }));
      return this.value;
    },
    value,
  );
const ensureChecked = (cdp, testid) =>
  cdpCall(cdp, testid, function () {
    if (!this.checked) this.click();
    return this.checked;
  });

/// Creates the watch from the overlay's form: target price, extension
/// notifications on, email and webhook off.
async function watchFromOverlay(page) {
  const { cdp, frame } = await overlayTarget(page);
  await click(cdp, "pw-watch-open");
  await fill(cdp, "pw-watch-target", product.target_text);
  await ensureChecked(cdp, "pw-watch-ch-extension");
  await click(cdp, "pw-watch-save");
  const existing = await waitFor("the overlay to show the saved watch", async () => {
    const id = await cdpFind(cdp, "pw-watch-existing");
    return id ? text(cdp, "pw-watch-existing") : null;
  });
  await cdp.detach().catch(() => {});
  return { frame, existing };
}

// ---------------------------------------------------------------------
// Extension pages: the popup (also a plain tab: same page, same data).

async function extensionPage(context, extensionId, file) {
  const page = await newPage(context);
  await page.goto(`chrome-extension://${extensionId}/${file}`);
  return page;
}

async function ask(page, message) {
  return page.evaluate((m) => chrome.runtime.sendMessage(m), message);
}

/// What the popup shows once it lists `wantAlerts` alerts.
async function readPopup(context, extensionId, wantAlerts) {
  const popup = await extensionPage(context, extensionId, "popup.html");
  const seen = await waitFor(
    `the popup with its watch and ${wantAlerts} alert(s)`,
    () =>
      popup.evaluate((want) => {
        const all = (id) => [...document.querySelectorAll(`[data-testid="${id}"]`)];
        const root = all("pw-popup")[0];
        const watches = all("pw-popup-watch");
        const alerts = all("pw-popup-alert");
        if (!root || watches.length === 0 || alerts.length < want) return null;
        // Wait for the watch's price to arrive (not a placeholder).
        if (!watches.every((w) => /\d/.test(w.textContent))) return null;
        const links = (el) => [...el.querySelectorAll("a[href]")].map((a) => a.href);
        const pause = all("pw-popup-pause")[0];
        return {
          watches: watches.map((w) => ({ text: w.textContent, links: links(w) })),
          alerts: alerts.map((a) => ({ text: a.textContent, kind: a.dataset.kind || null, links: links(a) })),
          pause: pause ? pause.textContent : null,
        };
      }, wantAlerts),
    { timeoutMs: 15000, intervalMs: 100 },
  );
  // For review: the popup as a shopper sees it (popup-sized viewport).
  const shot = process.env.PRICEWATCH_POPUP_SCREENSHOT;
  if (shot) {
    await popup.setViewportSize({ width: 400, height: 600 });
    await popup.screenshot({ path: shot, fullPage: true });
  }
  // Pause from the popup: the worker's status says paused; resume again.
  await popup.click('[data-testid="pw-popup-pause"]');
  const paused = await waitFor("paused from the popup", async () => {
    const s = await ask(popup, { type: "status" });
    return s && s.paused ? s : null;
  });
  await popup.click('[data-testid="pw-popup-pause"]');
  const resumed = await waitFor("resumed from the popup", async () => {
    const s = await ask(popup, { type: "status" });
    return s && !s.paused ? s : null;
  });
  await popup.close();
  return { ...seen, paused: paused.paused, resumed: !resumed.paused };
}

// ---------------------------------------------------------------------
// Notifications.

async function waitForNotification(context, predicate, what) {
  try {
    return await waitFor(what, async () => (await session(context, "pricewatch_notified")).find(predicate), { timeoutMs: 30000, intervalMs: 100 });
  } catch (err) {
    log(`diagnostics: ${JSON.stringify(await diagnostics(context))}`);
    throw err;
  }
}

/// What the worker knows, for a failure message.
async function diagnostics(context) {
  const sw = worker(context);
  return sw.evaluate(async () => {
    const kv = (key) =>
      new Promise((resolve) => {
        const open = indexedDB.open("pricewatch");
        open.onsuccess = () => {
          const req = open.result.transaction("kv").objectStore("kv").get(key);
          req.onsuccess = () => resolve(req.result ?? null);
          req.onerror = () => resolve(`error ${req.error}`);
        };
        open.onerror = () => resolve(`error ${open.error}`);
      });
    const session = await chrome.storage.session.get(null);
    return {
      sent: (session.pricewatch_sent || []).map((e) => ({ at: e.at, asin: e.report.obs.asin, price: e.report.obs.price_minor, status: e.status })),
      notified: session.pricewatch_notified || [],
      outage: session.pricewatch_alerts_outage || null,
      errors: session.pricewatch_errors || [],
      alarms: await chrome.alarms.getAll(),
      cursor: await kv("alerts_cursor"),
      registered: Boolean(await kv("registered_key")),
      now: Date.now(),
    };
  });
}

async function clickNotification(context, id) {
  const before = new Set(context.pages());
  const opened = await worker(context).evaluate((nid) => self.pricewatchAlerts.click(nid), id);
  const tab = await waitFor("the product tab the click opened", async () => context.pages().find((p) => !before.has(p) && p.url() === opened), {
    timeoutMs: 10000,
  });
  const shownAfter = await worker(context).evaluate(() => chrome.notifications.getAll());
  return { opened, tabUrl: tab.url(), stillShown: Object.keys(shownAfter || {}).includes(id) };
}

async function setUp(context, extensionId) {
  await giveConsent(context, extensionId);
  await worker(context).evaluate(() => chrome.storage.local.set({ pricewatch_test_alert_period_s: 1 }));
  const alarm = await waitFor("the 1 s alerts alarm", () =>
    worker(context).evaluate(async () => {
      const a = await chrome.alarms.get("pricewatch-alerts");
      return a && a.periodInMinutes === 1 / 60 ? a : null;
    }),
  );
  return { alarm };
}

/// Stops the extension's service worker (CDP, from one of its pages) and
/// waits until the alerts alarm has started a new one and it has polled.
/// Reads state through the extension page: that does not wake the worker.
async function restartWorker(context, extPage) {
  const cdp = await context.newCDPSession(extPage);
  // Every status change, in order: the worker may stop and start again
  // (the 1 s alarm) between two looks.
  const changes = [];
  cdp.on("ServiceWorker.workerVersionUpdated", (e) => e.versions.forEach((v) => changes.push({ ...v, seenAt: Date.now() })));
  await cdp.send("ServiceWorker.enable");
  const isOurs = (v) => v.scriptURL.endsWith("/service_worker.js");
  const running = await waitFor("the running service worker", () => changes.find((v) => isOurs(v) && v.runningStatus === "running"));
  const versionId = running.versionId;
  let stoppedAt = null;
  // Where the stop sits in `changes`: a start is a later entry (two events
  // can carry the same millisecond).
  let stoppedIndex = -1;
  // A worker busy with an event may not stop at once: ask again until it did.
  for (let attempt = 0; stoppedAt === null && attempt < 10; attempt += 1) {
    const asked = Date.now();
    await cdp.send("ServiceWorker.stopWorker", { versionId });
    const stopped = await waitFor(
      "the service worker to stop",
      () => {
        const i = changes.findIndex((v) => v.versionId === versionId && v.runningStatus === "stopped" && v.seenAt >= asked);
        return i >= 0 ? { i, at: changes[i].seenAt } : null;
      },
      { timeoutMs: 2000 },
    ).catch(() => null);
    if (stopped) {
      stoppedAt = stopped.at;
      stoppedIndex = stopped.i;
    }
  }
  if (stoppedAt === null) throw new Error("the service worker did not stop");
  const readSession = (key) => extPage.evaluate((k) => chrome.storage.session.get(k).then((o) => o[k] ?? null), key);
  const poll = await waitFor(
    "a poll by the restarted worker (woken by the alarm)",
    async () => {
      const p = await readSession("pricewatch_alerts_polled");
      return p && p.at > stoppedAt && p.why === "alarm" ? p : null;
    },
    { timeoutMs: 20000, intervalMs: 100 },
  );
  // The storage write can be seen before CDP delivers the status event:
  // wait a little for it rather than look once.
  const restarted = await waitFor(
    "the restarted worker's running status",
    () => changes.slice(stoppedIndex + 1).some((v) => isOurs(v) && v.runningStatus === "running") || null,
    { timeoutMs: 5000, intervalMs: 50 },
  )
    .then(() => true)
    .catch(() => false);
  await cdp.detach().catch(() => {});
  return { poll, restarted, notified: await readSession("pricewatch_notified") };
}

const scenarios = {
  // Watch from the overlay, price drop reported through the extension,
  // alert -> notification -> click opens the product; the popup lists the
  // watch and the alert.
  async drop({ context, extensionId }) {
    const out = {};
    out.setup = await setUp(context, extensionId);
    const page = await newPage(context);
    out.first = await visit(page, productUrl);
    out.firstReport = (await waitForReport(context, product.before_minor)).status;
    out.watch = await watchFromOverlay(page);
    await signalAndWait("drop");
    out.second = await visit(page, productUrl, 1);
    out.secondReport = (await waitForReport(context, product.after_minor)).status;
    out.notification = await waitForNotification(context, (n) => n.url === productUrl && n.kind !== "correction", "the alert's notification");
    out.shown = await worker(context).evaluate(() => chrome.notifications.getAll());
    // Polling again shows nothing new: each alert once.
    out.pollAgain = await worker(context).evaluate(() => self.pricewatchAlerts.poll());
    out.click = await clickNotification(context, out.notification.id);
    out.popup = await readPopup(context, extensionId, 1);
    out.notified = await session(context, "pricewatch_notified");
    return out;
  },

  // The backend goes away: polls fail with one warning and no error, and
  // go on at each alarm; back again, the drop's four alerts arrive as one
  // grouped notification (its click opens the popup page), shown once,
  // also after the worker was stopped and restarted by the alarm.
  async outage({ context, extensionId }) {
    const out = {};
    let warnings = 0;
    context.on("console", (m) => {
      if (m.type() === "warning" && m.text().includes("cannot fetch alerts")) warnings += 1;
    });
    out.setup = await setUp(context, extensionId);
    const page = await newPage(context);
    await visit(page, productUrl);
    await waitForReport(context, product.before_minor);
    const ext = await extensionPage(context, extensionId, "options.html");
    // Four watches on the product, all below its price: one drop fires
    // four alerts at once, which show as one grouped notification.
    out.watches = [];
    for (const extra of [0, 100, 200, 250]) {
      const answer = await ask(ext, {
        type: "watch_create",
        watch: { asin: product.asin, marketplace: product.marketplace, condition: "new", target_price_minor: product.target_minor + extra, channels: { extension: true } },
      });
      if (!answer || !answer.ok) throw new Error(`watch_create failed: ${JSON.stringify(answer)}`);
      out.watches.push(answer.data.id);
    }
    await signalAndWait("stop");
    const stoppedAt = Date.now();
    const polled = () => session(context, "pricewatch_alerts_polled");
    out.firstFailed = await waitFor("a failed poll", async () => {
      const p = await polled();
      return p && p.at > stoppedAt && p.failed ? p : null;
    });
    out.laterFailed = await waitFor("two more failed polls", async () => {
      const p = await polled();
      return p && p.at > out.firstFailed.at + 1500 && p.failed ? p : null;
    });
    out.outageMarker = await session(context, "pricewatch_alerts_outage");
    await signalAndWait("start", 60000);
    await signalAndWait("drop");
    await visit(page, productUrl, 1);
    await waitForReport(context, product.after_minor);
    out.notification = await waitForNotification(context, (n) => n.id.startsWith("pricewatch-alerts-group|"), "the grouped notification after the outage");
    out.shown = await worker(context).evaluate(() => chrome.notifications.getAll());
    out.click = await clickNotification(context, out.notification.id);
    out.restart = await restartWorker(context, ext);
    out.warnings = warnings;
    return out;
  },

  // A watch's alert, then the price that fired it is refuted: a
  // `correction` alert shows as a correction.
  async correction({ context, extensionId }) {
    const out = {};
    out.setup = await setUp(context, extensionId);
    const page = await newPage(context);
    await visit(page, productUrl);
    await waitForReport(context, product.before_minor);
    // The watch through the worker's watch API (the overlay path is the
    // drop scenario's).
    const ext = await extensionPage(context, extensionId, "options.html");
    out.watch = await ask(ext, {
      type: "watch_create",
      watch: { asin: product.asin, marketplace: product.marketplace, condition: "new", target_price_minor: product.target_minor, channels: { extension: true } },
    });
    if (!out.watch || !out.watch.ok) throw new Error(`watch_create failed: ${JSON.stringify(out.watch)}`);
    await signalAndWait("drop");
    await visit(page, productUrl, 1);
    await waitForReport(context, product.after_minor);
    out.drop = await waitForNotification(context, (n) => n.url === productUrl && n.kind !== "correction", "the drop's notification");
    await signalAndWait("correct");
    out.correction = await waitForNotification(context, (n) => n.kind === "correction", "the correction's notification");
    out.recent = await ask(ext, { type: "alerts_recent" });
    out.popup = await readPopup(context, extensionId, 2);
    return out;
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
