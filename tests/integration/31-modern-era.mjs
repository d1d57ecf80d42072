// 31-modern-era: MCP 2026-07-28 next to the legacy era on the same endpoint. A request without a
// session whose params._meta names protocol version 2026-07-28 is served statelessly (no
// initialize): server/discover, lists with cache hints, calls routed by prefix; methods the
// revision removed get HTTP 404 with -32601; an unknown modern version gets -32022 with the
// supported list; nothing stays running afterwards; a legacy session still works beside it.
import {
  assert, test, run, freePort, startMcplex, descendants, waitFor, openSession, rpc,
  deleteSession, J, tinyPairConfig,
} from "./lib/harness.mjs";

const META = { "io.modelcontextprotocol/protocolVersion": "2026-07-28",
  "io.modelcontextprotocol/clientCapabilities": {}, "io.modelcontextprotocol/clientInfo": { name: "m", version: "1" } };

async function modern(url, method, params = {}, id = 1, meta = META) {
  const res = await fetch(url, { method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
    body: J({ jsonrpc: "2.0", id, method, params: { ...params, _meta: meta } }) });
  const text = await res.text();
  return { status: res.status, session: res.headers.get("mcp-session-id"), json: JSON.parse(text) };
}

test("sessionless 2026-07-28 requests beside a legacy session", async () => {
  const port = await freePort();
  const mx = await startMcplex(tinyPairConfig(port, "modern era"), { port });
  const legacy = await openSession(mx.url);

  const d = await modern(mx.url, "server/discover");
  assert.equal(d.status, 200);
  assert.ok(d.json.result.supportedVersions.includes("2026-07-28"), J(d.json));
  assert.ok(d.json.result.capabilities.tools, "tools capability");
  assert.equal(d.session, null, "no session in the modern era");

  const list = await modern(mx.url, "tools/list", {}, 2);
  const names = list.json.result.tools.map((t) => t.name);
  assert.ok(names.includes("a_whoami") && names.includes("b_whoami"), `${names}`);
  assert.equal(list.json.result.ttlMs, 0);
  assert.equal(list.json.result.cacheScope, "private");

  const call = await modern(mx.url, "tools/call", { name: "b_whoami", arguments: {} }, 3);
  assert.equal(call.json.result.content[0].text, "B");

  const ping = await modern(mx.url, "ping", {}, 4);
  assert.equal(ping.status, 404);
  assert.equal(ping.json.error.code, -32601);

  const bad = await modern(mx.url, "tools/list", {}, 5,
    { "io.modelcontextprotocol/protocolVersion": "2099-01-01" });
  assert.equal(bad.json.error.code, -32022);
  assert.ok(bad.json.error.data.supported.includes("2026-07-28"));

  // The legacy session is untouched; the stateless requests left no children behind.
  const r = await rpc(mx.url, legacy.session, "tools/call", { name: "a_whoami", arguments: {} });
  assert.equal(r.json.result.content[0].text, "A");
  await deleteSession(mx.url, legacy.session);
  await waitFor(() => descendants(mx.pid).length === 0, { timeout: 8000, what: "no children left" });
});

await run();
