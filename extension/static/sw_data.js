// The overlay's data path: the service worker answers the UI's messages
// (the in-page overlay through content.js, the iframe fallback's
// overlay.html directly). The UI never fetches: all backend I/O is here.
//
// Contract (every answer is {ok: true, data} or
// {ok: false, error: {code, message}}):
//   {type: "product", marketplace, asin}            -> API.md summary
//   {type: "history", marketplace, asin, condition, range}
//                                                   -> API.md history
//   {type: "watches"}                               -> {watches} (signed)
//   {type: "watch_create", watch}                   -> the watch (signed)
//   {type: "watch_update", id, watch}               -> the watch (signed)
//   {type: "watch_delete", id}                      -> {} (signed)
//   {type: "ui_pref_get"}                           -> {collapsed, backend}
//   {type: "ui_pref_set", collapsed}                -> {collapsed}
// Error codes: "not_found" (404), "unreachable" (network), "no_consent"
// (signed requests before onboarding consent), "bad_request" (a malformed
// message, refused before any request), "http_<status>" otherwise; the
// backend's own error message is passed on.
//
// Judgement call: these messages are accepted from content scripts too.
// They only read public data or act on the user's own watches, and a page
// cannot send runtime messages itself (no externally_connectable); the
// settings and data-deletion messages stay extension-page only.

import { kvGet, kvSet } from "./db.js";
import { backendUrl, fetchJson, signedFetch, SignedError } from "./sw_signed.js";

const TYPES = new Set([
  "product",
  "history",
  "watches",
  "watch_create",
  "watch_update",
  "watch_delete",
  "ui_pref_get",
  "ui_pref_set",
]);
const RANGES = new Set(["1d", "1w", "1m", "3m", "1y", "all"]);
const CONDITIONS = new Set(["new", "used", "refurbished"]);
const MARKETPLACE = /^(?:amazon\.)[a-z.]{2,10}$/;
const ASIN = /^[A-Z0-9]{10}$/;
const WATCH_ID = /^[0-9]{1,18}$/;

export function isDataMessage(type) {
  return TYPES.has(type);
}

function fail(code, message) {
  return { ok: false, error: { code, message } };
}

function badRequest(message) {
  return fail("bad_request", message);
}

/// Maps a backend answer onto the contract.
function answer(status, body, okStatuses) {
  if (okStatuses.includes(status)) return { ok: true, data: body ?? {} };
  const message = body && body.error && typeof body.error.message === "string" ? body.error.message : `HTTP ${status}`;
  return fail(status === 404 ? "not_found" : `http_${status}`, message);
}

function product(message) {
  const marketplace = String(message.marketplace || "");
  const asin = String(message.asin || "");
  if (!MARKETPLACE.test(marketplace)) return { error: badRequest("marketplace must be an Amazon domain like amazon.com") };
  if (!ASIN.test(asin)) return { error: badRequest("asin must be 10 capital letters or digits") };
  return { path: `${encodeURIComponent(marketplace)}/${encodeURIComponent(asin)}` };
}

async function publicGet(pathAndQuery) {
  const base = await backendUrl();
  let result;
  try {
    result = await fetchJson(`${base}${pathAndQuery}`, { method: "GET" });
  } catch (err) {
    return fail("unreachable", `the pricewatch server at ${base} cannot be reached (${err && err.message ? err.message : err})`);
  }
  return answer(result.response.status, result.body, [200]);
}

async function signed(method, pathAndQuery, body, okStatuses) {
  try {
    const { status, body: answerBody } = await signedFetch(method, pathAndQuery, body);
    return answer(status, answerBody, okStatuses);
  } catch (err) {
    if (err instanceof SignedError) return fail(err.code, err.message);
    throw err;
  }
}

/// The watch body sent to the backend: only the fields API.md names, so a
/// page cannot smuggle anything else through the overlay.
function watchBody(watch) {
  if (!watch || typeof watch !== "object") return { error: badRequest("watch must be an object") };
  const p = product(watch);
  if (p.error) return p;
  const condition = String(watch.condition || "new");
  if (!CONDITIONS.has(condition)) return { error: badRequest(`unknown condition ${condition}`) };
  const body = { asin: watch.asin, marketplace: watch.marketplace, condition, channels: {} };
  if (watch.target_price_minor !== undefined && watch.target_price_minor !== null) {
    if (!Number.isSafeInteger(watch.target_price_minor)) return { error: badRequest("target_price_minor must be an integer") };
    body.target_price_minor = watch.target_price_minor;
  }
  if (watch.drop_percent !== undefined && watch.drop_percent !== null) {
    if (!Number.isSafeInteger(watch.drop_percent)) return { error: badRequest("drop_percent must be an integer") };
    body.drop_percent = watch.drop_percent;
  }
  const ch = watch.channels && typeof watch.channels === "object" ? watch.channels : {};
  body.channels.extension = Boolean(ch.extension);
  if (typeof ch.email === "string" && ch.email !== "") body.channels.email = ch.email;
  if (typeof ch.webhook === "string" && ch.webhook !== "") body.channels.webhook = ch.webhook;
  return { body };
}

/// Answers one overlay message; never throws for bad input.
export async function handleDataMessage(message) {
  switch (message.type) {
    case "product": {
      const p = product(message);
      if (p.error) return p.error;
      return publicGet(`/v1/products/${p.path}`);
    }
    case "history": {
      const p = product(message);
      if (p.error) return p.error;
      const condition = String(message.condition || "new");
      const range = String(message.range || "3m");
      if (!CONDITIONS.has(condition)) return badRequest(`unknown condition ${condition}`);
      if (!RANGES.has(range)) return badRequest(`unknown range ${range}`);
      return publicGet(`/v1/products/${p.path}/history?condition=${condition}&range=${range}`);
    }
    case "watches":
      return signed("GET", "/v1/watches", undefined, [200]);
    case "watch_create": {
      const w = watchBody(message.watch);
      if (w.error) return w.error;
      return signed("POST", "/v1/watches", w.body, [200, 201]);
    }
    case "watch_update": {
      const id = String(message.id ?? "");
      if (!WATCH_ID.test(id)) return badRequest("id must be a watch id");
      const w = watchBody(message.watch);
      if (w.error) return w.error;
      return signed("PUT", `/v1/watches/${id}`, w.body, [200]);
    }
    case "watch_delete": {
      const id = String(message.id ?? "");
      if (!WATCH_ID.test(id)) return badRequest("id must be a watch id");
      return signed("DELETE", `/v1/watches/${id}`, undefined, [200, 204]);
    }
    case "ui_pref_get": {
      const prefs = (await kvGet("ui_prefs")) || {};
      // The backend URL rides along: the overlay links to its /p/ page.
      return { ok: true, data: { collapsed: Boolean(prefs.collapsed), backend: await backendUrl() } };
    }
    case "ui_pref_set": {
      const prefs = (await kvGet("ui_prefs")) || {};
      prefs.collapsed = Boolean(message.collapsed);
      await kvSet("ui_prefs", prefs);
      return { ok: true, data: { collapsed: prefs.collapsed } };
    }
    default:
      return badRequest(`unknown message type ${message.type}`);
  }
}
