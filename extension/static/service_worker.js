// The extension's service worker (a module: static imports only, MV3
// forbids dynamic import() here).
//
// Chrome kills the worker after 30 s idle and restarts it on the next
// event, so listeners are registered at top level and no state lives in
// globals. errors.js comes first: it installs the error listeners.

import { reportError } from "./errors.js";
import init, { core_version } from "./pkg/pricewatch_ext.js";
import { BACKEND_URL } from "./config.js";

// Initialise the wasm core, then leave a marker that says this worker runs
// the wasm: the smoke test reads `pricewatch_ready` back (the core's
// version). No top-level await: service worker modules may not use it, so
// handlers added later await `ready` before they touch the core.
const ready = init({ module_or_path: chrome.runtime.getURL("pkg/pricewatch_ext_bg.wasm") })
  .then(() => chrome.storage.local.set({ pricewatch_ready: core_version(), pricewatch_backend: BACKEND_URL }))
  .catch((err) => reportError("starting the wasm core", err));
