// Options page: consent, pause/resume, backend URL, delete my data. All
// state lives in the service worker's IndexedDB; this page only sends
// messages (the worker accepts setting changes from extension pages only).
"use strict";

const $ = (id) => document.getElementById(id);
const ask = (message) => chrome.runtime.sendMessage(message);

async function refresh() {
  const s = await ask({ type: "status" });
  if (!s || !s.ok) {
    $("state").textContent = "The extension's worker did not answer.";
    return;
  }
  $("state").textContent = !s.consent
    ? "Reporting is off: you have not agreed yet."
    : s.paused
      ? "Reporting is paused."
      : `Reporting is on (${s.queued} report(s) waiting to be sent).`;
  $("consent").hidden = s.consent;
  $("pause").hidden = !s.consent;
  $("pause").textContent = s.paused ? "Resume reporting" : "Pause reporting";
  $("pause").dataset.paused = String(s.paused);
  $("backend-url").value = s.backendUrl;
  $("backend-url").placeholder = s.defaultBackendUrl;
  document.body.dataset.ready = "1";
}

$("consent").addEventListener("click", async () => {
  await ask({ type: "consent" });
  await refresh();
});

$("pause").addEventListener("click", async () => {
  await ask({ type: "set_paused", paused: $("pause").dataset.paused !== "true" });
  await refresh();
});

$("backend-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const url = $("backend-url").value.trim();
  let origin;
  try {
    origin = new URL(url).origin;
  } catch {
    $("backend-note").textContent = "Not a URL.";
    return;
  }
  // A backend on another origin needs a host permission: ask now, while
  // we hold the click's user gesture.
  const granted = await chrome.permissions.request({ origins: [`${origin}/*`] });
  if (!granted) {
    $("backend-note").textContent = `Permission to reach ${origin} was not granted; keeping the old backend.`;
    return;
  }
  const answer = await ask({ type: "set_backend_url", url });
  $("backend-note").textContent = answer.ok ? `Saved: ${answer.backendUrl}` : `Not saved: ${answer.error}`;
  await refresh();
});

$("backend-reset").addEventListener("click", async () => {
  const answer = await ask({ type: "set_backend_url", url: "" });
  $("backend-note").textContent = answer.ok ? `Using ${answer.backendUrl}` : answer.error;
  await refresh();
});

$("delete").addEventListener("click", async () => {
  $("delete-note").textContent = "Deleting…";
  const answer = await ask({ type: "delete_my_data" });
  $("delete-note").textContent = answer.ok ? "Deleted." : `Not deleted: ${answer.error}`;
  document.body.dataset.deleted = answer.ok ? "1" : "0";
  await refresh();
});

refresh();
