// mcpclient.mjs: small MCP clients for tools/bench/run.sh, on Node's http module only.
//   node mcpclient.mjs sse URL CONNS SECONDS [TOOL]   legacy HTTP+SSE load (mcp-hub's /mcp): one
//        session per connection (GET URL, then POST to its endpoint), one tools/call in flight
//        per session, unique ids, each answer checked; prints the BENCH line mcp.lua prints
//   node mcpclient.mjs sessions URL N CONNS           open N idle streamable-HTTP sessions over at
//        most CONNS keep-alive connections (initialize + notifications/initialized), print
//        "BENCH sessions=N failures=F"; the sessions stay open on the server
//   node mcpclient.mjs calls URL K                     one session, K sequential tools/call echo
//        (deterministic driver for the callgrind run); prints "BENCH calls=K failures=F"
import http from "node:http";

const [mode, url, a3, a4, a5] = process.argv.slice(2);
const INIT = {
  jsonrpc: "2.0", id: 0, method: "initialize",
  params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "bench", version: "1" } },
};

// POST one JSON body; resolves {status, headers, body}.
function post(agent, target, body, sid) {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const headers = {
      "content-type": "application/json", accept: "application/json, text/event-stream",
      "content-length": Buffer.byteLength(data),
    };
    if (sid) headers["mcp-session-id"] = sid;
    const req = http.request(target, { method: "POST", agent, headers }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => resolve({
        status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString(),
      }));
    });
    req.on("error", reject);
    req.end(data);
  });
}

// Open one streamable-HTTP session; resolves its session id.
async function openSession(agent) {
  const r = await post(agent, url, INIT);
  if (r.status !== 200 || !r.body.includes('"result"')) throw new Error(`initialize: ${r.status} ${r.body}`);
  const sid = r.headers["mcp-session-id"];
  await post(agent, url, { jsonrpc: "2.0", method: "notifications/initialized" }, sid);
  return sid;
}

// Check one tools/call answer (JSON or one SSE event) for id, result and the echoed message.
function good(body, id) {
  const m = body.match(/"id":\s*(\d+)/);
  return m && Number(m[1]) === id && body.includes('"result"') && !body.includes('"error"') &&
    !/"isError":\s*true/.test(body) && body.includes(`Echo: m${id}`);
}

function call(id, tool) {
  const params = { name: tool, arguments: { message: `m${id}` } };
  return { jsonrpc: "2.0", id, method: "tools/call", params };
}

function pct(sorted, p) {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] : 0;
}

async function sessions() {
  const n = Number(a3), conns = Number(a4 || 4);
  const agent = new http.Agent({ keepAlive: true, maxSockets: conns });
  let next = 0, failures = 0;
  async function lane() {
    while (next < n) {
      next++;
      try { if (!(await openSession(agent))) failures++; } catch { failures++; }
    }
  }
  await Promise.all(Array.from({ length: conns }, lane));
  agent.destroy();
  console.log(`BENCH sessions=${n} failures=${failures}`);
}

async function calls() {
  const k = Number(a3);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const sid = await openSession(agent);
  let failures = 0;
  for (let id = 1; id <= k; id++) {
    const r = await post(agent, url, call(id, a4 || "echo"), sid);
    if (r.status !== 200 || !good(r.body, id)) failures++;
  }
  agent.destroy();
  console.log(`BENCH calls=${k} failures=${failures}`);
}

// One legacy-SSE session: GET the stream, wait for the endpoint event, initialize, then loop.
function sseSession(agent, tool, state) {
  return new Promise((resolve) => {
    const pending = new Map();
    let endpoint = null, buf = "";
    const req = http.get(url, { agent: false, headers: { accept: "text/event-stream" } }, (res) => {
      res.setEncoding("utf8");
      res.on("data", (chunk) => {
        buf += chunk;
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const ev = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const type = (ev.match(/^event: *(.*)$/m) || [])[1] || "message";
          const data = ev.split("\n").filter((l) => l.startsWith("data:"))
            .map((l) => l.slice(5).trim()).join("\n");
          if (type === "endpoint") { endpoint = new URL(data, url).href; start(); continue; }
          const m = data.match(/"id":\s*(\d+)/);
          if (m && pending.has(Number(m[1]))) {
            const id = Number(m[1]);
            const cb = pending.get(id);
            pending.delete(id);
            cb(data);
          }
        }
      });
      res.on("end", () => resolve());
    });
    req.on("error", () => resolve());
    const rpc = (body) => new Promise((res2) => {
      if (body.id !== undefined) pending.set(body.id, res2);
      post(agent, endpoint, body).then(
        (r) => { if (body.id === undefined) res2(r.body); },
        () => { state.failures++; res2(""); });
    });
    async function start() {
      await rpc({ ...INIT, id: 1e9 + state.sessions++ });
      await rpc({ jsonrpc: "2.0", method: "notifications/initialized" });
      state.ready++;
      while (!state.go) await new Promise((r) => setTimeout(r, 5));
      while (!state.stop) {
        const id = ++state.nextid;
        const t0 = process.hrtime.bigint();
        const data = await rpc(call(id, tool));
        if (state.stop) break;
        state.lat.push(Number(process.hrtime.bigint() - t0) / 1000);
        if (!good(data, id)) {
          if (state.failures++ < 3) console.error(`BENCH bad response: ${data.slice(0, 300)}`);
        }
      }
      req.destroy();
      resolve();
    }
  });
}

async function sse() {
  const conns = Number(a3), secs = Number(a4), tool = a5 || "echo";
  const agent = new http.Agent({ keepAlive: true, maxSockets: conns });
  const state = { nextid: 0, sessions: 0, ready: 0, go: false, stop: false, lat: [], failures: 0 };
  const all = Array.from({ length: conns }, () => sseSession(agent, tool, state));
  const t0 = Date.now();
  while (state.ready < conns && Date.now() - t0 < 15000) await new Promise((r) => setTimeout(r, 10));
  state.go = true;
  const start = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, secs * 1000));
  state.stop = true;
  const dur = Number(process.hrtime.bigint() - start) / 1000;
  const lat = state.lat.slice().sort((x, y) => x - y);
  console.log(`BENCH requests=${lat.length} duration_us=${Math.round(dur)} ` +
    `p50_us=${Math.round(pct(lat, 50))} ` +
    `p99_us=${Math.round(pct(lat, 99))} failures=${state.failures + (conns - state.ready)} socket_errors=0`);
  await Promise.race([Promise.all(all), new Promise((r) => setTimeout(r, 1000))]);
  agent.destroy();
  process.exit(0);
}

const modes = { sse, sessions, calls };
if (!modes[mode] || !url) {
  console.error("usage: mcpclient.mjs sse URL CONNS SECONDS [TOOL] | sessions URL N CONNS | calls URL K");
  process.exit(2);
}
await modes[mode]();
