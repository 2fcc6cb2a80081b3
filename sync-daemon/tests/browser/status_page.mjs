// Headless-Chromium test of wavesyncd's status page (sync-daemon/src/http/page.html).
//
//   node sync-daemon/tests/browser/status_page.mjs --url URL --peers N [--screenshot PATH] [--timeout-s S]
//
// Opens URL in Debian's chromium (/usr/bin/chromium, or $CHROMIUM) through puppeteer-core and
//  1. waits until #peers has at least N `tr.peer` rows that say "connected" (not
//     "disconnected") and #live says "live", then prints `READY`;
//  2. waits until a new `li.event[data-kind=remote]` appears (the caller writes a row on
//     another peer after READY), prints `UPDATED <its text>`;
//  3. with --screenshot, saves a full-page PNG and prints `SCREENSHOT <path>`; exits 0.
// Each wait has its own --timeout-s (default 30). Any console error, page error, failed
// request or HTTP error (>= 400) of the page, or a timeout, ends it with exit 1 and a message
// on stderr. The browser is closed in every case. Needs `make browser-deps`.

import puppeteer from "puppeteer-core";
import path from "node:path";

function usage(msg) {
  if (msg) process.stderr.write(`status_page: ${msg}\n`);
  process.stderr.write("usage: status_page.mjs --url URL --peers N [--screenshot PATH] [--timeout-s S]\n");
  process.exit(1);
}

function parseArgs(argv) {
  const o = { url: null, peers: null, screenshot: null, timeoutS: 30 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => (i + 1 < argv.length ? argv[++i] : usage(`${a} needs a value`));
    if (a === "--url") o.url = value();
    else if (a === "--peers") o.peers = Number(value());
    else if (a === "--screenshot") o.screenshot = value();
    else if (a === "--timeout-s") o.timeoutS = Number(value());
    else if (a === "-h" || a === "--help") usage();
    else usage(`unknown argument ${a}`);
  }
  if (!o.url) usage("--url is required");
  if (!Number.isInteger(o.peers) || o.peers < 0) usage("--peers needs a whole number >= 0");
  if (!(o.timeoutS > 0)) usage("--timeout-s needs a number > 0");
  return o;
}

const opts = parseArgs(process.argv.slice(2));
const timeoutMs = Math.round(opts.timeoutS * 1000);
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";

const out = (line) => new Promise((resolve) => process.stdout.write(line + "\n", resolve));

// The first problem the page reports ends the run: `failed` rejects with it.
let fail;
const failed = new Promise((_, reject) => { fail = (msg) => reject(new Error(msg)); });
failed.catch(() => {}); // handled where it is raced

// What the page shows now, for timeout messages.
function pageState(page) {
  return page.evaluate(() => {
    const rows = [...document.querySelectorAll("#peers tbody tr.peer")].map((r) => r.textContent);
    const up = rows.filter((t) => t.includes("connected") && !t.includes("disconnected")).length;
    const live = document.querySelector("#live");
    return `${rows.length} peer rows, ${up} connected; #live = ${JSON.stringify(live ? live.textContent : null)}; `
      + `${document.querySelectorAll("li.event[data-kind=remote]").length} remote events`;
  }).catch((e) => `(page state unavailable: ${e.message})`);
}

async function waitFor(page, what, fn, ...args) {
  try {
    return await page.waitForFunction(fn, { timeout: timeoutMs, polling: 100 }, ...args);
  } catch (e) {
    if (e && e.name === "TimeoutError") {
      throw new Error(`timed out after ${opts.timeoutS} s waiting for ${what}: ${await pageState(page)}`);
    }
    throw e;
  }
}

async function run(browser) {
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 900 });
  page.on("console", (msg) => {
    if (msg.type() === "error") {
      const loc = msg.location();
      fail(`console error: ${msg.text()}${loc && loc.url ? ` (${loc.url}${loc.lineNumber != null ? ":" + loc.lineNumber : ""})` : ""}`);
    }
  });
  page.on("pageerror", (err) => fail(`page error: ${err && err.message ? err.message : err}`));
  page.on("requestfailed", (req) => {
    const f = req.failure();
    fail(`request failed: ${req.method()} ${req.url()}: ${f ? f.errorText : "unknown error"}`);
  });
  page.on("response", (resp) => {
    if (resp.status() >= 400) fail(`HTTP ${resp.status()} for ${resp.request().method()} ${resp.url()}`);
  });

  const resp = await page.goto(opts.url, { waitUntil: "load", timeout: timeoutMs });
  if (!resp) throw new Error(`no response for ${opts.url}`);

  await waitFor(page, `${opts.peers} connected peers and #live = "live"`, (n) => {
    const rows = [...document.querySelectorAll("#peers tbody tr.peer")];
    const up = rows.filter((r) => r.textContent.includes("connected") && !r.textContent.includes("disconnected"));
    const live = document.querySelector("#live");
    return up.length >= n && live !== null && live.textContent.trim() === "live";
  }, opts.peers);

  // The remote events shown now; the list holds at most 50, so "new" means "not one of these".
  const before = await page.evaluate(() => {
    const seen = [...document.querySelectorAll("li.event[data-kind=remote]")];
    window.__statusPageTestSeen = new WeakSet(seen);
    return seen.length;
  });
  await out("READY");

  const li = await waitFor(page, `a new remote event (${before} shown at READY)`, () => {
    const seen = window.__statusPageTestSeen;
    return [...document.querySelectorAll("li.event[data-kind=remote]")].find((e) => !seen.has(e)) || false;
  });
  const text = await li.evaluate((e) => (e.innerText || e.textContent).replace(/\s+/g, " ").trim());
  await out(`UPDATED ${text}`);

  if (opts.screenshot) {
    await page.screenshot({ path: path.resolve(opts.screenshot), fullPage: true, type: "png" });
    await out(`SCREENSHOT ${opts.screenshot}`);
  }
}

async function closeBrowser(browser) {
  if (!browser) return;
  const proc = browser.process();
  try {
    await Promise.race([browser.close(), new Promise((_, rej) => setTimeout(() => rej(new Error("close timed out")), 5000))]);
  } catch {
    if (proc && proc.exitCode === null) proc.kill("SIGKILL");
  }
}

let browser = null;
let code = 0;
try {
  browser = await Promise.race([
    puppeteer.launch({
      executablePath,
      headless: true,
      args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
      timeout: timeoutMs,
    }),
    failed,
  ]);
  await Promise.race([run(browser), failed]);
} catch (e) {
  code = 1;
  const msg = e && e.message ? e.message : String(e);
  process.stderr.write(`status_page: FAILED: ${msg.split("\n").slice(0, 12).join("\n")} (url ${opts.url})\n`);
} finally {
  await closeBrowser(browser);
}
process.exitCode = code;
process.stdout.write("", () => process.exit(code));
