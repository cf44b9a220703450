// Live-DOM extraction timing for tests/benches/extension_extract.rs (issue
// 7's benchmark). Environment (besides harness.cjs's):
//   PRICEWATCH_FAKE_PORT   the fake Amazon's HTTPS port
//   PRICEWATCH_PAGES       JSON list of page URLs (the corpus, served by it)
//   PRICEWATCH_REPEAT      calls per page for the repeated figure (default 10)
// Prints {"result": {"visits": [...]}, "errors": [...]} (see harness.cjs).
//
// No consent is given: nothing is reported, the content script still
// extracts and times itself. Per page:
//   ms        the content script's own first extraction on page load
//             (performance.now() around extract_live alone, as it runs for
//             every visitor; see extension/static/content.js)
//   warmupMs  its module start's warm-up (warm_up on a built-in page in a
//             separate document; not part of any extraction)
//   againMs   the re-extraction its MutationObserver runs after a buy-box
//             change
//   repeatMs  median of PRICEWATCH_REPEAT back-to-back extract_live calls,
//             made through the DevTools protocol inside the content
//             script's own world (same module instance)
// performance.now() is coarsened to 0.1 ms in pages that are not
// cross-origin isolated, Amazon's included.

"use strict";

const { run, waitFor } = require("./harness.cjs");

const port = process.env.PRICEWATCH_FAKE_PORT;
const repeat = Number(process.env.PRICEWATCH_REPEAT || 10);
const DOMAINS = ["amazon.com", "amazon.co.uk", "amazon.de", "amazon.fr", "amazon.it", "amazon.es", "amazon.nl", "amazon.se", "amazon.pl", "amazon.com.be", "amazon.ca", "amazon.com.mx", "amazon.com.br", "amazon.co.jp", "amazon.in", "amazon.com.au", "amazon.sg", "amazon.ae", "amazon.sa", "amazon.com.tr", "amazon.eg"];
// Every other host fails at once (the corpus references Amazon's CDN).
const rules = DOMAINS.flatMap((d) => [`MAP www.${d} 127.0.0.1:${port}`, `MAP ${d} 127.0.0.1:${port}`])
  .concat(["MAP * ~NOTFOUND", "EXCLUDE 127.0.0.1", "EXCLUDE localhost"])
  .join(", ");

function markers(page, runs) {
  return waitFor(
    `the content script on ${page.url()} (run ${runs})`,
    () =>
      page.evaluate((want) => {
        const root = document.documentElement;
        const n = Number(root.getAttribute("data-pricewatch-runs") || 0);
        if (n < want) return null;
        return {
          runs: n,
          path: root.getAttribute("data-pricewatch-path"),
          ms: root.getAttribute("data-pricewatch-extract-ms"),
          warmupMs: root.getAttribute("data-pricewatch-warmup-ms"),
        };
      }, runs),
    { timeoutMs: 15000 },
  );
}

// The content script's isolated world: Chromium names it after the
// extension and gives it the extension's origin.
function contentWorld(worlds, extensionId) {
  return worlds.find((c) => c.origin === `chrome-extension://${extensionId}` || c.name === "pricewatch");
}

run(
  async ({ context, extensionId }) => {
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    let worlds = [];
    cdp.on("Runtime.executionContextCreated", (e) => worlds.push(e.context));
    cdp.on("Runtime.executionContextsCleared", () => {
      worlds = [];
    });
    await cdp.send("Runtime.enable");
    const pages = JSON.parse(process.env.PRICEWATCH_PAGES || "[]");
    const visits = [];
    for (const url of pages) {
      process.stderr.write(`visit ${url}\n`);
      await page.goto(url, { waitUntil: "domcontentloaded" });
      const first = await markers(page, 1);
      // A change in the buy box makes the content script extract again.
      await page.evaluate(() => {
        const box = ["#centerCol", "#rightCol", "#buybox", "#ppd"].map((s) => document.querySelector(s)).find(Boolean);
        const marker = document.createElement("span");
        marker.hidden = true;
        (box || document.body).appendChild(marker);
      });
      const again = await markers(page, first.runs + 1);
      const world = await waitFor("the content script's world", async () => contentWorld(worlds, extensionId));
      const answer = await cdp.send("Runtime.evaluate", {
        contextId: world.id,
        awaitPromise: true,
        returnByValue: true,
        // The same module URL gives the module instance the content
        // script loaded (already instantiated and warmed up).
        expression: `(async () => {
          const mod = await import(chrome.runtime.getURL("pkg/pricewatch_ext.js"));
          const times = [];
          for (let i = 0; i < ${repeat}; i++) {
            const t0 = performance.now();
            mod.extract_live(location.href);
            times.push(performance.now() - t0);
          }
          times.sort((a, b) => a - b);
          return times[times.length >> 1].toFixed(3);
        })()`,
      });
      if (answer.exceptionDetails) throw new Error(`repeated extraction on ${url}: ${JSON.stringify(answer.exceptionDetails)}`);
      visits.push({ url, path: first.path, ms: first.ms, warmupMs: first.warmupMs, againMs: again.ms, repeatMs: answer.result.value });
    }
    return { visits };
  },
  {
    extraArgs: [`--host-resolver-rules=${rules}`, "--ignore-certificate-errors", `--ip-address-space-overrides=127.0.0.1:${port}=public`],
  },
);
