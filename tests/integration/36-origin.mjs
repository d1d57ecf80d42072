// 36-origin: DNS rebinding protection (MCP 2025-11-25: a present and invalid Origin MUST get
// 403). mcplex listens on 127.0.0.1, so by default a Host that is not a loopback name, or an
// Origin that is not a loopback origin, gets 403 with a JSON-RPC error (id null) and no CORS
// headers, on /mcp and on the legacy /sse alike; localhost, 127.0.0.1 and [::1] Hosts and Origins
// pass; a route's allowedOrigins/allowedHosts (agentgateway-style file) or McpRoute
// allowed_hosts (Envoy bootstrap, typed_per_filter_config "mcplex.filters.http.mcp") widen the
// check; dnsRebindingProtection: false turns it off; the official SDK client keeps working.
// Requests with a chosen Host header go through node:http (fetch does not let a caller set Host).
import {
  assert, test, run, freePort, startMcplex, connectClient, stdioPeer, J,
} from "./lib/harness.mjs";
import nodeHttp from "node:http";

const tiny = stdioPeer("tiny");
const target = `
          targets:
          - name: a
            stdio: {cmd: ${J(tiny.cmd)}, args: ${J(tiny.args)}, env: {NAME: A}}`;

const INIT = J({
  jsonrpc: "2.0", id: 1, method: "initialize",
  params: {
    protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "origin-test", version: "0" },
  },
});

// One request to 127.0.0.1:|port| with exactly |headers| (Host included). Resolves
// {status, headers, text}. Reads at most the first 64 KiB (SSE bodies stay open).
function raw(port, { method = "POST", path = "/mcp", headers = {}, body = INIT, timeout = 10000 } = {}) {
  return new Promise((resolve, reject) => {
    const h = { ...headers };
    if (body !== null) {
      h["content-type"] ??= "application/json";
      h.accept ??= "application/json, text/event-stream";
    }
    const req = nodeHttp.request({ host: "127.0.0.1", port, method, path, headers: h, setHost: false,
      timeout }, (res) => {
      let text = "";
      const done = () => { req.destroy(); resolve({ status: res.statusCode, headers: res.headers, text }); };
      res.on("data", (d) => {
        text += d;
        // An SSE reply is complete at its first event; a JSON reply at its end.
        if (text.includes("\n\n") || text.length > 65536) done();
      });
      res.on("end", done);
      res.on("error", done);
    });
    req.on("timeout", () => req.destroy(new Error(`${method} ${path}: timeout`)));
    req.on("error", reject);
    if (body !== null) req.write(body);
    req.end();
  });
}

function assertForbidden(r, what, needle) {
  assert.equal(r.status, 403, `${what}: HTTP ${r.status} ${r.text.slice(0, 200)}`);
  assert.match(r.headers["content-type"] ?? "", /application\/json/, `${what}: content-type`);
  const m = JSON.parse(r.text);
  assert.equal(m.jsonrpc, "2.0");
  assert.equal(m.id, null, `${what}: id must be null`);
  assert.equal(m.error?.code, -32000);
  assert.ok(m.error.message.includes(needle), `${what}: message ${m.error.message}`);
  assert.equal(r.headers["access-control-allow-origin"], undefined, `${what}: no CORS headers on a 403`);
}

function assertAccepted(r, what) {
  assert.equal(r.status, 200, `${what}: HTTP ${r.status} ${r.text.slice(0, 200)}`);
  assert.ok(r.text.includes('"result"') && r.text.includes('"protocolVersion"'),
    `${what}: ${r.text.slice(0, 200)}`);
}

const port = await freePort();
const mx = await startMcplex(`# origin checks: default, off, allowed lists
binds:
- port: ${port}
  listeners:
  - routes:
    - name: open
      matches: [{path: {pathPrefix: /open}}]
      policies: {dnsRebindingProtection: false}
      backends:
      - mcp:${target}
    - name: allowed
      matches: [{path: {pathPrefix: /allowed}}]
      policies:
        allowedOrigins: ["https://app.example.com"]
        allowedHosts: ["mcp.example.com"]
      backends:
      - mcp:${target}
    - name: default
      policies:
        cors:
          allowOrigins: ["*"]
          allowHeaders: [content-type, mcp-session-id, mcp-protocol-version]
          exposeHeaders: [Mcp-Session-Id]
      backends:
      - mcp:${target}
`, { port });

test("the official SDK client keeps working", async () => {
  const c = await connectClient(mx.url);
  const tools = (await c.client.listTools()).tools.map((t) => t.name);
  assert.ok(tools.includes("whoami"), `tools: ${tools}`);
  const r = await c.client.callTool({ name: "whoami", arguments: {} });
  assert.equal(r.content[0].text, "A");
  await c.close();
});

test("loopback Host and Origin values are accepted", async () => {
  for (const [host, origin] of [
    [`127.0.0.1:${port}`, undefined],
    [`localhost:${port}`, "http://localhost:6274"],
    [`LOCALHOST:${port}`, `http://127.0.0.1:${port}`],
    [`[::1]:${port}`, "http://[::1]:5173"],
    ["localhost", "https://localhost"],
  ]) {
    const headers = { host };
    if (origin) headers.origin = origin;
    assertAccepted(await raw(port, { headers }), `Host ${host} Origin ${origin}`);
  }
});

test("a non-loopback Host gets 403", async () => {
  assertForbidden(await raw(port, { headers: { host: `evil.example:${port}` } }), "bad Host",
    "Invalid Host header");
  // the conformance suite's probe: Host and Origin both the attacker's
  assertForbidden(await raw(port, { headers: { host: "evil.example", origin: "http://evil.example" } }),
    "rebinding probe", "Invalid Host header");
  assertForbidden(await raw(port, { headers: { host: `127.0.0.1.nip.io:${port}` } }), "lookalike", "Host");
});

test("a non-loopback Origin gets 403", async () => {
  assertForbidden(await raw(port, { headers: { host: `127.0.0.1:${port}`, origin: "http://evil.example" } }),
    "bad Origin", "Invalid Origin header: http://evil.example");
  assertForbidden(await raw(port, { headers: { host: `localhost:${port}`, origin: "null" } }), "null Origin",
    "Origin");
  assertForbidden(await raw(port, {
    headers: { host: `localhost:${port}`, origin: "http://localhost.evil.example" },
  }), "lookalike Origin", "Origin");
});

test("CORS preflights are not weakened: only accepted origins get CORS headers", async () => {
  const pre = (origin) => raw(port, {
    method: "OPTIONS", body: null,
    headers: { host: `127.0.0.1:${port}`, origin, "access-control-request-method": "POST" },
  });
  const good = await pre("http://localhost:6274");
  assert.ok(good.status === 200 || good.status === 204, `preflight: HTTP ${good.status}`);
  assert.equal(good.headers["access-control-allow-origin"], "http://localhost:6274");
  assertForbidden(await pre("http://evil.example"), "evil preflight", "Origin");
});

test("the legacy /sse endpoint is protected too", async () => {
  assertForbidden(await raw(port, { method: "GET", path: "/sse", body: null,
    headers: { host: "evil.example", accept: "text/event-stream" } }), "GET /sse", "Host");
  assertForbidden(await raw(port, { path: "/sse?sessionId=x",
    headers: { host: `127.0.0.1:${port}`, origin: "http://evil.example" } }), "POST /sse", "Origin");
});

test("a route's allowedOrigins and allowedHosts are accepted, others still not", async () => {
  assertAccepted(await raw(port, { path: "/allowed/mcp",
    headers: { host: `127.0.0.1:${port}`, origin: "https://app.example.com" } }), "allowed origin");
  assertAccepted(await raw(port, { path: "/allowed/mcp", headers: { host: "mcp.example.com" } }),
    "allowed host");
  assertAccepted(await raw(port, { path: "/allowed/mcp", headers: { host: `mcp.example.com:${port}` } }),
    "allowed host, any port");
  assertForbidden(await raw(port, { path: "/allowed/mcp",
    headers: { host: `127.0.0.1:${port}`, origin: "https://other.example" } }), "other origin", "Origin");
  assertForbidden(await raw(port, { path: "/allowed/mcp", headers: { host: "other.example" } }), "other host",
    "Host");
  // the lists belong to that route only
  assertForbidden(await raw(port, { headers: { host: "mcp.example.com" } }), "allowed host elsewhere",
    "Host");
});

test("dnsRebindingProtection: false accepts any Host and Origin", async () => {
  assertAccepted(await raw(port, { path: "/open/mcp",
    headers: { host: "evil.example", origin: "http://evil.example" } }), "protection off");
});

test("Envoy bootstrap: McpRoute allowed_hosts on a virtual host, OFF on a route", async () => {
  const p2 = await freePort();
  const mx2 = await startMcplex(`# McpRoute in typed_per_filter_config
static_resources:
  listeners:
  - name: l
    address: {socket_address: {address: 127.0.0.1, port_value: ${p2}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: l
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
          route_config:
            name: rc
            virtual_hosts:
            - name: all
              domains: ["*"]
              typed_per_filter_config:
                mcplex.filters.http.mcp:
                  "@type": type.googleapis.com/mcplex.extensions.filters.http.mcp.v1.McpRoute
                  allowed_hosts: ["gw.example:${p2}"]
              routes:
              - match: {prefix: /off}
                route: {cluster: tools, timeout: 0s}
                typed_per_filter_config:
                  mcplex.filters.http.mcp:
                    "@type": type.googleapis.com/xds.type.v3.TypedStruct
                    type_url: type.googleapis.com/mcplex.extensions.filters.http.mcp.v1.McpRoute
                    value: {dns_rebinding_protection: OFF}
              - match: {prefix: /}
                route: {cluster: tools, timeout: 0s}
  clusters:
  - name: tools
    cluster_type:
      name: mcplex.clusters.mcp
      typed_config:
        "@type": type.googleapis.com/mcplex.extensions.clusters.mcp.v1.McpBackend
        targets:
        - name: a
          stdio: {cmd: ${J(tiny.cmd)}, args: ${J(tiny.args)}, env: {NAME: A}}
`, { port: p2, flag: "-c", name: "mcplex-envoy" });
  assertAccepted(await raw(p2, { headers: { host: `gw.example:${p2}` } }), "allowed host:port");
  assertForbidden(await raw(p2, { headers: { host: "gw.example:1" } }), "other port", "Host");
  assertAccepted(await raw(p2, { path: "/off/mcp", headers: { host: "evil.example" } }), "route OFF");
  const c = await connectClient(mx2.url);
  assert.ok((await c.client.listTools()).tools.length > 0);
  await c.close();
});

await run();
