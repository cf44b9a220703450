// The extension's service worker (a module: static imports only, MV3
// forbids dynamic import() here).
//
// Chrome kills the worker after 30 s idle and restarts it on the next
// event, so listeners are registered at top level and no state that
// matters lives in globals: consent, settings, the key, the report queue,
// backoff and dedupe state are in IndexedDB (db.js). errors.js comes
// first: it installs the error listeners.
//
// Flow: the content script extracts (in wasm, on the live DOM) and sends
// {type: "extraction"}; when the page's CSP blocks wasm it sends
// {type: "page_html"} and the extraction runs here. Observations before
// consent, or while paused, are dropped (not queued). Each offer becomes
// one signed report (wasm), deduplicated per (asin, marketplace,
// condition, price) for 10 minutes, queued durably, and sent in batches.
// Only extracted fields leave the browser: never the URL, cookies or
// anything else of the page.

import { reportError } from "./errors.js";
import { core_version, extract_page_html, reportable_offers, sign_report, sign_request } from "./pkg/pricewatch_ext.js";
import { BACKEND_URL } from "./config.js";
import { kvDelete, kvGet, kvSet, tx } from "./db.js";
// Key, registration and signed requests: shared with sw_data.js and the popup's alerts.
import {
  backendUrl,
  ensureRegistered,
  fetchJson,
  randomBytes,
  ready as wasmReady,
  retryAfterMs,
  seed,
} from "./sw_signed.js";
import { handleDataMessage, isDataMessage } from "./sw_data.js";
// Alerts: the chrome.alarms poll of /v1/alerts, notifications, the popup's recent list.
import { forgetAlerts, recentAlerts } from "./sw_alerts.js";

const FLUSH_ALARM = "pricewatch-flush";
const DEDUPE_MS = 10 * 60 * 1000;
const BACKOFF_BASE_MS = 1000;
const BACKOFF_MAX_MS = 5 * 60 * 1000;
// Final per-report statuses (API.md): the report is dropped from the queue.
const FINAL = new Set(["accepted", "provisional", "held", "stored", "duplicate", "rejected"]);
// Diagnostics for tests and the options page: the last reports sent and
// their statuses, in chrome.storage.session (memory only; not exposed to
// content scripts). Reports are signed public data, no secret.
const SENT_LOG = "pricewatch_sent";
const SENT_KEEP = 100;

// The one global: an in-flight guard for flush() (see kick()). Nothing
// durable lives here; a restarted worker starts with none in flight.
let flushing = null;

// Initialise the wasm core, then leave a marker that says this worker runs
// the wasm: the smoke test reads `pricewatch_ready` back (the core's
// version). No top-level await: service worker modules may not use it, so
// handlers await `ready` before they touch the core.
const ready = wasmReady
  .then(() => chrome.storage.local.set({ pricewatch_ready: core_version(), pricewatch_backend: BACKEND_URL }))
  .catch((err) => reportError("starting the wasm core", err));

// ---------------------------------------------------------------------
// Top-level listeners.

chrome.runtime.onInstalled.addListener((details) => {
  if (details.reason === "install") {
    chrome.tabs.create({ url: chrome.runtime.getURL("onboarding.html") }).catch((e) => reportError("opening onboarding", e));
  }
});

chrome.runtime.onStartup.addListener(() => {
  kick("startup");
});

chrome.alarms.onAlarm.addListener((alarm) => {
  if (alarm.name === FLUSH_ALARM) kick("alarm");
});

chrome.runtime.onMessage.addListener((message, sender, sendResponse) => {
  handleMessage(message, sender)
    .then((answer) => sendResponse(answer))
    .catch((err) => {
      reportError(`handling ${message && message.type}`, err);
      sendResponse({ ok: false, error: String(err && err.message ? err.message : err) });
    });
  return true; // answer asynchronously
});

// A worker that (re)starts with reports still queued sends them.
kick("worker start");

// ---------------------------------------------------------------------
// Messages.

function fromExtensionPage(sender) {
  return sender.id === chrome.runtime.id && typeof sender.url === "string" && sender.url.startsWith(chrome.runtime.getURL(""));
}

async function handleMessage(message, sender) {
  if (!message || typeof message.type !== "string") return { ok: false, error: "no message type" };
  switch (message.type) {
    case "extraction":
      return observe(message.extraction);
    case "page_html": {
      // Fallback: the page's CSP blocked wasm in the content script.
      await ready;
      const extraction = JSON.parse(extract_page_html(String(message.html || ""), String(message.url || "")));
      const result = await observe(extraction);
      return { ...result, extraction };
    }
    case "status":
      return status();
  }
  // The overlay's data messages (sw_data.js answers them).
  if (isDataMessage(message.type)) return handleDataMessage(message);
  // The popup's recent alerts (sw_alerts.js): the user's own alerts, for
  // extension pages only.
  if (message.type === "alerts_recent") {
    return fromExtensionPage(sender) ? recentAlerts() : { ok: false, error: { code: "forbidden", message: "not allowed from here" } };
  }
  // Everything below changes settings or data: extension pages only,
  // never a content script (which a hostile page could drive).
  if (!fromExtensionPage(sender)) return { ok: false, error: "not allowed from here" };
  switch (message.type) {
    case "consent":
      await kvSet("consent", { given: true, at: Date.now() });
      kick("consent");
      return { ok: true };
    case "set_paused":
      await kvSet("paused", Boolean(message.paused));
      if (!message.paused) kick("resumed");
      return { ok: true };
    case "set_backend_url":
      return setBackendUrl(message.url);
    case "delete_my_data":
      return deleteMyData();
    default:
      return { ok: false, error: `unknown message type ${message.type}` };
  }
}

async function status() {
  const [consent, paused, override, registered, queued] = await Promise.all([
    kvGet("consent"),
    kvGet("paused"),
    kvGet("backend_url"),
    kvGet("registered_key"),
    tx(["queue"], "readonly", (s, p) => p(s.queue.count())),
  ]);
  return {
    ok: true,
    consent: Boolean(consent && consent.given),
    paused: Boolean(paused),
    backendUrl: override || BACKEND_URL,
    defaultBackendUrl: BACKEND_URL,
    registered: Boolean(registered),
    queued,
  };
}

async function setBackendUrl(url) {
  if (url === "" || url === null || url === undefined) {
    await kvDelete("backend_url");
    return { ok: true, backendUrl: BACKEND_URL };
  }
  let parsed;
  try {
    parsed = new URL(String(url));
  } catch {
    return { ok: false, error: "not a URL" };
  }
  if (!["http:", "https:"].includes(parsed.protocol) || parsed.search || parsed.hash) {
    return { ok: false, error: "an http(s) URL without query or fragment, like http://127.0.0.1:8787" };
  }
  const clean = parsed.href.replace(/\/+$/, "");
  // The options page asked for the host permission (user gesture) before
  // sending this; without it every fetch would fail, so refuse.
  const granted = await chrome.permissions.contains({ origins: [`${parsed.origin}/*`] });
  if (!granted) return { ok: false, error: `no permission for ${parsed.origin}` };
  // A new backend does not know our key: register again there.
  await kvSet("backend_url", clean);
  await kvDelete("registered_key");
  kick("backend changed");
  return { ok: true, backendUrl: clean };
}

// ---------------------------------------------------------------------
// Observations -> signed, queued reports.

async function reportingAllowed() {
  const [consent, paused] = await Promise.all([kvGet("consent"), kvGet("paused")]);
  return Boolean(consent && consent.given) && !paused;
}

async function observe(extraction) {
  if (!extraction || typeof extraction !== "object") return { ok: false, error: "no extraction" };
  // Consent first: before it (or while paused) observations are dropped,
  // not queued.
  if (!(await reportingAllowed())) return { ok: true, queued: 0, dropped: "no consent or paused" };
  await ready;
  const offers = JSON.parse(reportable_offers(JSON.stringify(extraction)));
  if (offers.length === 0) return { ok: true, queued: 0 };
  const keySeed = await seed();
  const now = Date.now();
  const reports = [];
  for (const offer of offers) {
    reports.push({
      dedupe: `${offer.asin}|${offer.marketplace}|${offer.condition}|${offer.price_minor ?? ""}`,
      report: JSON.parse(sign_report(keySeed, JSON.stringify(offer), now, randomBytes(16))),
    });
  }
  // Dedupe check and enqueue in one transaction: the same offer seen by
  // two tabs at once is queued once.
  const queued = await tx(["queue", "dedupe"], "readwrite", async (s, p) => {
    let n = 0;
    for (const { dedupe, report } of reports) {
      const last = await p(s.dedupe.get(dedupe));
      if (typeof last === "number" && now - last < DEDUPE_MS && now >= last) continue;
      s.dedupe.put(now, dedupe);
      s.queue.add(report);
      n += 1;
    }
    return n;
  });
  if (queued > 0) kick("new reports");
  return { ok: true, queued };
}

// ---------------------------------------------------------------------
// Sending: registration, batches, backoff.

/// Starts a flush unless one runs; never throws.
function kick(why) {
  if (flushing) {
    flushing.again = true;
    return;
  }
  const state = { again: false };
  flushing = state;
  (async () => {
    do {
      state.again = false;
      await flush();
    } while (state.again);
  })()
    .catch((err) => reportError(`sending reports (${why})`, err))
    .finally(() => {
      flushing = null;
    });
}

async function scheduleRetry(reason, retryAfterMs) {
  const backoff = (await kvGet("backoff")) || { attempt: 0 };
  const attempt = backoff.attempt + 1;
  const delay =
    retryAfterMs !== undefined ? retryAfterMs : Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (attempt - 1));
  const at = Date.now() + delay;
  await kvSet("backoff", { attempt, at, reason });
  await chrome.alarms.create(FLUSH_ALARM, { when: at });
  console.warn(`pricewatch: sending postponed ${Math.round(delay / 1000)} s: ${reason}`);
}

async function clearBackoff() {
  await kvDelete("backoff");
}

async function logSent(entries) {
  const stored = await chrome.storage.session.get(SENT_LOG);
  const list = (stored[SENT_LOG] || []).concat(entries).slice(-SENT_KEEP);
  await chrome.storage.session.set({ [SENT_LOG]: list });
}

async function flush() {
  const queued = await tx(["queue"], "readonly", (s, p) => p(s.queue.count()));
  if (queued === 0) {
    await clearBackoff();
    return;
  }
  if (!(await reportingAllowed())) return;
  const backoff = await kvGet("backoff");
  if (backoff && backoff.at > Date.now()) {
    // An alarm is set for then; make sure it survived a restart.
    if (!(await chrome.alarms.get(FLUSH_ALARM))) await chrome.alarms.create(FLUSH_ALARM, { when: backoff.at });
    return;
  }
  const base = await backendUrl();
  const keySeed = await seed();
  let maxBatch = 50;
  try {
    await ensureRegistered(base, keySeed);
    const config = await fetchJson(`${base}/v1/config`);
    if (config.body && Number.isInteger(config.body.max_batch) && config.body.max_batch > 0) {
      maxBatch = Math.min(maxBatch, config.body.max_batch);
    }
  } catch (err) {
    await scheduleRetry(`registration: ${err && err.message ? err.message : err}`);
    return;
  }
  for (;;) {
    const batch = await tx(["queue"], "readonly", async (s, p) => {
      const [keys, values] = await Promise.all([p(s.queue.getAllKeys(null, maxBatch)), p(s.queue.getAll(null, maxBatch))]);
      return keys.map((id, i) => ({ id, report: values[i] }));
    });
    if (batch.length === 0) break;
    let sent;
    try {
      sent = await fetchJson(`${base}/v1/reports`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ reports: batch.map((b) => b.report) }),
      });
    } catch (err) {
      await scheduleRetry(`backend unreachable: ${err && err.message ? err.message : err}`);
      return;
    }
    const { response, body } = sent;
    if (response.status === 429) {
      await scheduleRetry("rate limited (429)", retryAfterMs(response));
      return;
    }
    if (response.status >= 500 || response.status === 408) {
      await scheduleRetry(`backend answered ${response.status}`, retryAfterMs(response));
      return;
    }
    // A batch of one that was not stored answers with that report's own
    // status (409 duplicate, 401, 403, 422: API.md) *and* the usual
    // `results`, so any answer carrying a full `results` array is read.
    const results = body && Array.isArray(body.results) ? body.results : null;
    if (!results || results.length !== batch.length) {
      // A 4xx for the whole batch: it would fail the same way again.
      // Judgement call: drop it and say so, rather than block the queue.
      console.warn(`pricewatch: batch of ${batch.length} refused (${response.status}): ${JSON.stringify(body)}`);
      await tx(["queue"], "readwrite", (s) => batch.forEach((b) => s.queue.delete(b.id)));
      continue;
    }
    const done = [];
    const log = [];
    let unregistered = false;
    batch.forEach((b, i) => {
      const r = results[i] || {};
      if (FINAL.has(r.status)) done.push(b.id);
      if (r.status === "rejected") {
        console.warn(`pricewatch: report for ${b.report.obs.asin} rejected: ${r.reason}`);
        if (r.reason === "unregistered_key") unregistered = true;
      }
      log.push({ at: Date.now(), status: r.status, reason: r.reason, report: b.report });
    });
    await tx(["queue"], "readwrite", (s) => done.forEach((id) => s.queue.delete(id)));
    await logSent(log);
    await clearBackoff();
    if (unregistered) await kvDelete("registered_key");
    if (done.length === 0) {
      await scheduleRetry("no final status in the answer");
      return;
    }
  }
}

// ---------------------------------------------------------------------
// Delete my data: signed DELETE /v1/me, then wipe the key, queue, dedupe.

async function deleteMyData() {
  await ready;
  const base = await backendUrl();
  const keySeed = await tx(["kv"], "readonly", (s, p) => p(s.kv.get("seed")));
  if (keySeed instanceof Uint8Array && keySeed.length === 32 && (await kvGet("registered_key"))) {
    const path = "/v1/me";
    const headers = JSON.parse(sign_request(keySeed, "DELETE", path, Date.now(), randomBytes(16), new Uint8Array(0)));
    let response;
    try {
      response = await fetch(`${base}${path}`, { method: "DELETE", headers, credentials: "omit" });
    } catch (err) {
      return { ok: false, error: `backend unreachable: ${err.message}` };
    }
    if (!response.ok && response.status !== 404) {
      return { ok: false, error: `DELETE /v1/me answered ${response.status}` };
    }
  }
  await tx(["kv", "queue", "dedupe"], "readwrite", (s) => {
    for (const k of ["seed", "registered_key", "pow_progress", "backoff"]) s.kv.delete(k);
    s.queue.clear();
    s.dedupe.clear();
  });
  await chrome.alarms.clear(FLUSH_ALARM);
  await chrome.storage.session.remove(SENT_LOG);
  await forgetAlerts();
  return { ok: true };
}
