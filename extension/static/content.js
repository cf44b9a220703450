// Content script: a thin loader (classic script; content scripts cannot
// be modules, dynamic import() works).
//
// 1. Checks whether the page lets WebAssembly run: a page CSP whose
//    script-src lacks 'wasm-unsafe-eval' blocks it in content scripts too.
// 2. Normal path: imports the wasm-bindgen module from the extension and
//    runs the extraction rules on the live DOM (wasm-core, feature `dom`),
//    timing it with performance.now(); sends the extracted fields to the
//    service worker.
// 3. Fallback: sends the page's HTML and URL to the service worker, which
//    runs the same rules on the HTML.
// Only the service worker talks to the backend, and it sends extracted
// fields only (never this URL).
//
// It re-extracts when the buy box changes (a variation or another offer
// chosen): a debounced MutationObserver. The service worker dedupes.
//
// For the benchmark and tests, the last extraction's time and path are
// left on <html> as data-pricewatch-extract-ms / data-pricewatch-path,
// and the module start's warm-up time as data-pricewatch-warmup-ms
// (attributes only; the page's layout is untouched). The extraction time
// is that of extract_live alone: the live-DOM rules and the JSON result.

(() => {
  "use strict";
  if (window.top !== window) return;
  const DEBOUNCE_MS = 250;
  const root = document.documentElement;

  function wasmAllowed() {
    try {
      new WebAssembly.Module(new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]));
      return true;
    } catch {
      return false;
    }
  }

  function send(message) {
    return chrome.runtime.sendMessage(message).catch((err) => {
      // The extension was reloaded under this page: nothing to report to.
      console.warn(`pricewatch: ${err && err.message ? err.message : err}`);
      return null;
    });
  }

  // The price history overlay (overlay_mount.js, loaded before this file):
  // shown after the extraction; it never delays or breaks reporting.
  function showOverlay(extraction, wasmAllowed) {
    const overlay = globalThis.pricewatchOverlay;
    if (!overlay) return;
    overlay.show(extraction, wasmAllowed).catch((err) => console.error(`pricewatch: overlay: ${err && err.stack ? err.stack : err}`));
  }

  let extractor = null; // () => Promise<void>
  const wasmPath = wasmAllowed();

  if (wasmPath) {
    const loaded = (async () => {
      const mod = await import(chrome.runtime.getURL("pkg/pricewatch_ext.js"));
      await mod.default({ module_or_path: chrome.runtime.getURL("pkg/pricewatch_ext_bg.wasm") });
      // Module start, not extraction: the browser compiles wasm functions
      // on their first call, so the rules run once on a small built-in
      // page in a separate inert document (the page's own DOM untouched).
      const w0 = performance.now();
      mod.warm_up();
      root.setAttribute("data-pricewatch-warmup-ms", (performance.now() - w0).toFixed(3));
      return mod;
    })();
    extractor = async () => {
      const mod = await loaded;
      const t0 = performance.now();
      const json = mod.extract_live(location.href);
      const ms = performance.now() - t0;
      root.setAttribute("data-pricewatch-path", "wasm");
      root.setAttribute("data-pricewatch-extract-ms", ms.toFixed(3));
      const extraction = JSON.parse(json);
      const answer = await send({ type: "extraction", extraction });
      root.setAttribute("data-pricewatch-reported", String(answer ? (answer.queued ?? 0) : "error"));
      showOverlay(extraction, true);
    };
  } else {
    extractor = async () => {
      const answer = await send({ type: "page_html", html: root.outerHTML, url: location.href });
      root.setAttribute("data-pricewatch-path", "fallback");
      root.setAttribute("data-pricewatch-reported", String(answer ? (answer.queued ?? 0) : "error"));
      if (answer && answer.extraction) showOverlay(answer.extraction, false);
    };
  }

  let running = Promise.resolve();
  let count = 0;
  function run() {
    running = running
      .then(extractor)
      .catch((err) => console.error(`pricewatch: extraction failed: ${err && err.stack ? err.stack : err}`))
      .finally(() => {
        count += 1;
        root.setAttribute("data-pricewatch-runs", String(count));
      });
  }

  run();

  // Re-extract when the buy box or the price blocks change.
  let timer = null;
  const observer = new MutationObserver((records) => {
    // Our own attributes on <html> are not a page change.
    // Nor is the overlay's host element coming or going.
    const overlay = globalThis.pricewatchOverlay;
    if (records.every((r) => (r.target === root && r.type === "attributes") || (overlay && overlay.isOwnRecord(r)))) return;
    clearTimeout(timer);
    timer = setTimeout(run, DEBOUNCE_MS);
  });
  const watched = ["#centerCol", "#rightCol", "#buybox", "#ppd", "#corePriceDisplay_desktop_feature_div"]
    .map((s) => document.querySelector(s))
    .filter((el, i, all) => el && !all.slice(0, i).some((o) => o && o.contains(el)));
  const targets = watched.length ? watched : [document.body];
  for (const el of targets) {
    if (el) observer.observe(el, { subtree: true, childList: true, characterData: true, attributes: true, attributeFilter: ["value", "class"] });
  }
})();
