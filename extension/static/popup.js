// The toolbar popup's loader (an extension page: it may message the
// service worker and ask for permissions itself). Loads the extension's
// wasm (pkg/, which carries the UI) and mounts the Leptos popup
// (pricewatch_ui::popup::mount_popup, re-exported by the module) with the bridge every pricewatch UI
// gets: the Rust side never calls chrome.* directly.
//
// Bridge:
//   send(message)          -> Promise of the service worker's answer
//   requestOrigin(origin)  -> Promise<bool>: asks for the host permission
//                             of a new backend URL; must run inside the
//                             click (user gesture), as on the options page.

import init, { mount_popup } from "./pkg/pricewatch_ext.js";

const root = document.getElementById("pw-popup-root");
const bridge = {
  send: (message) => chrome.runtime.sendMessage(message),
  requestOrigin: (origin) => chrome.permissions.request({ origins: [`${origin}/*`] }),
};

init({ module_or_path: chrome.runtime.getURL("pkg/pricewatch_ext_bg.wasm") })
  .then(() => mount_popup(root, bridge))
  .catch((err) => {
    console.error(`pricewatch: the popup could not start: ${err && err.stack ? err.stack : err}`);
    root.textContent = "pricewatch could not start its popup.";
  });
