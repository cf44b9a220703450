// End-to-end collection scenarios for the extension (issue 7), driven by
// tests/tests/extension_collect.rs. Environment (besides harness.cjs's):
//   PRICEWATCH_FAKE_PORT     the fake Amazon's HTTPS port
//   PRICEWATCH_BACKEND_URL   the backend the extension copy was built for
//   PRICEWATCH_SCENARIO      "flow" | "corpus" | "timing" | "options" | "ratelimit" | "offline"
//   PRICEWATCH_PAGES         JSON list of page URLs (corpus, timing)
//   PRICEWATCH_SIGNAL_DIR    folder for the offline scenario's handshake
//                            with the Rust side (stop/stopped/start files)
// Prints {"result": {...}, "errors": [...]} (see harness.cjs).

"use strict";

const fs = require("fs");
const path = require("path");
const { run, waitFor } = require("./harness.cjs");

const port = process.env.PRICEWATCH_FAKE_PORT;
const backend = process.env.PRICEWATCH_BACKEND_URL;
const scenario = process.env.PRICEWATCH_SCENARIO || "flow";

const DOMAINS = ["amazon.com", "amazon.co.uk", "amazon.de", "amazon.fr", "amazon.it", "amazon.es", "amazon.nl", "amazon.se", "amazon.pl", "amazon.com.be", "amazon.ca", "amazon.com.mx", "amazon.com.br", "amazon.co.jp", "amazon.in", "amazon.com.au", "amazon.sg", "amazon.ae", "amazon.sa", "amazon.com.tr", "amazon.eg"];
// Every other host name fails at once: the corpus pages reference Amazon's
// CDN, and a lookup that waits for an unreachable DNS server stalls the
// page for seconds.
const rules = DOMAINS.flatMap((d) => [`MAP www.${d} 127.0.0.1:${port}`, `MAP ${d} 127.0.0.1:${port}`])
  .concat(["MAP * ~NOTFOUND", "EXCLUDE 127.0.0.1", "EXCLUDE localhost"])
  .join(", ");

/// A new tab whose console goes to stderr (shown when a test fails).
async function newPage(context) {
  const page = await context.newPage();
  page.on("console", (m) => {
    if (m.text().includes("pricewatch")) process.stderr.write(`[page ${m.type()}] ${m.text()}\n`);
  });
  return page;
}

function worker(context) {
  const sw = context.serviceWorkers().find((w) => w.url().startsWith("chrome-extension://"));
  if (!sw) throw new Error("the extension's service worker is gone");
  return sw;
}

async function sentLog(context) {
  const stored = await worker(context).evaluate(() => chrome.storage.session.get("pricewatch_sent"));
  return stored.pricewatch_sent || [];
}

async function queued(context) {
  return worker(context).evaluate(
    () =>
      new Promise((resolve, reject) => {
        const open = indexedDB.open("pricewatch");
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const db = open.result;
          if (!db.objectStoreNames.contains("queue")) return resolve(0);
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

/// Opens `url` in `page` and waits until the content script has run
/// `runs` times; returns its markers.
async function visit(page, url, { runs = 1, reload = false } = {}) {
  process.stderr.write(`visit ${reload ? "(reload)" : url}\n`);
  if (reload) await page.reload();
  else await page.goto(url, { waitUntil: "domcontentloaded" });
  return waitForRun(page, runs);
}

async function waitForRun(page, runs) {
  return waitFor(
    `the content script on ${page.url()} (run ${runs})`,
    () =>
      page.evaluate((want) => {
        const root = document.documentElement;
        const n = Number(root.getAttribute("data-pricewatch-runs") || 0);
        if (n < want) return null;
        return {
          runs: n,
          path: root.getAttribute("data-pricewatch-path"),
          reported: root.getAttribute("data-pricewatch-reported"),
          ms: root.getAttribute("data-pricewatch-extract-ms"),
        };
      }, runs),
    { timeoutMs: 15000 },
  );
}

async function giveConsent(context, extensionId) {
  const url = `chrome-extension://${extensionId}/onboarding.html`;
  // The worker opens the onboarding page on install; use that tab.
  const page = await waitFor("the onboarding tab", async () => context.pages().find((p) => p.url() === url), { timeoutMs: 10000 });
  await page.click('[data-testid="consent-accept"]');
  await waitFor("consent to be stored", () => page.evaluate(() => document.body.dataset.consent === "given"));
  return page;
}

async function backendHas(marketplace, asin) {
  const r = await fetch(`${backend}/v1/products/${marketplace}/${asin}`);
  return r.status === 200 ? r.json() : null;
}

function waitForSent(context, what, predicate, timeoutMs = 15000) {
  return waitFor(what, async () => (await sentLog(context)).find(predicate), { timeoutMs });
}

function signal(name) {
  fs.writeFileSync(path.join(process.env.PRICEWATCH_SIGNAL_DIR, name), "");
}

function signalled(name) {
  return fs.existsSync(path.join(process.env.PRICEWATCH_SIGNAL_DIR, name));
}

const scenarios = {
  async flow({ context, extensionId }) {
    const page = await newPage(context);
    const out = {};
    // 1. Before consent: the content script runs, nothing is queued or sent.
    out.preConsent = await visit(page, "https://www.amazon.com/dp/B0PWTEST01");
    await new Promise((r) => setTimeout(r, 500));
    out.preConsentQueued = await queued(context);
    out.preConsentSent = (await sentLog(context)).length;
    out.preConsentBackend = await backendHas("amazon.com", "B0PWTEST01");

    // 2. Consent on the onboarding page, then the same page reports once.
    await giveConsent(context, extensionId);
    out.afterConsent = await visit(page, null, { reload: true });
    await waitForSent(context, "the report of B0PWTEST01", (e) => e.report.obs.asin === "B0PWTEST01");
    out.summary = await waitFor("B0PWTEST01 at the backend", () => backendHas("amazon.com", "B0PWTEST01"));

    // 3. Variations: the parent's price, then the child's once.
    out.variationFirst = await visit(page, "https://www.amazon.de/dp/B0PWVAR001");
    await waitForSent(context, "the report of B0PWVAR001", (e) => e.report.obs.asin === "B0PWVAR001");
    await page.click('[data-testid="variation-1"]');
    await waitForSent(context, "the report of the chosen variation B0PWVAR002", (e) => e.report.obs.asin === "B0PWVAR002");
    out.variationUrl = page.url();
    // 4. A reload within 10 minutes reports nothing new.
    out.reload = await visit(page, null, { reload: true });
    await new Promise((r) => setTimeout(r, 500));

    // 5. A page whose CSP blocks wasm: the fallback path reports it.
    out.csp = await visit(page, "https://www.amazon.co.jp/dp/B0PWCSP001");
    await waitForSent(context, "the report of the CSP page", (e) => e.report.obs.asin === "B0PWCSP001");
    out.cspSummary = await waitFor("B0PWCSP001 at the backend", () => backendHas("amazon.co.jp", "B0PWCSP001"));

    await waitFor("an empty queue", async () => (await queued(context)) === 0);
    out.sent = await sentLog(context);
    return out;
  },

  async corpus({ context, extensionId }) {
    await giveConsent(context, extensionId);
    const page = await newPage(context);
    const pages = JSON.parse(process.env.PRICEWATCH_PAGES || "[]");
    const visits = [];
    for (const url of pages) {
      const marker = await visit(page, url);
      visits.push({ url, ...marker });
    }
    await waitFor("an empty queue", async () => (await queued(context)) === 0, { timeoutMs: 20000 });
    return { visits, sent: await sentLog(context) };
  },

  // Benchmark: no consent (nothing is reported), each page loaded and the
  // live-DOM extraction time read from the content script's marker.
  async timing({ context }) {
    const page = await newPage(context);
    const pages = JSON.parse(process.env.PRICEWATCH_PAGES || "[]");
    const visits = [];
    for (const url of pages) {
      const first = await visit(page, url);
      // A change in the buy box makes the content script extract again
      // (its MutationObserver): that second figure is the warm one.
      await page.evaluate(() => {
        const box = ["#centerCol", "#rightCol", "#buybox", "#ppd"].map((s) => document.querySelector(s)).find(Boolean);
        const marker = document.createElement("span");
        marker.hidden = true;
        (box || document.body).appendChild(marker);
      });
      const second = await waitForRun(page, first.runs + 1);
      visits.push({ url, ...first, warmMs: second.ms });
    }
    return { visits };
  },

  // Options page: pause drops observations; delete my data erases the
  // key on the server and locally (the next report has a new key).
  async options({ context, extensionId }) {
    await giveConsent(context, extensionId);
    const page = await newPage(context);
    await visit(page, "https://www.amazon.com/dp/B0PWTEST01");
    const first = await waitForSent(context, "the first report", (e) => e.report.obs.asin === "B0PWTEST01");
    const options = await newPage(context);
    await options.goto(`chrome-extension://${extensionId}/options.html`);
    await waitFor("the options page", () => options.evaluate(() => document.body.dataset.ready === "1"));
    await options.click('[data-testid="pause-toggle"]');
    await waitFor("paused", () => options.evaluate(() => document.querySelector('[data-testid="pause-toggle"]').dataset.paused === "true"));
    const paused = await visit(page, "https://www.amazon.com/dp/B0PWTEST02");
    await new Promise((r) => setTimeout(r, 300));
    const queuedWhilePaused = await queued(context);
    await options.click('[data-testid="pause-toggle"]');
    await waitFor("resumed", () => options.evaluate(() => document.querySelector('[data-testid="pause-toggle"]').dataset.paused === "false"));
    await options.click('[data-testid="delete-data"]');
    await waitFor("the deletion", () => options.evaluate(() => document.body.dataset.deleted === "1"));
    const sentAfterDelete = (await sentLog(context)).length;
    await visit(page, "https://www.amazon.com/dp/B0PWTEST03");
    await waitForSent(context, "the report after the deletion", (e) => e.report.obs.asin === "B0PWTEST03");
    return { firstKey: first.report.obs.key, paused, queuedWhilePaused, sentAfterDelete, sent: await sentLog(context) };
  },

  // The backend limits reports per address: a 429's Retry-After sets
  // the next attempt, the report stays queued.
  async ratelimit({ context, extensionId }) {
    await giveConsent(context, extensionId);
    const page = await newPage(context);
    for (const asin of ["B0PWTEST01", "B0PWTEST02"]) {
      await visit(page, `https://www.amazon.com/dp/${asin}`);
      await waitForSent(context, `the report of ${asin}`, (e) => e.report.obs.asin === asin);
    }
    await visit(page, "https://www.amazon.com/dp/B0PWTEST03");
    const backoff = await waitFor("the rate-limit backoff", () =>
      worker(context).evaluate(
        () =>
          new Promise((resolve, reject) => {
            const open = indexedDB.open("pricewatch");
            open.onerror = () => reject(open.error);
            open.onsuccess = () => {
              const req = open.result.transaction("kv").objectStore("kv").get("backoff");
              req.onsuccess = () => resolve(req.result ? { ...req.result, now: Date.now() } : null);
              req.onerror = () => reject(req.error);
            };
          }),
      ),
    );
    return { backoff, queued: await queued(context), sent: await sentLog(context) };
  },

  async offline({ context, extensionId }) {
    await giveConsent(context, extensionId);
    const page = await newPage(context);
    await visit(page, "https://www.amazon.com/dp/B0PWTEST01");
    await waitForSent(context, "the first report", (e) => e.report.obs.asin === "B0PWTEST01");
    // Backend down: the next report stays queued.
    signal("stop");
    await waitFor("the backend to stop", () => signalled("stopped"), { timeoutMs: 20000 });
    await visit(page, "https://www.amazon.com/dp/B0PWTEST02");
    await waitFor("the report to be queued", async () => (await queued(context)) >= 1);
    await new Promise((r) => setTimeout(r, 2500)); // a failed attempt or two
    const queuedWhileDown = await queued(context);
    const sentWhileDown = (await sentLog(context)).filter((e) => e.report.obs.asin === "B0PWTEST02").length;
    // Backend back on the same port: the queued report arrives.
    signal("start");
    await waitFor("the backend to start", () => signalled("started"), { timeoutMs: 60000 });
    await waitForSent(context, "the queued report after the restart", (e) => e.report.obs.asin === "B0PWTEST02", 40000);
    return { queuedWhileDown, sentWhileDown, sent: await sentLog(context), queuedAfter: await queued(context) };
  },
};

run(
  async (browser) => {
    const body = scenarios[scenario];
    if (!body) throw new Error(`unknown scenario ${scenario}`);
    return body(browser);
  },
  {
    extraArgs: [
      `--host-resolver-rules=${rules}`,
      "--ignore-certificate-errors",
      `--ip-address-space-overrides=127.0.0.1:${port}=public`,
    ],
  },
);
