// End-to-end scenarios of the in-page price history overlay (issue 8),
// driven by tests/tests/extension_overlay.rs. Environment (besides
// harness.cjs's):
//   PRICEWATCH_FAKE_PORT     the fake Amazon's HTTPS port
//   PRICEWATCH_BACKEND_URL   the backend the extension copy talks to
//   PRICEWATCH_SCENARIO      "history" | "layout" | "iframe" | "watch"
//   PRICEWATCH_PAGE          the product page URL
//   PRICEWATCH_SCREENSHOT    where "history" saves its screenshot
//   PRICEWATCH_SIGNAL_DIR    "watch": handshake files with the Rust side
// Prints {"result": {...}, "errors": [...]} (see harness.cjs).
//
// The overlay lives in a *closed* shadow root: page scripts and
// Playwright's selectors cannot reach it. The driver goes through the
// DevTools protocol instead (DOM.getDocument with pierce: true lists
// closed shadow roots; DOM.resolveNode gives a handle to call functions
// on), which changes nothing for the page.

"use strict";

const fs = require("fs");
const path = require("path");
const { run, waitFor } = require("./harness.cjs");

const port = process.env.PRICEWATCH_FAKE_PORT;
const scenario = process.env.PRICEWATCH_SCENARIO || "history";
const pageUrl = process.env.PRICEWATCH_PAGE;

const DOMAINS = ["amazon.com", "amazon.co.uk", "amazon.de", "amazon.co.jp"];
const rules = DOMAINS.flatMap((d) => [`MAP www.${d} 127.0.0.1:${port}`, `MAP ${d} 127.0.0.1:${port}`])
  .concat(["MAP * ~NOTFOUND", "EXCLUDE 127.0.0.1", "EXCLUDE localhost"])
  .join(", ");

async function newPage(context) {
  const page = await context.newPage();
  await page.setViewportSize({ width: 1280, height: 1000 });
  page.on("console", (m) => {
    if (m.text().includes("pricewatch")) process.stderr.write(`[page ${m.type()}] ${m.text()}\n`);
  });
  return page;
}

// ---------------------------------------------------------------------
// Reaching into the overlay.

/// Finds the overlay host's closed shadow root through CDP and returns a
/// remote object id for it (null while there is none).
async function shadowRootObject(page) {
  const cdp = await page.context().newCDPSession(page);
  try {
    const { root } = await cdp.send("DOM.getDocument", { depth: -1, pierce: true });
    let found = null;
    const walk = (node) => {
      if (found) return;
      if (node.localName === "pricewatch-overlay" && node.shadowRoots && node.shadowRoots.length) {
        found = node.shadowRoots[0];
        return;
      }
      for (const c of node.children || []) walk(c);
    };
    walk(root);
    if (!found) return null;
    const { object } = await cdp.send("DOM.resolveNode", { backendNodeId: found.backendNodeId });
    return { cdp, objectId: object.objectId };
  } catch (err) {
    await cdp.detach().catch(() => {});
    throw err;
  }
}

/// Calls `fn(root, arg)` with the overlay's closed shadow root (null when
/// the overlay is not there yet) and returns its JSON-able result.
async function inShadow(page, fn, arg) {
  const handle = await shadowRootObject(page);
  if (!handle) return null;
  try {
    const { result, exceptionDetails } = await handle.cdp.send("Runtime.callFunctionOn", {
      objectId: handle.objectId,
      functionDeclaration: `function (arg) { return (${fn.toString()})(this, arg); }`,
      arguments: [{ value: arg === undefined ? null : arg }],
      returnByValue: true,
      awaitPromise: true,
    });
    if (exceptionDetails) throw new Error(`in the shadow root: ${JSON.stringify(exceptionDetails)}`);
    return result.value;
  } finally {
    await handle.cdp.detach().catch(() => {});
  }
}

/// The iframe fallback's frame (an extension page).
function overlayFrame(page) {
  return page.frames().find((f) => f.url().startsWith("chrome-extension://") && f.url().includes("/overlay.html"));
}

/// Runs `fn(root, arg)` wherever the overlay is: the shadow root, or the
/// iframe's document.
async function inOverlay(page, fn, arg) {
  const frame = overlayFrame(page);
  if (frame) {
    return frame.evaluate(({ src, arg }) => (0, eval)(`(${src})`)(document, arg), { src: fn.toString(), arg });
  }
  return inShadow(page, fn, arg);
}

/// What the overlay shows (null until it shows prices).
function readOverlay(root) {
  const q = (id) => root.querySelector(`[data-testid="${id}"]`);
  const text = (id) => (q(id) ? q(id).textContent.trim() : null);
  const price = (id) => (q(id) && q(id).dataset.price ? Number(q(id).dataset.price) : null);
  if (!q("pw-overlay")) return null;
  const svg = q("pw-chart");
  const points = svg ? [...svg.querySelectorAll("circle[data-t]")].map((c) => [Number(c.dataset.t), Number(c.dataset.price)]) : [];
  const pressed = [...root.querySelectorAll('[data-testid^="pw-range-"]')].filter((b) => b.getAttribute("aria-pressed") === "true").map((b) => b.dataset.testid);
  return {
    collapsed: q("pw-overlay").dataset.collapsed === "true",
    badge: Boolean(q("pw-badge")),
    message: text("pw-message"),
    current: text("pw-current"),
    currentPrice: price("pw-current"),
    status: q("pw-status") ? q("pw-status").dataset.status : null,
    statusText: text("pw-status"),
    reporters: text("pw-reporters"),
    lowest: text("pw-lowest"),
    lowestPrice: price("pw-lowest"),
    highest: text("pw-highest"),
    highestPrice: price("pw-highest"),
    average: text("pw-average"),
    averagePrice: price("pw-average"),
    verdict: text("pw-verdict"),
    share: q("pw-share") ? q("pw-share").getAttribute("href") : null,
    pressed,
    points,
    watchExisting: text("pw-watch-existing"),
    watchId: q("pw-watch-existing") ? Number(q("pw-watch-existing").dataset.watchId) : null,
    watchStatus: text("pw-watch-status"),
    formOpen: Boolean(q("pw-watch-save")),
  };
}

function click(root, id) {
  const el = root.querySelector(`[data-testid="${id}"]`);
  if (!el) throw new Error(`no ${id} in the overlay`);
  el.click();
  return true;
}

function focus(root, id) {
  const el = root.querySelector(`[data-testid="${id}"]`);
  if (!el) throw new Error(`no ${id} in the overlay`);
  el.focus();
  return true;
}

async function waitForOverlay(page, what, predicate, timeoutMs = 15000) {
  return waitFor(
    what,
    async () => {
      const state = await inOverlay(page, readOverlay);
      return state && predicate(state) ? state : null;
    },
    { timeoutMs },
  );
}

async function backendHistory(marketplace, asin, range) {
  const r = await fetch(`${process.env.PRICEWATCH_BACKEND_URL}/v1/products/${marketplace}/${asin}/history?condition=new&range=${range}`);
  return r.json();
}

async function giveConsent(context, extensionId) {
  const url = `chrome-extension://${extensionId}/onboarding.html`;
  const page = await waitFor("the onboarding tab", async () => context.pages().find((p) => p.url() === url), { timeoutMs: 10000 });
  await page.click('[data-testid="consent-accept"]');
  await waitFor("consent to be stored", () => page.evaluate(() => document.body.dataset.consent === "given"));
  return page;
}

function signal(name, body = "") {
  fs.writeFileSync(path.join(process.env.PRICEWATCH_SIGNAL_DIR, name), body);
}

function signalled(name) {
  return fs.existsSync(path.join(process.env.PRICEWATCH_SIGNAL_DIR, name));
}

async function registeredKey(context) {
  const sw = context.serviceWorkers().find((w) => w.url().startsWith("chrome-extension://"));
  return sw.evaluate(
    () =>
      new Promise((resolve, reject) => {
        const open = indexedDB.open("pricewatch");
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const req = open.result.transaction("kv").objectStore("kv").get("registered_key");
          req.onsuccess = () => resolve(req.result || null);
          req.onerror = () => reject(req.error);
        };
      }),
  );
}

// ---------------------------------------------------------------------

const scenarios = {
  // Seeded history: values, chart points per range, keyboard, collapse,
  // screenshot.
  async history({ context }) {
    const page = await newPage(context);
    await page.goto(pageUrl, { waitUntil: "domcontentloaded" });
    const u = new URL(pageUrl);
    const marketplace = u.hostname.replace(/^www\./, "");
    const asin = u.pathname.split("/").pop();
    const out = { ranges: {} };
    out.initial = await waitForOverlay(page, "the overlay with its chart", (s) => s.current && s.points.length > 0 && s.pressed.includes("pw-range-3m"));
    for (const range of ["1m", "1y", "all", "3m"]) {
      await inOverlay(page, click, `pw-range-${range}`);
      const api = await backendHistory(marketplace, asin, range);
      const want = JSON.stringify(api.points.map((p) => [p.t, p.close]));
      const shown = await waitForOverlay(page, `the ${range} chart`, (s) => s.pressed.includes(`pw-range-${range}`) && JSON.stringify(s.points) === want, 10000).catch(async (e) => {
        process.stderr.write(`overlay: ${JSON.stringify(await inOverlay(page, readOverlay))}\napi: ${want}\n`);
        throw e;
      });
      out.ranges[range] = { shown, api };
    }
    // Keyboard: the chart takes focus and its arrow keys move the tooltip.
    await inOverlay(page, focus, "pw-chart");
    await page.keyboard.press("End");
    await page.keyboard.press("ArrowLeft");
    out.tooltip = await waitFor("the tooltip", () => inOverlay(page, (root) => {
      const t = root.querySelector('[data-testid="pw-tooltip"]');
      return t ? t.textContent : null;
    }));
    // The screenshot (the overlay open, the tooltip showing).
    await page.screenshot({ path: process.env.PRICEWATCH_SCREENSHOT, fullPage: false });
    // Hover: the pointer over the second point shows that point.
    const target = await inOverlay(page, (root) => {
      const el = root.querySelectorAll('[data-testid="pw-chart"] circle[data-t]')[1];
      const r = el.getBoundingClientRect();
      return { x: r.x + r.width / 2, y: r.y + r.height / 2, price: Number(el.dataset.price), t: Number(el.dataset.t) };
    });
    await page.mouse.move(target.x, target.y);
    out.hover = {
      ...target,
      tooltip: await waitFor("the hover tooltip", () => inOverlay(page, (root, want) => {
        const t = root.querySelector('[data-testid="pw-tooltip"]');
        return t && t.textContent.includes(want) ? t.textContent : null;
      }, new Date(target.t).toISOString().slice(0, 10))),
    };
    // Collapse with the keyboard (Enter on the focused button), then the
    // badge; the choice is remembered across a reload.
    await inOverlay(page, focus, "pw-collapse");
    await page.keyboard.press("Enter");
    out.collapsed = await waitForOverlay(page, "the badge", (s) => s.collapsed && s.badge);
    await page.reload({ waitUntil: "domcontentloaded" });
    out.afterReload = await waitForOverlay(page, "the badge after a reload", (s) => s.collapsed && s.badge);
    await inOverlay(page, focus, "pw-badge");
    await page.keyboard.press("Space");
    out.expanded = await waitForOverlay(page, "the panel again", (s) => !s.collapsed && s.current);
    return out;
  },

  // Layout and style isolation: the buy box's box and the page's computed
  // styles are the same with and without the overlay; the page's `div`
  // rule does not reach the overlay.
  async layout({ context }) {
    const page = await newPage(context);
    await page.goto(pageUrl, { waitUntil: "domcontentloaded" });
    await waitForOverlay(page, "the overlay", (s) => s.current || s.message);
    const measure = () =>
      page.evaluate(() => {
        const rect = (sel) => {
          const el = document.querySelector(sel);
          if (!el) return null;
          const r = el.getBoundingClientRect();
          return [r.x, r.y, r.width, r.height];
        };
        const styles = {};
        for (const sel of ["body", "#buybox", "#rightCol", "#centerCol", "#productTitle", "#availability span"]) {
          const el = document.querySelector(sel);
          if (!el) continue;
          const cs = getComputedStyle(el);
          styles[sel] = ["color", "font-family", "font-size", "line-height", "display", "margin", "padding", "width", "height", "position", "box-sizing"].map((p) => cs.getPropertyValue(p));
        }
        return {
          buybox: rect("#buybox"),
          rightCol: rect("#rightCol"),
          centerCol: rect("#centerCol"),
          scroll: [document.documentElement.scrollWidth, document.documentElement.scrollHeight],
          styles,
          host: Boolean(document.querySelector("pricewatch-overlay")),
          hostStyle: document.querySelector("pricewatch-overlay") ? document.querySelector("pricewatch-overlay").getAttribute("style") : null,
          // Page scripts see no shadow root (it is closed).
          pageSeesShadow: document.querySelector("pricewatch-overlay") ? document.querySelector("pricewatch-overlay").shadowRoot !== null : null,
        };
      });
    const withOverlay = await measure();
    const inside = await inShadow(page, (root) => {
      const pick = (id) => {
        const el = root.querySelector(`[data-testid="${id}"]`);
        if (!el) return null;
        const cs = getComputedStyle(el);
        return { color: cs.color, fontSize: cs.fontSize, fontFamily: cs.fontFamily, letterSpacing: cs.letterSpacing };
      };
      const host = root.host.getBoundingClientRect();
      return { overlay: pick("pw-overlay"), reporters: pick("pw-reporters"), message: pick("pw-message"), host: [host.x, host.y, host.width, host.height] };
    });
    // Remove the overlay's host (an ordinary element of the page) and
    // measure again.
    await page.evaluate(() => document.querySelector("pricewatch-overlay").remove());
    const withoutOverlay = await measure();
    return { withOverlay, withoutOverlay, inside };
  },

  // CSP page: the iframe fallback shows the same current price.
  async iframe({ context }) {
    const page = await newPage(context);
    await page.goto(pageUrl, { waitUntil: "domcontentloaded" });
    const shown = await waitFor("the overlay iframe", () => overlayFrame(page), { timeoutMs: 15000 }).then(() =>
      waitForOverlay(page, "the iframe overlay's price", (s) => s.current && s.points.length > 0),
    );
    const host = await page.evaluate(() => {
      const h = document.querySelector("pricewatch-overlay");
      return h ? { mode: h.dataset.pricewatchOverlay, rect: h.getBoundingClientRect().toJSON() } : null;
    });
    const path = await page.evaluate(() => document.documentElement.getAttribute("data-pricewatch-path"));
    // The iframe is sized from the UI's height messages.
    const sizes = async () => ({
      frameHeight: await inShadow(page, (root) => root.querySelector("iframe").getBoundingClientRect().height),
      docHeight: await overlayFrame(page).evaluate(() => document.documentElement.getBoundingClientRect().height),
    });
    const sized = await waitFor("the iframe sized to its content", async () => {
      const s = await sizes();
      return Math.abs(s.frameHeight - s.docHeight) <= 1 ? s : null;
    }).catch(async (e) => {
      process.stderr.write(`sizes: ${JSON.stringify(await sizes())}\n`);
      throw e;
    });
    return { shown, host, path, ...sized };
  },

  // Watch from the page: no consent -> the form says so; after consent,
  // create, edit and remove, each checked by the Rust side in the DB.
  async watch({ context, extensionId }) {
    const page = await newPage(context);
    await page.goto(pageUrl, { waitUntil: "domcontentloaded" });
    const out = {};
    await waitForOverlay(page, "the overlay", (s) => s.current);
    await inOverlay(page, click, "pw-watch-open");
    await waitForOverlay(page, "the watch form", (s) => s.formOpen);
    await inOverlay(page, focus, "pw-watch-target");
    await page.keyboard.type("95.50");
    await inOverlay(page, click, "pw-watch-save");
    out.noConsent = await waitForOverlay(page, "the no-consent message", (s) => s.watchStatus);
    // Escape closes the form.
    await inOverlay(page, focus, "pw-watch-target");
    await page.keyboard.press("Escape");
    out.afterEscape = await waitForOverlay(page, "the form to close", (s) => !s.formOpen);

    await giveConsent(context, extensionId);
    await page.bringToFront();
    await inOverlay(page, click, "pw-watch-open");
    await waitForOverlay(page, "the watch form", (s) => s.formOpen);
    await inOverlay(page, focus, "pw-watch-target");
    await page.keyboard.type("95.50");
    await inOverlay(page, click, "pw-watch-save");
    out.created = await waitForOverlay(page, "the created watch", (s) => s.watchExisting && !s.formOpen, 30000);
    out.key = await registeredKey(context);
    signal("created", JSON.stringify({ key: out.key, id: out.created.watchId }));
    await waitFor("the Rust side's check of the created watch", () => signalled("created.checked"), { timeoutMs: 20000 });

    // A reload shows the existing watch (listed by the signed GET /v1/watches).
    await page.reload({ waitUntil: "domcontentloaded" });
    out.reloaded = await waitForOverlay(page, "the existing watch after a reload", (s) => s.watchExisting);

    // Edit: a drop percentage and an email instead of the target.
    await inOverlay(page, click, "pw-watch-open");
    await waitForOverlay(page, "the edit form", (s) => s.formOpen);
    await inOverlay(page, (root) => {
      const set = (id, value) => {
        const el = root.querySelector(`[data-testid="${id}"]`);
        el.value = value;
        el.dispatchEvent(new Event("input", { bubbles: true }));
      };
      set("pw-watch-target", "");
      set("pw-watch-percent", "15");
      set("pw-watch-ch-email", "shopper@example.org");
      return true;
    });
    await inOverlay(page, click, "pw-watch-save");
    out.edited = await waitForOverlay(page, "the edited watch", (s) => s.watchExisting && s.watchExisting.includes("15%") && !s.formOpen, 20000);
    signal("edited");
    await waitFor("the Rust side's check of the edited watch", () => signalled("edited.checked"), { timeoutMs: 20000 });

    await inOverlay(page, click, "pw-watch-open");
    await waitForOverlay(page, "the form with remove", (s) => s.formOpen);
    await inOverlay(page, click, "pw-watch-remove");
    out.removed = await waitForOverlay(page, "the removed watch", (s) => !s.watchExisting && !s.formOpen, 20000);
    signal("removed");
    await waitFor("the Rust side's check of the removal", () => signalled("removed.checked"), { timeoutMs: 20000 });
    return out;
  },
};

run(
  async (browser) => {
    const body = scenarios[scenario];
    if (!body) throw new Error(`unknown scenario ${scenario}`);
    return body(browser);
  },
  {
    extraArgs: [`--host-resolver-rules=${rules}`, "--ignore-certificate-errors", `--ip-address-space-overrides=127.0.0.1:${port}=public`],
  },
);
