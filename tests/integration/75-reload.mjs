// 75-reload: hot reload of the config file (issue 7) through the live-swap path
// (mcplex_worker_apply_snapshot, shared with xDS). mcplex runs an agentgateway-style file with
// two named MCP backends: "main" on /mcp (server-everything) and "side" on /side (another
// server-everything). SDK sessions run on both while the file is edited:
//  - a save (temp file + rename, as editors do) that adds a route /alt and a second bind: the
//    sessions keep working, /alt and the new port answer;
//  - a broken edit is rejected ("config reload rejected: ..." with the error's path) and the
//    previous config keeps serving; an edit that needs a port already taken is rejected whole;
//  - SIGHUP reloads the same file (sessions on unchanged backends keep running);
//  - an edit that removes "side" (and the second bind) ends the side session with a clear
//    JSON-RPC error on its pending call while the main session continues; the port closes.
import fs from "node:fs";
import net from "node:net";
import {
  assert, test, run, freePort, startMcplex, connectClient, stdioPeer, waitFor, textOf, http, J, sleep,
  portAccepts, PROTOCOL_VERSION, request,
} from "./lib/harness.mjs";

const everything = stdioPeer("everything");
const target = (name) => `          - name: ${name}
            stdio: {cmd: ${J(everything.cmd)}, args: ${J(everything.args)}}
            timeout: 30s
`;

// The config: |side| keeps the /side route and backend, |alt| adds /alt, |bind2| a second bind.
function config(port, { side = true, alt = false, bind2 = null, broken = false } = {}) {
  let text = `# 75-reload
binds:
- port: ${port}
  listeners:
  - routes:
    - matches: [{path: {pathPrefix: /mcp}}]
      backends:
      - name: main
        mcp:
          targets:
${target("everything")}`;
  if (side) {
    text += `    - matches: [{path: {pathPrefix: /side}}]
      backends:
      - name: side
        mcp:
          targets:
${target("everything")}`;
  }
  if (alt) {
    text += `    - matches: [{path: {pathPrefix: /alt}}]
      backends:
      - name: alt
        mcp:
          targets:
${target("everything")}`;
  }
  if (broken) {
    text += `    - matches: [{path: {pathPrefix: /broken}}]
      backends:
      - name: broken
        mcp:
          targets:
          - name: "bad name with spaces"
            stdio: {cmd: node}
            bogusField: 1
`;
  }
  if (bind2) {
    text += `- port: ${bind2}
  listeners:
  - routes:
    - backends:
      - name: main2
        mcp:
          targets:
${target("everything")}`;
  }
  return text;
}

let mx;
let port;
let port2;
let main;
let side;

const logText = () => fs.readFileSync(mx.logFile, "utf8");
const count = (re) => (logText().match(new RegExp(re, "g")) ?? []).length;

// Saves |text| the way editors do: a temp file in the same directory renamed over the config.
function save(text) {
  const tmp = `${mx.configFile}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, mx.configFile);
}

// Waits until the log has more than |before| lines matching |re|.
async function waitLog(re, before, what) {
  await waitFor(() => count(re) > before, { timeout: 15000, what });
}

async function echo(c, text) {
  const r = await c.client.callTool({ name: "echo", arguments: { message: text } });
  assert.equal(textOf(r), `Echo: ${text}`);
}

test("start: sessions on /mcp (main) and /side (side)", async () => {
  port = await freePort();
  port2 = await freePort();
  mx = await startMcplex(config(port), { port });
  main = await connectClient(mx.url, { name: "main-client" });
  side = await connectClient(`http://127.0.0.1:${port}/side`, { name: "side-client" });
  await echo(main, "before");
  await echo(side, "before");
  const alt = await http(`http://127.0.0.1:${port}/alt`, { body: request("ping") });
  assert.equal(alt.status, 404, "no /alt route yet");
  assert.equal(await portAccepts(port2), false);
});

test("a saved edit adds a route and a listener; running sessions keep working", async () => {
  const applied = count("config reload applied");
  save(config(port, { alt: true, bind2: port2 }));
  await waitLog("config reload applied", applied, "reload applied");
  assert.match(logText(), /2 sessions kept, 0 ended|sessions? kept/);
  await echo(main, "after route added");
  await echo(side, "after route added");
  const alt = await connectClient(`http://127.0.0.1:${port}/alt`, { name: "alt-client" });
  await echo(alt, "new route");
  await alt.close();
  await waitFor(() => portAccepts(port2), { what: `new listener on ${port2}` });
  const c2 = await connectClient(`http://127.0.0.1:${port2}/mcp`, { name: "bind2-client" });
  await echo(c2, "new listener");
  await c2.close();
});

test("a broken edit is rejected with every error; the old config keeps serving", async () => {
  const rejected = count("config reload rejected");
  const applied = count("config reload applied");
  save(config(port, { alt: true, bind2: port2, broken: true }));
  await waitLog("config reload rejected", rejected, "reload rejected");
  await sleep(300);
  assert.equal(count("config reload applied"), applied, "nothing applied");
  const lines = logText().split("\n").filter((l) => l.includes("config reload rejected"));
  assert.ok(lines.some((l) => /bogusField/.test(l)), lines.join("\n"));
  assert.ok(lines.some((l) => /bad name with spaces/.test(l)), lines.join("\n"));
  await echo(main, "after broken edit");
  await echo(side, "after broken edit");
  const alt = await http(`http://127.0.0.1:${port}/alt`, {
    body: request("initialize", { protocolVersion: PROTOCOL_VERSION, capabilities: {},
      clientInfo: { name: "raw", version: "0" } }) });
  assert.equal(alt.status, 200, "/alt still routed");
  assert.ok(alt.json?.result, alt.text.slice(0, 300));
  assert.equal(await portAccepts(port2), true);
});

test("an edit whose new listener cannot bind is rejected whole", async () => {
  const blocker = net.createServer();
  const taken = await freePort();
  await new Promise((resolve, reject) => {
    blocker.once("error", reject);
    blocker.listen(taken, "127.0.0.1", resolve);
  });
  try {
    const rejected = count("config reload rejected");
    const applied = count("config reload applied");
    // Removes "side" and moves bind2 to a taken port: neither may happen.
    save(config(port, { side: false, alt: true, bind2: taken }));
    await waitLog("config reload rejected", rejected, "reload rejected (port taken)");
    assert.equal(count("config reload applied"), applied);
    assert.match(logText(), new RegExp(`config reload rejected: listener 'bind/${taken}'.*bind`));
    await echo(side, "side survives a failed swap");
    assert.equal(await portAccepts(port2), true, "old listener kept");
  } finally {
    await new Promise((r) => blocker.close(r));
  }
});

test("SIGHUP reloads the file; sessions on unchanged backends keep running", async () => {
  // Back to the last good file first (a watched save), then SIGHUP with no change at all.
  const applied = count("config reload applied");
  save(config(port, { alt: true, bind2: port2 }));
  await waitLog("config reload applied", applied, "reload applied");
  const hup = count("reloading .* \\(SIGHUP\\)");
  const applied2 = count("config reload applied");
  process.kill(mx.pid, "SIGHUP");
  await waitLog("reloading .* \\(SIGHUP\\)", hup, "SIGHUP reload");
  await waitLog("config reload applied", applied2, "SIGHUP reload applied");
  await echo(main, "after SIGHUP");
  await echo(side, "after SIGHUP");
});

test("removing a backend ends its session with a clear error; others continue", async () => {
  // A call in flight on the side session when its backend goes away.
  const pending = side.client.callTool({
    name: "trigger-long-running-operation", arguments: { duration: 20, steps: 2 },
  }).then((r) => ({ ok: r }), (e) => ({ err: e }));
  await sleep(500);
  const applied = count("config reload applied");
  save(config(port, { side: false, alt: true }));
  await waitLog("config reload applied", applied, "reload applied (side removed)");
  const outcome = await Promise.race([pending, sleep(10000).then(() => ({ timeout: true }))]);
  assert.ok(outcome.err, `pending call: ${J(outcome)}`);
  assert.match(String(outcome.err.message), /backend removed\/changed by config update/);
  assert.match(logText(), /closed: backend removed\/changed by config update/);
  // The main session goes on; /side no longer routes; the second listener is closed.
  await echo(main, "main survives");
  const gone = await http(`http://127.0.0.1:${port}/side`, { body: request("ping") });
  assert.equal(gone.status, 404);
  await waitFor(async () => !(await portAccepts(port2)), { what: `listener ${port2} closed` });
  await main.close();
  await side.close();
});

await run({ timeout: 240000 });
