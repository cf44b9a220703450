// The overlay's loader in the page (a classic content script, listed before
// content.js: both share the extension's isolated world). content.js calls
// globalThis.pricewatchOverlay.show(extraction, wasmAllowed) after each
// extraction; this file owns everything the overlay puts in the page.
//
// The page gets exactly one element: a <pricewatch-overlay> host, appended
// to <body> with an inline `all: initial` and absolute (or, without a buy
// box, fixed) positioning, so it takes no space from the page's layout and
// no inherited style crosses into it. Inside it a *closed* shadow root
// holds the UI, so page scripts and page styles cannot reach in, and the
// UI's styles (all inside the root) cannot reach out. It sits just below
// the buy box, right-aligned with it, over whatever the page shows there.
//
// Normal path: the extension's wasm module (pkg/pricewatch_ext.js, which
// carries the Leptos UI too) is imported here, the instance content.js
// already started being reused, and mounted into the shadow root with a bridge whose send(message)
// goes to the service worker (sw_data.js answers).
// Fallback (the page's CSP blocks WebAssembly): an <iframe> of the
// extension page overlay.html, product in the URL fragment, sized by the
// height messages it posts.
//
// Judgement call: the overlay shows before consent too. It reads public
// data only (the product's summary and history, no key, no signature);
// watching says it needs consent.

(() => {
  "use strict";
  if (window.top !== window) return;

  const HOST_TAG = "pricewatch-overlay";
  // Where the buy box is, most specific first.
  const BUY_BOX = ["#desktop_buybox", "#buybox", "#exports_desktop_qualifiedBuybox", "#rightCol", "#ppd"];
  const GAP_PX = 8;
  const MIN_WIDTH_PX = 300;
  const MAX_WIDTH_PX = 420;
  const ASIN = /^[A-Z0-9]{10}$/;
  const MARKETPLACE = /^amazon\.[a-z.]{2,10}$/;

  let current = null; // {key, host, cleanup}
  let uiModule = null; // Promise of the initialised UI module

  function bridge() {
    return {
      send: (message) =>
        chrome.runtime.sendMessage(message).catch((err) => ({
          ok: false,
          error: { code: "unreachable", message: `the extension did not answer: ${err && err.message ? err.message : err}` },
        })),
    };
  }

  function buyBox() {
    for (const selector of BUY_BOX) {
      const el = document.querySelector(selector);
      if (el && el.getBoundingClientRect().width > 0) return el;
    }
    return null;
  }

  const BASE_STYLE = "all: initial; display: block; z-index: 2147483000; box-sizing: border-box;";

  /// Places the host below the buy box (document coordinates, whatever its
  /// containing block is), or in a fixed corner when there is none.
  function place(host) {
    const box = buyBox();
    if (!box) {
      host.style.cssText = `${BASE_STYLE} position: fixed; right: 16px; bottom: 16px; width: ${MIN_WIDTH_PX + 20}px;`;
      return;
    }
    const r = box.getBoundingClientRect();
    const width = Math.min(MAX_WIDTH_PX, Math.max(MIN_WIDTH_PX, Math.round(r.width)));
    host.style.cssText = `${BASE_STYLE} position: absolute; top: 0px; left: 0px; width: ${width}px;`;
    const origin = host.getBoundingClientRect();
    const left = Math.max(0, Math.round(r.right - width - origin.left));
    const top = Math.round(r.bottom + GAP_PX - origin.top);
    host.style.cssText = `${BASE_STYLE} position: absolute; top: ${top}px; left: ${left}px; width: ${width}px;`;
  }

  function loadUi() {
    if (!uiModule) {
      uiModule = (async () => {
        const mod = await import(chrome.runtime.getURL("pkg/pricewatch_ext.js"));
        await mod.default({ module_or_path: chrome.runtime.getURL("pkg/pricewatch_ext_bg.wasm") });
        return mod;
      })();
    }
    return uiModule;
  }

  function remove() {
    if (!current) return;
    current.cleanup();
    current.host.remove();
    current = null;
  }

  /// Shows the overlay of the extraction's product (once per product; a
  /// variation with another ASIN replaces it).
  async function show(extraction, wasmAllowed) {
    if (!extraction || extraction.page !== "product") return;
    const { asin, marketplace } = extraction;
    if (typeof asin !== "string" || !ASIN.test(asin) || typeof marketplace !== "string" || !MARKETPLACE.test(marketplace)) return;
    const key = `${marketplace}/${asin}`;
    if (current && current.key === key) return;
    remove();

    const host = document.createElement(HOST_TAG);
    place(host);
    const shadow = host.attachShadow({ mode: "closed" });
    const cleanups = [];
    (document.body || document.documentElement).appendChild(host);
    place(host);
    const replace = () => place(host);
    window.addEventListener("resize", replace);
    cleanups.push(() => window.removeEventListener("resize", replace));
    const box = buyBox();
    if (box && typeof ResizeObserver === "function") {
      const ro = new ResizeObserver(replace);
      ro.observe(box);
      if (document.body) ro.observe(document.body);
      cleanups.push(() => ro.disconnect());
    }
    current = { key, host, cleanup: () => cleanups.forEach((f) => f()) };
    host.setAttribute("data-pricewatch-overlay", wasmAllowed ? "shadow" : "iframe");

    if (wasmAllowed) {
      const mount = document.createElement("div");
      shadow.appendChild(mount);
      try {
        const ui = await loadUi();
        if (!current || current.host !== host) return; // replaced meanwhile
        ui.mount_overlay(mount, bridge(), marketplace, asin);
        host.setAttribute("data-pricewatch-mounted", "1");
      } catch (err) {
        console.error(`pricewatch: the overlay could not start: ${err && err.stack ? err.stack : err}`);
        remove();
      }
      return;
    }

    // Fallback: the same UI in an extension page.
    const frame = document.createElement("iframe");
    const fragment = new URLSearchParams({ marketplace, asin }).toString();
    frame.src = `${chrome.runtime.getURL("overlay.html")}#${fragment}`;
    frame.title = "pricewatch price history";
    frame.setAttribute("scrolling", "no");
    frame.style.cssText = "all: initial; display: block; border: 0; width: 100%; height: 60px; color-scheme: normal;";
    const onMessage = (event) => {
      if (event.source !== frame.contentWindow) return;
      const h = event.data && event.data.pricewatchOverlayHeight;
      if (Number.isFinite(h) && h > 0 && h < 5000) frame.style.height = `${Math.ceil(h)}px`;
    };
    window.addEventListener("message", onMessage);
    cleanups.push(() => window.removeEventListener("message", onMessage));
    shadow.appendChild(frame);
    host.setAttribute("data-pricewatch-mounted", "1");
  }

  /// Whether a MutationObserver record is only the overlay's own host
  /// coming or going (content.js ignores those).
  function isOwnRecord(record) {
    if (record.type !== "childList") return false;
    const nodes = [...record.addedNodes, ...record.removedNodes];
    return nodes.length > 0 && nodes.every((n) => n.nodeName === HOST_TAG.toUpperCase());
  }

  globalThis.pricewatchOverlay = { show, isOwnRecord };
})();
