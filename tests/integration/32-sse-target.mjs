// 32-sse-target: a legacy HTTP+SSE target (MCP 2024-11-05; the npm server-everything in "sse"
// mode: GET /sse, then POST /message?sessionId=...) multiplexed with a stdio target (tiny), in
// the agentgateway-style file (`sse: {host: URL}`) and in an Envoy bootstrap (McpBackend target
// `sse: {url}`). The official SDK client lists and calls the tools of both; a resource of the
// SSE target is read back through its prefixed URI; a wrong SSE path fails that target only
// (FAIL_OPEN) and the stdio target keeps working; the SSE server going away fails the calls to
// that target with a JSON-RPC error while the stdio target keeps serving the session.
// The transport is src/mcp/transport_sse.c (unit test: tests/unit/mcp/test_transport_sse.c).
import {
  assert, test, run, freePort, startMcplex, startEverythingHttp, connectClient, stdioPeer, textOf, stopProcess,
  J,
} from "./lib/harness.mjs";

const tiny = stdioPeer("tiny");
const everything = await startEverythingHttp({ name: "everything-sse", mode: "sse" });

async function listAndCall(url, sep) {
  const c = await connectClient(url);
  const tools = (await c.client.listTools()).tools.map((t) => t.name);
  assert.ok(tools.includes(`legacy${sep}echo`), `tools: ${tools}`);
  assert.ok(tools.includes(`tiny${sep}whoami`), `tools: ${tools}`);
  const echo = await c.client.callTool({ name: `legacy${sep}echo`, arguments: { message: "over legacy sse" } });
  assert.match(textOf(echo), /over legacy sse/);
  const who = await c.client.callTool({ name: `tiny${sep}whoami`, arguments: {} });
  assert.equal(textOf(who), "T");
  // a second call on the same SSE stream, and a sum, to be sure replies are matched by id
  const [a, b] = await Promise.all([
    c.client.callTool({ name: `legacy${sep}echo`, arguments: { message: "one" } }),
    c.client.callTool({ name: `legacy${sep}get-sum`, arguments: { a: 2, b: 3 } }),
  ]);
  assert.match(textOf(a), /one/);
  assert.match(textOf(b), /5/);
  const resources = (await c.client.listResources()).resources;
  const legacyRes = resources.find((r) => r.uri.startsWith("legacy+"));
  assert.ok(legacyRes, `resources: ${resources.map((r) => r.uri)}`);
  const read = await c.client.readResource({ uri: legacyRes.uri });
  assert.ok(read.contents.length > 0);
  await c.terminate();
  await c.close();
}

test("agentgateway-style file: sse {host} + stdio", async () => {
  const port = await freePort();
  const mx = await startMcplex(`# legacy sse target + stdio
binds:
- port: ${port}
  listeners:
  - routes:
    - backends:
      - mcp:
          targets:
          - name: legacy
            sse: {host: ${J(everything.url)}}
          - name: tiny
            stdio: {cmd: ${J(tiny.cmd)}, args: ${J(tiny.args)}, env: {NAME: T}}
`, { port });
  await listAndCall(mx.url, "_");
}, { timeout: 60000 });

test("Envoy bootstrap: McpBackend sse {url} + stdio", async () => {
  const port = await freePort();
  const mx = await startMcplex(`# McpBackend with a legacy sse target
static_resources:
  listeners:
  - name: l
    address: {socket_address: {address: 127.0.0.1, port_value: ${port}}}
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
              routes:
              - match: {prefix: /mcp}
                route: {cluster: tools, timeout: 0s}
  clusters:
  - name: tools
    cluster_type:
      name: mcplex.clusters.mcp
      typed_config:
        "@type": type.googleapis.com/mcplex.extensions.clusters.mcp.v1.McpBackend
        targets:
        - name: legacy
          sse: {url: ${J(everything.url)}}
          timeout: 10s
        - name: tiny
          stdio: {cmd: ${J(tiny.cmd)}, args: ${J(tiny.args)}, env: {NAME: T}}
`, { port, flag: "-c", name: "mcplex-envoy" });
  await listAndCall(mx.url, "__");
}, { timeout: 60000 });

test("a wrong SSE path fails that target only (FAIL_OPEN)", async () => {
  const port = await freePort();
  const mx = await startMcplex(`# legacy sse target on a wrong path
binds:
- port: ${port}
  listeners:
  - routes:
    - backends:
      - mcp:
          targets:
          - name: legacy
            sse: {host: ${J(everything.url.replace("/sse", "/nope"))}}
          - name: tiny
            stdio: {cmd: ${J(tiny.cmd)}, args: ${J(tiny.args)}, env: {NAME: T}}
`, { port, name: "mcplex-wrong" });
  const c = await connectClient(mx.url);
  const tools = (await c.client.listTools()).tools.map((t) => t.name);
  assert.ok(tools.includes("tiny_whoami"), `tools: ${tools}`);
  assert.ok(!tools.some((t) => t.startsWith("legacy_")), `tools: ${tools}`);
  assert.equal(textOf(await c.client.callTool({ name: "tiny_whoami", arguments: {} })), "T");
  await c.close();
}, { timeout: 60000 });

test("the SSE target going away fails its calls with a JSON-RPC error; the session lives on", async () => {
  const ev = await startEverythingHttp({ name: "everything-sse-dies", mode: "sse" });
  const port = await freePort();
  const mx = await startMcplex(`# legacy sse target that dies
binds:
- port: ${port}
  listeners:
  - routes:
    - backends:
      - mcp:
          targets:
          - name: legacy
            sse: {host: ${J(ev.url)}}
          - name: tiny
            stdio: {cmd: ${J(tiny.cmd)}, args: ${J(tiny.args)}, env: {NAME: T}}
`, { port, name: "mcplex-dies" });
  const c = await connectClient(mx.url);
  assert.match(textOf(await c.client.callTool({ name: "legacy_echo", arguments: { message: "x" } })), /x/);
  await stopProcess(ev);
  let err;
  try {
    const r = await c.client.callTool({ name: "legacy_echo", arguments: { message: "y" } });
    if (r.isError) err = new Error(textOf(r));
  } catch (e) {
    err = e;
  }
  assert.ok(err, "a call to a dead SSE target must fail");
  assert.equal(textOf(await c.client.callTool({ name: "tiny_whoami", arguments: {} })), "T");
  await c.close();
}, { timeout: 60000 });

await run();
