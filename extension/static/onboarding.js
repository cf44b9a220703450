// Onboarding page: asks for consent; the service worker stores it.
"use strict";
document.getElementById("accept").addEventListener("click", async () => {
  const answer = await chrome.runtime.sendMessage({ type: "consent" });
  const error = document.getElementById("error");
  if (answer && answer.ok) {
    document.getElementById("done").hidden = false;
    document.getElementById("accept").disabled = true;
    document.body.dataset.consent = "given";
  } else {
    error.textContent = `Could not save your consent: ${answer ? answer.error : "no answer"}`;
    error.hidden = false;
  }
});
