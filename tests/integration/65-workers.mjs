// 65-workers: worker threads (--concurrency). Connections are spread over the workers'
// SO_REUSEPORT sockets, sessions live on one worker, and a request that lands on another worker
// is handed over to the session's owner and answered through the connection it came on. Every
// request here uses a fresh TCP connection, so most of them cross workers. The admin listener
// sees every worker's sessions and targets (/mcp/sessions, /mcp/targets, the
// server.mcp sessions gauge), /drain_listeners closes every worker's sockets, and
// /quitquitquit ends the workers and their children.
import {
  assert, test, run, freePort, startMcplex, stdioPeer, descendants, waitFor, withTimeout, portAccepts, J,
  PROTOCOL_VERSION,
} from "./lib/harness.mjs";
import http from "node:http";
import fs from "node:fs";

const tiny = stdioPeer("tiny");

// One POST on its own connection (no keep-alive agent).
function post(port, body, session) {
  return new Promise((resolve, reject) => {
    const data = J(body);
    const headers = { "content-type": "application/json", accept: "application/json, text/event-stream",
      "content-length": Buffer.byteLength(data) };
    if (session) Object.assign(headers, { "mcp-session-id": session, "mcp-protocol-version": PROTOCOL_VERSION });
    const req = http.request({ host: "127.0.0.1", port, path: "/mcp", method: "POST", agent: false, headers }, (res) => {
      let text = "";
      res.on("data", (c) => (text += c));
      res.on("end", () => resolve({ status: res.status ?? res.statusCode, session: res.headers["mcp-session-id"],
        json: text ? JSON.parse(text) : null }));
    });
    req.on("error", reject);
    req.end(data);
  });
}

const admin = async (adminPort, path, method = "GET") => {
  const r = await fetch(`http://127.0.0.1:${adminPort}${path}`, { method });
  return { status: r.status, text: await r.text() };
};

test("sessions answered correctly whichever worker a request lands on", async () => {
  const port = await freePort();
  const adminPort = await freePort();
  const mx = await startMcplex(`# workers
config:
  adminAddr: 127.0.0.1:${adminPort}
binds:
- port: ${port}
  listeners:
  - routes:
    - backends:
      - mcp:
          targets:
          - name: a
            stdio: {cmd: ${J(tiny.cmd)}, args: ${J(tiny.args)}, env: {NAME: A}}
          - name: b
            stdio: {cmd: ${J(tiny.cmd)}, args: ${J(tiny.args)}, env: {NAME: B}}
`, { port, args: ["--concurrency", "4"] });
  const sessions = [];
  for (let i = 0; i < 8; i++) {
    const r = await post(port, { jsonrpc: "2.0", id: 1, method: "initialize",
      params: { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: `c${i}`, version: "1" } } });
    assert.equal(r.status, 200);
    assert.ok(r.session);
    sessions.push(r.session);
    await post(port, { jsonrpc: "2.0", method: "notifications/initialized" }, r.session);
  }
  let id = 100;
  const calls = [];
  for (const s of sessions) {
    for (let k = 0; k < 6; k++) {
      const want = k % 2 ? "B" : "A";
      const myId = id++;
      calls.push(post(port, { jsonrpc: "2.0", id: myId, method: "tools/call",
        params: { name: `${want.toLowerCase()}_whoami`, arguments: {} } }, s).then((r) => {
        assert.equal(r.status, 200);
        assert.equal(r.json.id, myId);
        assert.equal(r.json.result.content[0].text, want);
      }));
    }
  }
  await Promise.all(calls);
  // The admin listener reads every worker (on the workers' own threads).
  const listed = JSON.parse((await admin(adminPort, "/mcp/sessions")).text);
  assert.equal(listed.count, sessions.length, J(listed));
  assert.deepEqual(listed.sessions.map((x) => x.id_prefix).sort(), sessions.map((x) => x.slice(0, 8)).sort());
  const targets = JSON.parse((await admin(adminPort, "/mcp/targets")).text).targets;
  for (const name of ["a", "b"]) {
    const t = targets.find((x) => x.name === name);
    assert.equal(t.sessions, sessions.length, J(t));
    assert.equal(t.state, "ready");
  }
  const stats = (await admin(adminPort, "/stats")).text;
  assert.match(stats, /^server\.concurrency: 4$/m);
  for (const s of sessions) {
    const res = await new Promise((resolve) => {
      const req = http.request({ host: "127.0.0.1", port, path: "/mcp", method: "DELETE", agent: false,
        headers: { "mcp-session-id": s } }, (r) => { r.resume(); r.on("end", () => resolve(r.statusCode)); });
      req.end();
    });
    assert.equal(res, 200);
  }
  await waitFor(() => descendants(mx.pid).length === 0, { timeout: 8000, what: "all children gone" });
  const log = fs.readFileSync(mx.logFile, "utf8");
  assert.match(log, /4 worker threads running/);
  assert.ok((log.match(/hands POST \/mcp over to worker/g) ?? []).length > 0, "requests crossed workers");
  assert.equal(JSON.parse((await admin(adminPort, "/mcp/sessions")).text).count, 0);
  // /drain_listeners closes the sockets of all four workers.
  assert.equal((await admin(adminPort, "/drain_listeners", "POST")).status, 200);
  assert.equal(await portAccepts(port), false, "a worker still accepts");
  assert.equal((await admin(adminPort, "/quitquitquit", "POST")).status, 200);
  assert.deepEqual(await withTimeout(mx.exited, 15000, "exit after /quitquitquit"), { code: 0, signal: null });
}, { timeout: 90000 });

await run();
