// Shared Playwright harness for the end-to-end tests (CommonJS, so that
// NODE_PATH finds playwright-core in scripts/node/node_modules).
//
// The Rust side (tests/src/browser.rs) runs `node tests/js/<script>.cjs`
// with these environment variables:
//   PRICEWATCH_EXTENSION_DIR  the unpacked extension (dist/extension)
//   PRICEWATCH_CHROMIUM       the Chromium binary (/usr/lib/chromium/chromium)
//   PRICEWATCH_USER_DATA_DIR  a fresh, empty profile folder
// and reads the last line of stdout: one JSON object
//   {"result": <what the script returned>, "errors": [<console errors>]}
// A script fails (exit 1, message on stderr) when something it waited for
// does not happen; console and service-worker errors are returned, and the
// Rust test decides (the smoke test fails on any).

"use strict";

const { chromium } = require("playwright-core");

// Flags measured to work on this machine kind (../shared/TOOLCHAIN.md):
// without the background-networking ones Chromium keeps trying to reach
// Google's hosts, which the closed network refuses.
const CHROMIUM_FLAGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

function requiredEnv(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}

function describeSource(msg) {
  const worker = msg.worker && msg.worker();
  if (worker) return `worker ${worker.url()}`;
  const page = msg.page && msg.page();
  if (page) return `page ${page.url()}`;
  return "browser";
}

/// Launches headless Chromium with the extension loaded, and waits for its
/// service worker. Returns { context, serviceWorker, extensionId, errors }.
/// `errors` keeps filling while the browser runs: console.error from pages
/// and workers, and uncaught page errors.
async function launchWithExtension({ extraArgs = [], timeoutMs = 20000 } = {}) {
  const extensionDir = requiredEnv("PRICEWATCH_EXTENSION_DIR");
  const context = await chromium.launchPersistentContext(requiredEnv("PRICEWATCH_USER_DATA_DIR"), {
    executablePath: requiredEnv("PRICEWATCH_CHROMIUM"),
    headless: true,
    // Playwright passes --disable-extensions by default.
    ignoreDefaultArgs: ["--disable-extensions"],
    args: [
      ...CHROMIUM_FLAGS,
      `--disable-extensions-except=${extensionDir}`,
      `--load-extension=${extensionDir}`,
      ...extraArgs,
    ],
    timeout: timeoutMs,
  });
  const errors = [];
  const record = (msg) => {
    if (msg.type() === "error") errors.push(`${describeSource(msg)}: ${msg.text()}`);
  };
  context.on("console", record);
  context.on("weberror", (e) => errors.push(`uncaught in ${e.page() ? e.page().url() : "?"}: ${e.error()}`));

  const isOurs = (w) => w.url().startsWith("chrome-extension://");
  let serviceWorker = context.serviceWorkers().find(isOurs);
  if (!serviceWorker) {
    serviceWorker = await context.waitForEvent("serviceworker", { predicate: isOurs, timeout: timeoutMs });
  }
  const extensionId = new URL(serviceWorker.url()).host;
  return { context, serviceWorker, extensionId, errors };
}

/// Polls `probe` (an async function) until it returns something other than
/// undefined/null/false, or throws after `timeoutMs` naming `what`.
async function waitFor(what, probe, { timeoutMs = 10000, intervalMs = 50 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== null && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/// The errors the service worker kept in chrome.storage.session (see
/// extension/static/errors.js): those it hit while starting, before the
/// driver was attached, are only there.
async function storedErrors(context) {
  const sw = context.serviceWorkers().find((w) => w.url().startsWith("chrome-extension://"));
  if (!sw) return [];
  const stored = await sw.evaluate(() => chrome.storage.session.get("pricewatch_errors"));
  return (stored.pricewatch_errors || []).map((e) => `service worker (kept): ${e.text}`);
}

/// Runs a test script body: `body()` gets the launched browser (see
/// launchWithExtension) and returns a JSON-able result. Prints the result
/// line, closes the browser, exits 0; on failure prints the error and the
/// errors collected so far on stderr and exits 1.
function run(body, launchOptions = {}) {
  let browser = null;
  (async () => {
    browser = await launchWithExtension(launchOptions);
    const result = await body(browser);
    // Let late console messages arrive before judging.
    await new Promise((r) => setTimeout(r, 200));
    const errors = browser.errors.concat(await storedErrors(browser.context));
    const line = JSON.stringify({ result, errors });
    await browser.context.close();
    process.stdout.write(line + "\n");
    process.exit(0);
  })().catch(async (err) => {
    process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
    if (browser) {
      if (browser.errors.length) process.stderr.write(`console errors so far:\n${browser.errors.join("\n")}\n`);
      await browser.context.close().catch(() => {});
    }
    process.exit(1);
  });
}

module.exports = { CHROMIUM_FLAGS, launchWithExtension, waitFor, storedErrors, run };
