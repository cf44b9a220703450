// The service worker's key and signed-request code, shared by its modules
// (service_worker.js, sw_data.js for the overlay, the popup's alerts).
//
// Stable API (other modules import these names; keep them):
//   ready                 Promise: the wasm core (pkg/pricewatch_ext.js) is
//                         initialised; await it before calling its exports.
//   backendUrl()          the backend URL: options override, else the build's.
//   randomBytes(n)        n random bytes (Uint8Array).
//   seed()                the key seed (32 bytes), generated on first use.
//   consentGiven()        true once onboarding consent was given.
//   fetchJson(url, init)  fetch + JSON body: {response, body} (body null
//                         when not JSON); throws on network failure.
//   retryAfterMs(response)
//   ensureRegistered(base, keySeed)
//                         registers the key with the proof of work unless
//                         this backend already knows it.
//   signedFetch(method, pathAndQuery, bodyObject?)
//                         a request signed per PROTOCOL.md §3 (consent
//                         checked, key registered first). Resolves with
//                         {status, body} (body: parsed JSON or null); rejects
//                         with a SignedError whose `code` is "no_consent" or
//                         "unreachable" (network failure, or the key could
//                         not be registered).
//
// Nothing here keeps state in globals but the wasm module itself: the
// worker dies after 30 s idle.

import init, { pow_slice, public_key, registration_json, sign_request } from "./pkg/pricewatch_ext.js";
import { BACKEND_URL } from "./config.js";
import { kvGet, kvSet, kvDelete, tx } from "./db.js";

const POW_SLICE = 20000;

/// The wasm core, initialised once per worker life. No top-level await
/// (service worker modules may not use it): callers await `ready`.
export const ready = init({ module_or_path: chrome.runtime.getURL("pkg/pricewatch_ext_bg.wasm") });

/// A signed request that could not be made; `code` is one of the overlay
/// contract's error codes ("no_consent", "unreachable").
export class SignedError extends Error {
  constructor(code, message) {
    super(message);
    this.name = "SignedError";
    this.code = code;
  }
}

/// The backend URL: the options page's override first, else the build's.
export async function backendUrl() {
  return (await kvGet("backend_url")) || BACKEND_URL;
}

export function randomBytes(n) {
  return crypto.getRandomValues(new Uint8Array(n));
}

/// The key seed, generated on first use (32 random bytes). The get and the
/// put run in one readwrite transaction, so two events racing here cannot
/// make two keys.
export async function seed() {
  return tx(["kv"], "readwrite", async (s, p) => {
    const existing = await p(s.kv.get("seed"));
    if (existing instanceof Uint8Array && existing.length === 32) return existing;
    const fresh = randomBytes(32);
    s.kv.put(fresh, "seed");
    return fresh;
  });
}

export async function consentGiven() {
  const consent = await kvGet("consent");
  return Boolean(consent && consent.given);
}

export async function fetchJson(url, init) {
  const response = await fetch(url, { ...init, credentials: "omit", cache: "no-store" });
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  return { response, body };
}

export function retryAfterMs(response) {
  const value = response.headers.get("retry-after");
  if (!value) return undefined;
  const secs = Number(value);
  if (Number.isFinite(secs) && secs >= 0) return Math.max(1000, secs * 1000);
  const date = Date.parse(value);
  return Number.isFinite(date) ? Math.max(1000, date - Date.now()) : undefined;
}

/// Registers the key with the proof of work (difficulty from /v1/config).
/// The work runs in slices with a yield between them, so the worker keeps
/// answering events; progress is kept so a killed worker resumes.
export async function ensureRegistered(base, keySeed) {
  await ready;
  const key = public_key(keySeed);
  if ((await kvGet("registered_key")) === key) return true;
  const { response, body } = await fetchJson(`${base}/v1/config`);
  if (!response.ok || !body || typeof body.pow_difficulty !== "number") {
    throw new Error(`GET /v1/config answered ${response.status}`);
  }
  const progress = await kvGet("pow_progress");
  let start = progress && progress.key === key && progress.difficulty === body.pow_difficulty ? progress.start : 0;
  let pow;
  for (;;) {
    pow = pow_slice(key, body.pow_difficulty, start, POW_SLICE);
    if (pow !== undefined) break;
    start += POW_SLICE;
    if (start > 0xffffffff - POW_SLICE) throw new Error("proof of work found no solution");
    if (start % (POW_SLICE * 10) === 0) await kvSet("pow_progress", { key, difficulty: body.pow_difficulty, start });
    await new Promise((r) => setTimeout(r, 0));
  }
  const registration = await fetchJson(`${base}/v1/keys`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: registration_json(keySeed, pow),
  });
  if (registration.response.status !== 200 && registration.response.status !== 201) {
    throw new Error(`POST /v1/keys answered ${registration.response.status}: ${JSON.stringify(registration.body)}`);
  }
  await kvSet("registered_key", key);
  await kvDelete("pow_progress");
  return true;
}

/// A request signed by the user's key (PROTOCOL.md §3). Needs consent: a
/// key acts for the user only after onboarding. `pathAndQuery` is signed
/// exactly as sent. A 401/403 `unregistered_key` answer forgets the
/// registration so the next call registers again.
export async function signedFetch(method, pathAndQuery, bodyObject) {
  if (!(await consentGiven())) {
    throw new SignedError("no_consent", "the user has not given consent in the onboarding page");
  }
  await ready;
  const base = await backendUrl();
  const keySeed = await seed();
  try {
    await ensureRegistered(base, keySeed);
  } catch (err) {
    throw new SignedError("unreachable", `registering the key: ${err && err.message ? err.message : err}`);
  }
  const bytes = bodyObject === undefined ? new Uint8Array(0) : new TextEncoder().encode(JSON.stringify(bodyObject));
  const headers = JSON.parse(sign_request(keySeed, method, pathAndQuery, Date.now(), randomBytes(16), bytes));
  if (bodyObject !== undefined) headers["content-type"] = "application/json";
  let answer;
  try {
    answer = await fetchJson(`${base}${pathAndQuery}`, {
      method,
      headers,
      body: bodyObject === undefined ? undefined : bytes,
    });
  } catch (err) {
    throw new SignedError("unreachable", `${method} ${pathAndQuery}: ${err && err.message ? err.message : err}`);
  }
  const { response, body } = answer;
  if ((response.status === 401 || response.status === 403) && body && body.error && body.error.code === "unregistered_key") {
    await kvDelete("registered_key");
  }
  return { status: response.status, body };
}
