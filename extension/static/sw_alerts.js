// Alerts in the extension (issue 8, part 4): the service worker polls the
// signed `GET /v1/alerts?after={id}` on a chrome.alarms alarm and shows a
// chrome.notifications notification per new alert; clicking one opens
// the product page on its marketplace and clears it. The last 50 alerts
// are kept for the popup ({type: "alerts_recent"}).
//
// State (IndexedDB kv of the extension origin, see db.js; content scripts
// cannot read it, and these are the user's own watches):
//   alerts_cursor  {scope, after}: the highest alert id seen for `scope`
//                  (backend URL + registered key). A new backend or a new
//                  key (after "delete my data") starts again at 0, since
//                  alert ids are per backend.
//   alerts_recent  {scope, alerts: [...]}: the last 50 alerts, newest
//                  first, each with the product title and the texts shown.
// The cursor and the list move together in one transaction, and only the
// alerts that transaction found new are shown: two polls racing (an alarm
// and a worker start) show each alert once, and a restarted worker never
// shows an alert again. Judgement call: the cursor is saved *before* the
// notifications are created (at most once): an alert whose notification
// was lost to a killed worker is still listed in the popup.
//
// Polling needs consent and a registered key (a browser that never
// reported or watched anything has no alerts; the poll does not register
// a key just to ask). Judgement call: pausing stops *reporting* only; the
// user's own alerts keep coming while paused (the popup says it is
// paused). Backend unreachable or failing: one console warning
// per outage, and the next alarm tries again; never an error (the test
// harness fails on console errors).
//
// Alarm period: 1 minute. Test-only setting: `pricewatch_test_alert_period_s`
// in chrome.storage.local (seconds, at least 1; Chrome honours periods
// under 30 s only for unpacked extensions) shortens it; the alarm is
// re-created when that setting changes.
//
// Notifications: one per alert; more than GROUP_OVER new alerts in one
// poll become one "list" notification whose click opens the popup page in
// a tab (it lists them all). A `correction` says plainly that an earlier
// alert's price was wrong and gives the verified price. Prices are
// formatted for the marketplace with Intl.NumberFormat, fed an exact
// decimal string built from the integer minor units (never a float).
//
// Diagnostics for tests: the notifications created are logged in
// chrome.storage.session under `pricewatch_notified` (memory only), the
// last poll's outcome under `pricewatch_alerts_polled`, and
// `self.pricewatchAlerts` offers `poll()` and `click(notificationId)` (the
// same code the alarm and a real click run; reachable only from the
// extension's own worker context).

import { kvGet, tx } from "./db.js";
import { reportError } from "./errors.js";
import { backendUrl, consentGiven, fetchJson, signedFetch, SignedError } from "./sw_signed.js";

const ALERTS_ALARM = "pricewatch-alerts";
const DEFAULT_PERIOD_MIN = 1;
const TEST_PERIOD_KEY = "pricewatch_test_alert_period_s";
const RECENT_KEEP = 50;
const PAGE = 100; // the backend's page size for /v1/alerts
const MAX_PAGES = 10; // per poll; the rest comes at the next alarm
const GROUP_OVER = 3;
const NOTIFIED_LOG = "pricewatch_notified";
const NOTIFIED_KEEP = 100;
const POLLED_LOG = "pricewatch_alerts_polled";
const ALERT_PREFIX = "pricewatch-alert|";
const GROUP_PREFIX = "pricewatch-alerts-group|";

const MARKETPLACE = /^amazon\.[a-z]{2,3}(?:\.[a-z]{2})?$/;
const ASIN = /^[A-Z0-9]{10}$/;
const CURRENCY = /^[A-Z]{3}$/;
const KINDS = new Set(["target_reached", "price_drop", "back_in_stock", "correction"]);

// The locale each marketplace shows its prices in (Intl picks the symbol,
// separators and grouping from it). Unknown marketplaces fall back to
// en-US; the currency always comes from the alert.
const LOCALES = {
  "amazon.com": "en-US",
  "amazon.co.uk": "en-GB",
  "amazon.de": "de-DE",
  "amazon.fr": "fr-FR",
  "amazon.it": "it-IT",
  "amazon.es": "es-ES",
  "amazon.nl": "nl-NL",
  "amazon.se": "sv-SE",
  "amazon.pl": "pl-PL",
  "amazon.com.be": "fr-BE",
  "amazon.ca": "en-CA",
  "amazon.com.mx": "es-MX",
  "amazon.com.br": "pt-BR",
  "amazon.co.jp": "ja-JP",
  "amazon.in": "en-IN",
  "amazon.com.au": "en-AU",
  "amazon.sg": "en-SG",
  "amazon.ae": "en-AE",
  "amazon.sa": "en-SA",
  "amazon.com.tr": "tr-TR",
  "amazon.eg": "en-EG",
};

// The one global: the poll in flight, so an alarm during a poll joins it.
// A restarted worker starts with none; nothing durable lives here.
let polling = null;

// ---------------------------------------------------------------------
// Top-level listeners (the worker is restarted for each event).

chrome.alarms.onAlarm.addListener((alarm) => {
  if (alarm.name === ALERTS_ALARM) pollAlerts("alarm");
});

chrome.notifications.onClicked.addListener((id) => {
  notificationClicked(id).catch((err) => reportError("opening an alert", err));
});

chrome.storage.onChanged.addListener((changes, area) => {
  if (area === "local" && TEST_PERIOD_KEY in changes) ensureAlarm();
});

// Alarms may not survive a browser restart or an update: make sure ours
// exists each time the worker starts.
ensureAlarm();

self.pricewatchAlerts = {
  poll: () => pollAlerts("diagnostics"),
  click: (id) => notificationClicked(id),
};

// ---------------------------------------------------------------------
// The alarm.

async function periodMinutes() {
  const stored = await chrome.storage.local.get(TEST_PERIOD_KEY);
  const secs = Number(stored[TEST_PERIOD_KEY]);
  if (Number.isFinite(secs) && secs > 0) return Math.max(1, secs) / 60;
  return DEFAULT_PERIOD_MIN;
}

function ensureAlarm() {
  (async () => {
    const period = await periodMinutes();
    const existing = await chrome.alarms.get(ALERTS_ALARM);
    if (existing && existing.periodInMinutes === period) return;
    await chrome.alarms.create(ALERTS_ALARM, { delayInMinutes: period, periodInMinutes: period });
  })().catch((err) => reportError("setting the alerts alarm", err));
}

// ---------------------------------------------------------------------
// Polling.

/// Polls unless a poll runs (then joins it); never throws. Resolves with a
/// summary: {shown, skipped?, failed?}.
export function pollAlerts(why) {
  if (!polling) {
    polling = poll()
      .catch((err) => {
        reportError(`polling alerts (${why})`, err);
        return { shown: 0, failed: String(err && err.message ? err.message : err) };
      })
      .then(async (result) => {
        // Diagnostics: the last poll's outcome (memory only).
        await chrome.storage.session.set({ [POLLED_LOG]: { at: Date.now(), why, ...result } }).catch(() => {});
        return result;
      })
      .finally(() => {
        polling = null;
      });
  }
  return polling;
}

async function poll() {
  if (!(await consentGiven())) return { shown: 0, skipped: "no consent" };
  const key = await kvGet("registered_key");
  if (!key) return { shown: 0, skipped: "no registered key" };
  const base = await backendUrl();
  const scope = `${base} ${key}`;
  const cursor = await kvGet("alerts_cursor");
  let after = cursor && cursor.scope === scope && Number.isSafeInteger(cursor.after) ? cursor.after : 0;
  let shown = 0;
  for (let page = 0; page < MAX_PAGES; page += 1) {
    const path = `/v1/alerts?after=${after}&limit=${PAGE}`;
    let answer;
    try {
      answer = await signedFetch("GET", path);
    } catch (err) {
      if (err instanceof SignedError) {
        await outage(`${err.code}: ${err.message}`);
        return { shown, failed: err.code };
      }
      throw err;
    }
    if (answer.status !== 200 || !answer.body || !Array.isArray(answer.body.alerts)) {
      await outage(`GET /v1/alerts answered ${answer.status}`);
      return { shown, failed: `http_${answer.status}` };
    }
    await outageOver();
    const raw = answer.body.alerts;
    if (raw.length === 0) break;
    const alerts = raw.map(validAlert).filter(Boolean);
    const lastId = Math.max(after, ...raw.map((a) => (a && Number.isSafeInteger(a.id) ? a.id : 0)));
    const titles = await productTitles(base, alerts);
    const entries = alerts.map((a) => describe(a, titles.get(`${a.marketplace}/${a.asin}`)));
    const fresh = await record(scope, entries, lastId);
    await show(fresh);
    shown += fresh.length;
    if (lastId <= after || raw.length < PAGE) break;
    after = lastId;
  }
  return { shown };
}

/// One warning per outage (kept in storage.session across worker restarts).
async function outage(reason) {
  const stored = await chrome.storage.session.get("pricewatch_alerts_outage");
  if (!stored.pricewatch_alerts_outage) {
    console.warn(`pricewatch: cannot fetch alerts, trying again at the next alarm: ${reason}`);
    await chrome.storage.session.set({ pricewatch_alerts_outage: { since: Date.now(), reason } });
  }
}

async function outageOver() {
  await chrome.storage.session.remove("pricewatch_alerts_outage");
}

/// An alert from the feed, or null when its fields are not what API.md
/// says (skipped rather than shown half-broken; the cursor still moves
/// past it).
function validAlert(a) {
  if (!a || typeof a !== "object") return null;
  const price = (v) => (v === null || v === undefined ? null : Number.isSafeInteger(v) && v >= 0 ? v : undefined);
  const alert = {
    id: a.id,
    watch_id: a.watch_id,
    asin: a.asin,
    marketplace: a.marketplace,
    condition: typeof a.condition === "string" ? a.condition : "new",
    kind: a.kind,
    old_price_minor: price(a.old_price_minor),
    new_price_minor: price(a.new_price_minor),
    currency: a.currency,
    created_at: Number.isSafeInteger(a.created_at) ? a.created_at : Date.now(),
  };
  if (!Number.isSafeInteger(alert.id) || alert.id <= 0) return null;
  if (!MARKETPLACE.test(String(alert.marketplace)) || !ASIN.test(String(alert.asin))) return null;
  if (!KINDS.has(alert.kind) || !CURRENCY.test(String(alert.currency))) return null;
  if (alert.old_price_minor === undefined || alert.new_price_minor === undefined) return null;
  return alert;
}

/// Product titles from the public summary, one request per product; the
/// ASIN stands in when the backend has no title or does not answer.
async function productTitles(base, alerts) {
  const titles = new Map();
  for (const a of alerts) {
    const k = `${a.marketplace}/${a.asin}`;
    if (titles.has(k)) continue;
    let title = null;
    try {
      const { response, body } = await fetchJson(`${base}/v1/products/${k}`, { method: "GET" });
      if (response.status === 200 && body && typeof body.title === "string" && body.title.trim()) title = body.title.trim();
    } catch {
      title = null; // the alert is still worth showing without its title
    }
    titles.set(k, title);
  }
  return titles;
}

/// Moves the cursor (to `lastId`, the page's highest id, valid or not) and
/// the recent list together; returns the entries that were not seen before
/// (id above the stored cursor).
async function record(scope, entries, lastId) {
  return tx(["kv"], "readwrite", async (s, p) => {
    const cursor = await p(s.kv.get("alerts_cursor"));
    const recent = await p(s.kv.get("alerts_recent"));
    const after = cursor && cursor.scope === scope && Number.isSafeInteger(cursor.after) ? cursor.after : 0;
    const fresh = entries.filter((e) => e.id > after).sort((x, y) => x.id - y.id);
    if (lastId > after) s.kv.put({ scope, after: lastId }, "alerts_cursor");
    if (fresh.length === 0) return [];
    const kept = recent && recent.scope === scope && Array.isArray(recent.alerts) ? recent.alerts : [];
    const alerts = fresh
      .slice()
      .reverse()
      .concat(kept)
      .slice(0, RECENT_KEEP);
    s.kv.put({ scope, alerts }, "alerts_recent");
    return fresh;
  });
}

// ---------------------------------------------------------------------
// Texts.

/// An exact decimal string of `minor` units with `digits` fraction digits
/// (string arithmetic: no float ever holds the price).
function decimalString(minor, digits) {
  if (digits <= 0) return String(minor);
  const s = String(minor).padStart(digits + 1, "0");
  return `${s.slice(0, -digits)}.${s.slice(-digits)}`;
}

/// `minor` formatted the way the marketplace shows prices.
export function formatPrice(minor, currency, marketplace) {
  if (minor === null || minor === undefined) return null;
  const locale = LOCALES[marketplace] || "en-US";
  let format;
  try {
    format = new Intl.NumberFormat(locale, { style: "currency", currency });
  } catch {
    return `${decimalString(minor, 2)} ${currency}`;
  }
  const digits = format.resolvedOptions().maximumFractionDigits;
  // Intl.NumberFormat formats decimal strings exactly (Chrome 106+).
  return format.format(decimalString(minor, digits));
}

export function productUrl(marketplace, asin) {
  return `https://www.${marketplace}/dp/${asin}`;
}

/// The stored entry for an alert: its fields, the product's title and URL,
/// and the notification's headline and message.
function describe(alert, title) {
  const name = title || alert.asin;
  const fmt = (minor) => formatPrice(minor, alert.currency, alert.marketplace);
  const now = fmt(alert.new_price_minor);
  const before = fmt(alert.old_price_minor);
  let headline;
  let message;
  switch (alert.kind) {
    case "correction":
      headline = `Correction: ${name}`;
      message =
        `An earlier alert's price${before ? ` (${before})` : ""} was wrong. ` +
        (now ? `The verified price is ${now}.` : "The price could not be verified.");
      break;
    case "back_in_stock":
      headline = `Back in stock: ${name}`;
      message = now ? `Available again at ${now}.` : "Available again.";
      break;
    case "target_reached":
      headline = `Target price reached: ${name}`;
      message = `Now ${now ?? "?"}${before ? ` (was ${before})` : ""}.`;
      break;
    default:
      headline = `Price drop: ${name}`;
      message = `Now ${now ?? "?"}${before ? ` (was ${before})` : ""}.`;
  }
  return {
    ...alert,
    title,
    url: productUrl(alert.marketplace, alert.asin),
    headline,
    message,
    new_price: now,
    old_price: before,
  };
}

// ---------------------------------------------------------------------
// Notifications.

function iconUrl() {
  return chrome.runtime.getURL("icons/icon-128.png");
}

async function show(entries) {
  if (entries.length === 0) return;
  const created = [];
  if (entries.length > GROUP_OVER) {
    const last = entries[entries.length - 1];
    const id = `${GROUP_PREFIX}${last.id}`;
    const options = {
      type: "list",
      iconUrl: iconUrl(),
      title: `${entries.length} price alerts`,
      message: "Open the list of your recent alerts.",
      items: entries.map((e) => ({ title: e.headline, message: e.message })),
      priority: 1,
    };
    await chrome.notifications.create(id, options);
    created.push({ id, title: options.title, message: options.message, items: options.items, url: chrome.runtime.getURL("popup.html") });
  } else {
    for (const e of entries) {
      const id = `${ALERT_PREFIX}${e.id}|${e.marketplace}|${e.asin}`;
      const options = {
        type: "basic",
        iconUrl: iconUrl(),
        title: e.headline,
        message: e.message,
        contextMessage: e.marketplace,
        priority: e.kind === "correction" ? 2 : 1,
      };
      await chrome.notifications.create(id, options);
      created.push({ id, alertId: e.id, kind: e.kind, title: options.title, message: options.message, url: e.url });
    }
  }
  const stored = await chrome.storage.session.get(NOTIFIED_LOG);
  const at = Date.now();
  const list = (stored[NOTIFIED_LOG] || []).concat(created.map((c) => ({ at, ...c }))).slice(-NOTIFIED_KEEP);
  await chrome.storage.session.set({ [NOTIFIED_LOG]: list });
}

/// Opens what a notification points at and clears it. Returns the URL
/// opened (null for a notification that is not ours).
async function notificationClicked(id) {
  let url = null;
  if (typeof id === "string" && id.startsWith(ALERT_PREFIX)) {
    const [, , marketplace, asin] = id.split("|");
    if (MARKETPLACE.test(marketplace || "") && ASIN.test(asin || "")) url = productUrl(marketplace, asin);
  } else if (typeof id === "string" && id.startsWith(GROUP_PREFIX)) {
    url = chrome.runtime.getURL("popup.html");
  }
  if (url === null) return null;
  await chrome.tabs.create({ url });
  await chrome.notifications.clear(id);
  return url;
}

// ---------------------------------------------------------------------
// Messages.

/// {type: "alerts_recent"} -> {ok: true, data: {alerts}}: the last 50
/// alerts of the current backend and key, newest first.
export async function recentAlerts() {
  const [recent, key, base] = await Promise.all([kvGet("alerts_recent"), kvGet("registered_key"), backendUrl()]);
  const scope = `${base} ${key}`;
  const alerts = key && recent && recent.scope === scope && Array.isArray(recent.alerts) ? recent.alerts : [];
  return { ok: true, data: { alerts } };
}

/// Forgets the alert state (cursor, recent list, shown notifications):
/// "delete my data" calls it.
export async function forgetAlerts() {
  await tx(["kv"], "readwrite", (s) => {
    s.kv.delete("alerts_cursor");
    s.kv.delete("alerts_recent");
  });
  await chrome.storage.session.remove([NOTIFIED_LOG, POLLED_LOG, "pricewatch_alerts_outage"]);
  const shown = await chrome.notifications.getAll();
  await Promise.all(
    Object.keys(shown || {})
      .filter((id) => id.startsWith(ALERT_PREFIX) || id.startsWith(GROUP_PREFIX))
      .map((id) => chrome.notifications.clear(id)),
  );
}
