// Loader of overlay.html, the iframe fallback of the in-page overlay (the
// shop page's CSP blocks WebAssembly in the content script). This is an
// extension page: it loads the UI wasm itself and its bridge messages the
// service worker directly, so the Rust side is the same as in the page.
//
// The product comes in the URL fragment (#marketplace=amazon.com&asin=...),
// never the shop page's URL. The page's height goes to the parent as
// {pricewatchOverlayHeight} messages, so the content script sizes the
// iframe to fit (the height is all it learns).

import init, { mount_overlay } from "./pkg/pricewatch_ext.js";

const ASIN = /^[A-Z0-9]{10}$/;
const MARKETPLACE = /^amazon\.[a-z.]{2,10}$/;

const root = document.getElementById("pw-overlay-root");
const params = new URLSearchParams(location.hash.slice(1));
const marketplace = params.get("marketplace") || "";
const asin = params.get("asin") || "";

const bridge = {
  send: (message) =>
    chrome.runtime.sendMessage(message).catch((err) => ({
      ok: false,
      error: { code: "unreachable", message: `the extension did not answer: ${err && err.message ? err.message : err}` },
    })),
};

// The parent is the shop page: tell it our height (and nothing else).
const parentOrigin = location.ancestorOrigins && location.ancestorOrigins.length ? location.ancestorOrigins[0] : "*";
function postHeight() {
  const height = Math.ceil(document.documentElement.getBoundingClientRect().height);
  if (window.parent !== window) window.parent.postMessage({ pricewatchOverlayHeight: height }, parentOrigin);
}
const sizeObserver = new ResizeObserver(postHeight);
sizeObserver.observe(document.documentElement);
sizeObserver.observe(document.body);

if (!ASIN.test(asin) || !MARKETPLACE.test(marketplace)) {
  root.textContent = "pricewatch: no product given.";
  console.warn(`pricewatch: overlay.html opened without a product (${location.hash})`);
} else {
  init({ module_or_path: chrome.runtime.getURL("pkg/pricewatch_ext_bg.wasm") })
    .then(() => {
      mount_overlay(root, bridge, marketplace, asin);
      document.body.dataset.mounted = "1";
    })
    .catch((err) => {
      console.error(`pricewatch: the overlay could not start: ${err && err.stack ? err.stack : err}`);
      root.textContent = "pricewatch could not start.";
    });
}
