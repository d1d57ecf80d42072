// 85-ui: the web UI (issue 7) end to end in a real browser: Debian's headless Chromium, driven
// over CDP by playwright-core (the browser is started by the harness, so it is bounded and
// killed with everything else). mcplex runs an agentgateway-style file with an admin address
// and the seed example's two stdio targets (time-mcp, server-everything); the test opens
// http://127.0.0.1:<admin>/ui on the real admin listener, checks the overview (listener, MCP
// targets), connects the Playground to the prefilled MCP URL, lists the tools of both targets,
// runs everything_echo with "hello world" and sees the echo, runs a time tool, shows an image
// result, reads a resource, gets a prompt, and sees the session on the Sessions page.
// Screenshots are kept in tests/artifacts/85-ui/ (the test's artifacts).
import fs from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";
import {
  assert, test, run, freePort, startMcplex, spawnTracked, stdioPeer, waitFor, http, J, TMP, ARTIFACTS, log,
} from "./lib/harness.mjs";

const CHROMIUM = process.env.MCPLEX_CHROMIUM ?? "/usr/bin/chromium";
const time = stdioPeer("time");
const everything = stdioPeer("everything");

const config = (port, adminPort) => `# the seed example with an admin listener (web UI at /ui)
config:
  adminAddr: 127.0.0.1:${adminPort}
binds:
- port: ${port}
  listeners:
  - routes:
    - policies:
        cors:
          allowOrigins: ["*"]
          allowHeaders: [mcp-protocol-version, content-type, cache-control, mcp-session-id, last-event-id]
          exposeHeaders: ["Mcp-Session-Id"]
      backends:
      - mcp:
          targets:
          - name: time
            stdio: {cmd: ${J(time.cmd)}, args: ${J(time.args)}}
            timeout: 20s
          - name: everything
            stdio: {cmd: ${J(everything.cmd)}, args: ${J(everything.args)}}
            timeout: 20s
`;

let mx;
let adminPort;
let browser;
let page;

async function shot(name) {
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  log(`screenshot ${path.relative(process.cwd(), file)}`);
  return file;
}

test("mcplex serves /ui on the admin listener", async () => {
  const port = await freePort();
  adminPort = await freePort();
  mx = await startMcplex(config(port, adminPort), { port });
  await waitFor(async () => (await fetch(`http://127.0.0.1:${adminPort}/ready`)).ok, { what: "admin /ready" });
  for (const [p, type] of [["/ui", "text/html"], ["/ui/", "text/html"], ["/ui/app.js", "text/javascript"],
    ["/ui/style.css", "text/css"]]) {
    const r = await http(`http://127.0.0.1:${adminPort}${p}`, { method: "GET", accept: null });
    assert.equal(r.status, 200, `${p}: HTTP ${r.status}`);
    assert.ok(r.contentType.startsWith(type), `${p}: content-type ${r.contentType}`);
  }
  const missing = await http(`http://127.0.0.1:${adminPort}/ui/nope.js`, { method: "GET", accept: null });
  assert.equal(missing.status, 404);
  const post = await http(`http://127.0.0.1:${adminPort}/ui`, { method: "POST", body: "x", accept: null });
  assert.equal(post.status, 405);
});

test("headless Chromium opens the UI (overview)", async () => {
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} missing: install Debian's chromium (bazel-free-build/setup.sh)`);
  const cdpPort = await freePort();
  const profile = fs.mkdtempSync(path.join(TMP, "chromium-"));
  const h = spawnTracked("chromium", CHROMIUM, [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", `--user-data-dir=${profile}`, "--remote-debugging-address=127.0.0.1",
    `--remote-debugging-port=${cdpPort}`, "--window-size=1360,900", "about:blank",
  ]);
  const endpoint = `http://127.0.0.1:${cdpPort}`;
  await waitFor(async () => {
    if (h.exitInfo) throw new Error(`chromium exited: ${J(h.exitInfo)}`);
    return (await fetch(`${endpoint}/json/version`)).ok;
  }, { timeout: 30000, what: "chromium DevTools endpoint" });
  browser = await chromium.connectOverCDP(endpoint, { timeout: 30000 });
  const context = browser.contexts()[0] ?? (await browser.newContext());
  page = await context.newPage();
  await page.setViewportSize({ width: 1360, height: 900 });
  page.on("console", (m) => { if (m.type() === "error") log(`browser console: ${m.text()}`); });
  page.on("pageerror", (e) => log(`page error: ${e.message}`));
  await page.goto(`http://127.0.0.1:${adminPort}/ui`, { timeout: 20000 });
  await page.locator("#ov-listeners table").waitFor({ timeout: 15000 });
  assert.match(await page.locator("#ov-listeners").innerText(), new RegExp(`127\\.0\\.0\\.1:${mx.port}`));
  await page.locator("#ov-targets table").waitFor({ timeout: 15000 });
  const targets = await page.locator("#ov-targets").innerText();
  assert.match(targets, /everything/);
  assert.match(targets, /time/);
  await shot("overview");
});

test("Playground: connect and list the tools of both targets", async () => {
  await page.click("#tab-playground");
  // Prefilled with the first MCP listener's URL.
  await waitFor(async () => (await page.inputValue("#url")) === mx.url, { what: `#url = ${mx.url}` });
  await page.click("#connect");
  await page.locator("#conn-status.state-ready").waitFor({ timeout: 40000 }).catch(async (e) => {
    throw new Error(`${e.message}; status: ${await page.locator("#conn-status").innerText()}; log:\n` +
      (await page.locator("#log").textContent()).slice(-1500));
  });
  await page.locator('#list-tools li[data-name="everything_echo"]').waitFor({ timeout: 20000 });
  const tools = await page.locator("#list-tools li").evaluateAll((els) => els.map((e) => e.dataset.name));
  assert.ok(tools.includes("everything_echo"), `tools: ${tools.join(", ")}`);
  assert.ok(tools.some((t) => t.startsWith("time_")), `no time_ tool in ${tools.join(", ")}`);
  log(`${tools.length} tools listed`);
});

test('Playground: everything_echo with "hello world"', async () => {
  await page.click('#list-tools li[data-name="everything_echo"]');
  await page.fill('#form [name="message"]', "hello world");
  await page.click("#run");
  await page.locator("#result pre.text", { hasText: "Echo: hello world" }).waitFor({ timeout: 20000 });
  await shot("echo");
});

test("Playground: a time tool", async () => {
  await page.fill("#filter", "time_current");
  await page.click('#list-tools li[data-name="time_current_time"]');
  await page.click("#run");
  await page.locator("#result pre.text").first().waitFor({ timeout: 20000 });
  const text = await page.locator("#result pre.text").first().innerText();
  assert.match(text, /\d{4}-\d{2}-\d{2}/, `time result: ${text}`);
  await page.fill("#filter", "");
  await shot("time");
});

test("Playground: an image result is shown as an image", async () => {
  await page.fill("#filter", "tiny-image");
  await page.click('#list-tools li[data-name="everything_get-tiny-image"]');
  await page.click("#run");
  await page.locator("#result img").first().waitFor({ timeout: 20000 });
  const loaded = await page.locator("#result img").first().evaluate((img) => img.complete && img.naturalWidth > 0);
  assert.ok(loaded, "the image decodes");
  await page.fill("#filter", "");
});

test("Playground: read a resource and get a prompt", async () => {
  await page.click("#sub-resources");
  const first = page.locator("#list-resources li[data-kind=resource]").first();
  await first.waitFor({ timeout: 10000 });
  await first.click();
  await page.click("#run");
  await page.locator("#result .item").first().waitFor({ timeout: 20000 });
  assert.doesNotMatch(await page.locator("#result").innerText(), /JSON-RPC -?\d+/);
  await page.click("#sub-prompts");
  await page.locator('#list-prompts li[data-name="everything_simple-prompt"], #list-prompts li').first()
    .waitFor({ timeout: 10000 });
  const prompts = await page.locator("#list-prompts li").evaluateAll((els) => els.map((e) => e.dataset.name));
  const simple = prompts.find((p) => /simple/.test(p)) ?? prompts[0];
  await page.click(`#list-prompts li[data-name="${simple}"]`);
  await page.click("#run");
  await page.locator("#result .item").first().waitFor({ timeout: 20000 });
  assert.match(await page.locator("#run-status").innerText(), /^ok/);
});

test("Sessions page shows the Playground's session", async () => {
  await page.click("#tab-sessions");
  await page.locator("#sessions table").waitFor({ timeout: 10000 });
  assert.match(await page.locator("#sessions").innerText(), /mcplex-ui/);
  await shot("sessions");
  await page.click("#tab-playground");
  await page.click("#disconnect");
  await browser.close().catch(() => {});
  browser = null;
});

await run({ timeout: 240000 });
