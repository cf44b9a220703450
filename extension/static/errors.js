// Error reporting for the service worker. Import it first: its top level
// installs the global `error` / `unhandledrejection` listeners before any
// other module runs.
//
// Every error goes to console.error, and the last few are also kept in
// chrome.storage.session (memory only, not readable by content scripts)
// under `pricewatch_errors`: test drivers attach to a service worker only
// after it started, so what it logged while starting would otherwise be
// lost; the end-to-end tests read this list and fail on any entry. Keeping
// it is best effort: two errors at the same instant may keep only one.

const KEY = "pricewatch_errors";
const KEEP = 20;

function describe(err) {
  if (err instanceof Error) return err.stack || `${err.name}: ${err.message}`;
  return String(err);
}

/// Logs an error with what was being done, and keeps it for diagnostics.
export function reportError(what, err) {
  const text = `${what}: ${describe(err)}`;
  console.error(`pricewatch: ${text}`);
  chrome.storage.session
    .get(KEY)
    .then((stored) => {
      const list = (stored[KEY] || []).concat([{ at: Date.now(), text }]).slice(-KEEP);
      return chrome.storage.session.set({ [KEY]: list });
    })
    .catch(() => {});
}

self.addEventListener("error", (event) => {
  reportError(`uncaught error at ${event.filename}:${event.lineno}`, event.error ?? event.message);
});
self.addEventListener("unhandledrejection", (event) => {
  reportError("unhandled promise rejection", event.reason);
});
