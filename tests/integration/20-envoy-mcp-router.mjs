// 20-envoy-mcp-router: Envoy bootstraps in Envoy's own MCP shapes over two real
// streamable-HTTP servers (server-everything in streamableHttp mode, one per STATIC cluster):
//   part 1: examples/envoy-mcp-router.yaml as written (envoy.filters.http.mcp +
//           envoy.filters.http.mcp_router, servers[].mcp_cluster), ports swapped for free ones;
//   part 2: the envoy.clusters.mcp_multicluster cluster type behind the plain router filter.
// Names use mcp_router's "__" separator: everything__echo, other__echo.
import {
  assert, test, run, freePort, startMcplex, startEverythingHttp, connectClient, names, textOf,
  readExample, rpc, http, openSession, deleteSession, assertDeleted, J,
} from "./lib/harness.mjs";

let up1; // server-everything #1 (server "everything")
let up2; // server-everything #2 (server "other")

test("two server-everything instances (streamableHttp) start", async () => {
  [up1, up2] = await Promise.all([
    startEverythingHttp({ name: "everything-http-a" }),
    startEverythingHttp({ name: "everything-http-b" }),
  ]);
}, { timeout: 30000 });

// Checks one mcplex in front of the two upstreams: list, call both, resources, prompts, DELETE.
async function exerciseTwoServers(url) {
  const c = await connectClient(url);
  try {
    assert.equal(c.client.getServerVersion()?.name, "mcplex");
    const n = names((await c.client.listTools()).tools);
    assert.ok(n.includes("everything__echo"), `no everything__echo in ${n}`);
    assert.ok(n.includes("other__echo"), `no other__echo in ${n}`);
    for (const name of n) assert.match(name, /^(everything|other)__/, `unprefixed tool ${name}`);

    const a = await c.client.callTool({ name: "everything__echo", arguments: { message: "to a" } });
    assert.equal(textOf(a), "Echo: to a");
    const b = await c.client.callTool({ name: "other__echo", arguments: { message: "to b" } });
    assert.equal(textOf(b), "Echo: to b");

    const { resources } = await c.client.listResources();
    const uris = names(resources, "uri");
    assert.ok(uris.includes("everything+demo://resource/static/document/features.md"), `${uris}`);
    assert.ok(uris.includes("other+demo://resource/static/document/features.md"), `${uris}`);
    const read = await c.client.readResource({ uri: "other+demo://resource/static/document/features.md" });
    assert.ok((read.contents?.[0]?.text ?? "").length > 0, "empty resource text");

    const pn = names((await c.client.listPrompts()).prompts);
    assert.ok(pn.includes("everything__simple-prompt") && pn.includes("other__simple-prompt"), `${pn}`);
    const p = await c.client.getPrompt({ name: "other__simple-prompt" });
    assert.ok(p.messages?.length > 0);
    await c.terminate();
  } finally {
    await c.close();
  }
}

// ---- part 1: the example, as written ---------------------------------------------------------

let router;

test("examples/envoy-mcp-router.yaml starts (ports swapped)", async () => {
  const port = await freePort();
  const text = readExample("envoy-mcp-router.yaml")
    .replace("port_value: 3000}", `port_value: ${port}}`)
    .replace("port_value: 3101}", `port_value: ${up1.port}}`)
    .replace("port_value: 3102}", `port_value: ${up2.port}}`);
  for (const p of [port, up1.port, up2.port]) assert.ok(text.includes(`port_value: ${p}}`));
  router = await startMcplex(text, { port, flag: "-c", name: "mcplex-router", file: "envoy-mcp-router.yaml" });
});

test("mcp_router: list and call prefixed tools of both servers", async () => {
  await exerciseTwoServers(router.url);
});

test("mcp_router: unknown server prefix -> JSON-RPC -32602 with HTTP 200", async () => {
  const s = await openSession(router.url);
  const r = await rpc(router.url, s.session, "tools/call", { name: "nosuch__echo", arguments: {} });
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json?.error?.code, -32602, r.text);
  assertDeleted(await deleteSession(router.url, s.session));
});

test("mcp_router: a string request id comes back unchanged", async () => {
  const s = await openSession(router.url);
  const r2 = await http(router.url, {
    body: { jsonrpc: "2.0", id: "req-7f", method: "tools/list", params: {} },
    session: s.session, protocolVersion: s.result.protocolVersion,
  });
  assert.equal(r2.json?.id, "req-7f", r2.text.slice(0, 200));
  assert.ok(r2.json?.result?.tools?.length > 0);
  assertDeleted(await deleteSession(router.url, s.session));
});

// ---- part 2: envoy.clusters.mcp_multicluster behind envoy.filters.http.router ----------------

const multiclusterConfig = (port) => `# mcp_multicluster over two STATIC clusters, plain router filter
static_resources:
  listeners:
  - name: mcp
    address: {socket_address: {address: 127.0.0.1, port_value: ${port}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: mcp
          route_config:
            virtual_hosts:
            - name: mcp
              domains: ["*"]
              routes:
              - match: {prefix: /mcp}
                route: {cluster: multi, timeout: 0s}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
  clusters:
  - name: multi
    connect_timeout: 1s
    lb_policy: CLUSTER_PROVIDED
    cluster_type:
      name: envoy.clusters.mcp_multicluster
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.clusters.mcp_multicluster.v3.ClusterConfig
        servers:
        - name: everything
          mcp_cluster: {cluster: upstream_a, path: /mcp, timeout: 5s}
        - name: other
          mcp_cluster: {cluster: upstream_b, path: /mcp, timeout: 5s, host_rewrite_literal: localhost}
  - name: upstream_a
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: upstream_a
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: ${up1.port}}}}}]}]
  - name: upstream_b
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: upstream_b
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: ${up2.port}}}}}]}]
`;

test("mcp_multicluster + router filter: same names, both servers", async () => {
  const port = await freePort();
  const mx = await startMcplex(multiclusterConfig(port), { port, flag: "-c", name: "mcplex-multicluster" });
  await exerciseTwoServers(mx.url);
});

test("the same bootstrap as JSON loads too", async () => {
  const port = await freePort();
  // Envoy bootstraps are YAML or JSON; JSON.stringify of the parsed YAML would need a YAML
  // parser, so build the JSON form by hand for a minimal single-server router config.
  const json = {
    static_resources: {
      listeners: [{
        name: "mcp",
        address: { socket_address: { address: "127.0.0.1", port_value: port } },
        filter_chains: [{ filters: [{
          name: "envoy.filters.network.http_connection_manager",
          typed_config: {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            statPrefix: "mcp", // JSON (lowerCamel) field names are accepted as in Envoy
            routeConfig: { virtualHosts: [{ name: "mcp", domains: ["*"], routes: [
              { match: { prefix: "/mcp" }, route: { cluster: "upstream_a" } }] }] },
            httpFilters: [{
              name: "envoy.filters.http.mcp_router",
              typedConfig: {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.mcp_router.v3.McpRouter",
                servers: [{ name: "solo", mcpCluster: { cluster: "upstream_a", path: "/mcp", timeout: "5s" } }],
              },
            }],
          },
        }] }],
      }],
      clusters: [{
        name: "upstream_a", type: "STATIC", connect_timeout: "1s",
        load_assignment: { cluster_name: "upstream_a", endpoints: [{ lb_endpoints: [{ endpoint: {
          address: { socket_address: { address: "127.0.0.1", port_value: up1.port } } } }] }] },
      }],
    },
  };
  const mx = await startMcplex(J(json, null, 2), { port, flag: "-c", name: "mcplex-json", file: "router.json" });
  const c = await connectClient(mx.url);
  try {
    const n = names((await c.client.listTools()).tools);
    // One server: conditional prefixing leaves names bare.
    assert.ok(n.includes("echo"), `tools: ${n}`);
    const r = await c.client.callTool({ name: "echo", arguments: { message: "json" } });
    assert.equal(textOf(r), "Echo: json");
    await c.terminate();
  } finally {
    await c.close();
  }
});

await run({ timeout: 120000 });
