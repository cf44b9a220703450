// The extension's service worker (a module: static imports only, MV3
// forbids dynamic import() here).
//
// Chrome kills the worker after 30 s idle and restarts it on the next
// event, so everything is registered at top level and no state lives in
// globals. Errors are reported with console.error: uncaught errors in a
// service worker are not reported to test drivers otherwise, and the
// end-to-end tests fail on any console error.

import init, { core_version } from "./pkg/pricewatch_ext.js";
import { BACKEND_URL } from "./config.js";

self.addEventListener("error", (event) => {
  console.error("pricewatch service worker error:", event.message, event.filename, event.lineno);
});
self.addEventListener("unhandledrejection", (event) => {
  console.error("pricewatch service worker unhandled rejection:", String(event.reason && event.reason.stack || event.reason));
});

// Initialise the wasm core, then leave a marker that says this worker runs
// the wasm: the smoke test reads `pricewatch_ready` back (it is the core's
// version). No top-level await: service worker modules may not use it.
// Handlers added later await `ready` before they touch the core.
const ready = init({ module_or_path: chrome.runtime.getURL("pkg/pricewatch_ext_bg.wasm") })
  .then(() => chrome.storage.local.set({ pricewatch_ready: core_version(), pricewatch_backend: BACKEND_URL }))
  .catch((err) => {
    console.error("pricewatch: the wasm core failed to start:", String(err && err.stack || err));
  });

