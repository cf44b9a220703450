// Smoke test of the built extension: its service worker registers, runs
// the wasm core, and leaves the `pricewatch_ready` marker in storage.
//
// With PRICEWATCH_SMOKE_THROW=1 it also throws an uncaught error inside the
// service worker, so the test can check that such errors reach the
// collected console errors (the harness would be blind otherwise).

"use strict";

const { run, waitFor } = require("./harness.cjs");

run(async ({ serviceWorker, extensionId, errors }) => {
  const stored = await waitFor(
    "the service worker's pricewatch_ready marker",
    async () => {
      const s = await serviceWorker.evaluate(() =>
        chrome.storage.local.get(["pricewatch_ready", "pricewatch_backend"]),
      );
      return s.pricewatch_ready ? s : null;
    },
    { timeoutMs: 15000 },
  );
  if (process.env.PRICEWATCH_SMOKE_THROW === "1") {
    await serviceWorker.evaluate(() => {
      setTimeout(() => {
        throw new Error("pricewatch-smoke-selftest");
      }, 0);
    });
    await waitFor("the thrown error in the console", async () =>
      errors.some((e) => e.includes("pricewatch-smoke-selftest")),
    );
  }
  return {
    extensionId,
    serviceWorkerUrl: serviceWorker.url(),
    ready: stored.pricewatch_ready,
    backend: stored.pricewatch_backend,
  };
});
