// 67-h2-sdk-and-slow-client: two HTTP checks of issue 4 that need a real client.
//   The official SDK client over h2c (HTTP/2 with prior knowledge): the SDK takes any fetch, and
//   this one speaks HTTP/2 through node:http2, so every request of the session (POSTs, the GET
//   server stream, DELETE) is an HTTP/2 stream on one connection.
//   A client that never reads its SSE stream: 10 MB of log notifications for its call are sent
//   at it; mcplex ends that stream once a few MB wait unsent instead of buffering them all, its
//   memory stays bounded, and the session keeps working for a client that reads.
import {
  assert, test, run, freePort, startMcplex, sleep, J, PROTOCOL_VERSION, tinyPairConfig,
} from "./lib/harness.mjs";
import { richConfig, richStdioTarget } from "./lib/rich.mjs";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import fs from "node:fs";
import http2 from "node:http2";
import net from "node:net";
import { Readable } from "node:stream";

// A fetch over HTTP/2 with prior knowledge (h2c), on one connection per origin.
function h2cFetch() {
  const sessions = new Map();
  const fetchImpl = async (input, init = {}) => {
    const url = input instanceof URL ? input : new URL(typeof input === "string" ? input : input.url);
    let s = sessions.get(url.origin);
    if (s === undefined || s.closed || s.destroyed) {
      s = http2.connect(url.origin);
      s.on("error", () => {});
      sessions.set(url.origin, s);
    }
    const headers = { ":method": init.method ?? "GET", ":path": url.pathname + url.search };
    for (const [k, v] of new Headers(init.headers ?? {})) headers[k] = v;
    const req = s.request(headers);
    if (init.signal) init.signal.addEventListener("abort", () => req.close(http2.constants.NGHTTP2_CANCEL));
    if (init.body !== undefined && init.body !== null) req.end(init.body); else req.end();
    const resHeaders = await new Promise((resolve, reject) => {
      req.on("response", resolve);
      req.on("error", reject);
    });
    const status = resHeaders[":status"];
    const out = new Headers();
    for (const [k, v] of Object.entries(resHeaders)) if (!k.startsWith(":")) out.set(k, String(v));
    const body = status === 204 || status === 202 || init.method === "HEAD" ? null : Readable.toWeb(req);
    return new Response(body, { status, headers: out });
  };
  fetchImpl.close = () => { for (const s of sessions.values()) s.close(); };
  return fetchImpl;
}

test("the official SDK client over h2c", async () => {
  const port = await freePort();
  const mx = await startMcplex(tinyPairConfig(port, "h2c"), { port });
  const fetchImpl = h2cFetch();
  const client = new Client({ name: "h2c", version: "1" }, { capabilities: {} });
  const transport = new StreamableHTTPClientTransport(new URL(mx.url), { fetch: fetchImpl });
  await client.connect(transport);
  const tools = (await client.listTools()).tools.map((t) => t.name);
  assert.ok(tools.includes("a_whoami") && tools.includes("b_whoami"), `${tools}`);
  assert.equal((await client.callTool({ name: "b_whoami", arguments: {} })).content[0].text, "B");
  await transport.terminateSession();
  await client.close();
  fetchImpl.close();
  const log = fs.readFileSync(mx.logFile, "utf8");
  assert.ok(!/error/i.test(log.split("\n").filter((l) => l.includes("[http2]")).join("\n")), "no HTTP/2 errors");
});

function vmRssKb(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) : 0;
}

test("a client that never reads its stream does not make mcplex buffer without bound", async () => {
  const port = await freePort();
  const mx = await startMcplex(richConfig(port, [richStdioTarget("a", { timeout: "60s" })]), { port });
  const post = (body, session, socket) => {
    const data = J(body);
    socket.write(`POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\n` +
      `accept: application/json, text/event-stream\r\n` +
      (session ? `mcp-session-id: ${session}\r\nmcp-protocol-version: ${PROTOCOL_VERSION}\r\n` : "") +
      `content-length: ${Buffer.byteLength(data)}\r\n\r\n${data}`);
  };
  // A well-behaved session first (fetch), to get a session id.
  const init = await fetch(`http://127.0.0.1:${port}/mcp`, { method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
    body: J({ jsonrpc: "2.0", id: 1, method: "initialize",
      params: { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: "slow", version: "1" } } }) });
  const session = init.headers.get("mcp-session-id");
  await init.text();
  const before = vmRssKb(mx.pid);
  // The slow client: asks for 10 MB of related notifications and never reads the answer.
  const slow = net.connect(port, "127.0.0.1");
  await new Promise((r) => slow.on("connect", r));
  slow.pause();
  post({ jsonrpc: "2.0", id: 2, method: "tools/call",
    params: { name: "flood", arguments: { count: 1000, size: 10000 } } }, session, slow);
  let peak = before;
  for (let i = 0; i < 20; i++) {
    await sleep(250);
    peak = Math.max(peak, vmRssKb(mx.pid));
  }
  // mcplex kept at most a few MB for this client (the stream's cap and the replay buffer).
  assert.ok(peak - before < 24 * 1024, `RSS grew ${peak - before} kB for a client that does not read`);
  const log = fs.readFileSync(mx.logFile, "utf8");
  assert.match(log, /client not reading stream/);
  slow.destroy();
  // The session still serves a client that reads.
  const ok = await fetch(`http://127.0.0.1:${port}/mcp`, { method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream",
      "mcp-session-id": session, "mcp-protocol-version": PROTOCOL_VERSION },
    body: J({ jsonrpc: "2.0", id: 3, method: "ping" }) });
  assert.equal(ok.status, 200);
  assert.deepEqual((await ok.json()).result, {});
}, { timeout: 60000 });

await run();
