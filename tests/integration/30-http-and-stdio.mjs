// 30-http-and-stdio: mcplex's own MCP cluster type (mcplex.clusters.mcp / McpBackend) in an
// Envoy bootstrap, multiplexing a streamable-HTTP target given by URL (server-everything in
// streamableHttp mode) and a stdio target (server-memory), behind the CORS and router filters:
// list and call both, memory create_entities + read_graph, resources of both, the CORS
// preflight, the stdio child stopped by DELETE, and the same backend as xds.type.v3.TypedStruct.
import {
  assert, test, run, freePort, startMcplex, startEverythingHttp, connectClient, names, textOf,
  stdioPeer, descendants, describeProcs, waitFor, http, validateConfig, errorLines, TMP, J,
} from "./lib/harness.mjs";
import path from "node:path";

const memory = stdioPeer("memory");
const memoryFile = path.join(TMP, "memory.jsonl");

// The McpBackend typed config (as YAML, indented for the cluster_type.typed_config position).
const backendFields = (everythingUrl) => `
        server_info: {name: mcplex-test, version: 9.9.9}
        targets:
        - name: everything
          streamable_http: {url: ${J(everythingUrl)}}
          timeout: 5s
        - name: memory
          stdio:
            cmd: ${J(memory.cmd)}
            args: ${J(memory.args)}
            env: {MEMORY_FILE_PATH: ${J(memoryFile)}}
          timeout: 5s`;

const bootstrap = (port, typedConfig) => `# McpBackend cluster: url + stdio targets, CORS + router
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
            name: mcp
            virtual_hosts:
            - name: mcp
              domains: ["*"]
              typed_per_filter_config:
                envoy.filters.http.cors:
                  "@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy
                  allow_origin_string_match: [{exact: "http://localhost:6274"}]
                  allow_methods: GET, POST, DELETE, OPTIONS
                  allow_headers: content-type, accept, mcp-session-id, mcp-protocol-version
                  expose_headers: mcp-session-id
              routes:
              - match: {prefix: /mcp}
                route: {cluster: mixed, timeout: 0s}
          http_filters:
          - name: envoy.filters.http.cors
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors}
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
  clusters:
  - name: mixed
    connect_timeout: 1s
    lb_policy: CLUSTER_PROVIDED
    cluster_type:
      name: mcplex.clusters.mcp
      typed_config:${typedConfig}
`;

const direct = (url) => `
        "@type": type.googleapis.com/mcplex.extensions.clusters.mcp.v1.McpBackend${backendFields(url)}`;

// The same McpBackend wrapped in xds.type.v3.TypedStruct (what control planes without our
// generated code send): the fields move under value:, two more spaces of indentation.
const typedStruct = (url) => `
        "@type": type.googleapis.com/xds.type.v3.TypedStruct
        type_url: type.googleapis.com/mcplex.extensions.clusters.mcp.v1.McpBackend
        value:${backendFields(url).replace(/\n {8}/g, "\n          ")}`;

let up;
let mx;
let c;

test("server-everything (streamableHttp) and mcplex start", async () => {
  up = await startEverythingHttp();
  const port = await freePort();
  mx = await startMcplex(bootstrap(port, direct(up.url)), { port, flag: "-c" });
}, { timeout: 30000 });

test("SDK client connects; serverInfo from server_info", async () => {
  c = await connectClient(mx.url);
  const info = c.client.getServerVersion();
  assert.equal(info?.name, "mcplex-test");
  assert.equal(info?.version, "9.9.9");
});

test("tools/list: both targets, separator __", async () => {
  const n = names((await c.client.listTools()).tools);
  assert.ok(n.includes("everything__echo"), `tools: ${n}`);
  assert.ok(n.includes("memory__create_entities") && n.includes("memory__read_graph"), `tools: ${n}`);
  for (const name of n) assert.match(name, /^(everything|memory)__/);
});

test("call the HTTP target", async () => {
  const r = await c.client.callTool({ name: "everything__echo", arguments: { message: "over http" } });
  assert.equal(textOf(r), "Echo: over http");
});

test("memory: create_entities then read_graph (stdio target keeps state in the session)", async () => {
  const created = await c.client.callTool({
    name: "memory__create_entities",
    arguments: { entities: [{ name: "mcplex", entityType: "project", observations: ["written in C"] }] },
  });
  assert.ok(!created.isError, textOf(created));
  const graph = await c.client.callTool({ name: "memory__read_graph", arguments: {} });
  assert.ok(!graph.isError, textOf(graph));
  const all = textOf(graph) + J(graph.structuredContent ?? {});
  assert.match(all, /mcplex/);
  assert.match(all, /written in C/);
});

test("resources of both targets, read one from each", async () => {
  const uris = names((await c.client.listResources()).resources, "uri");
  assert.ok(uris.includes("memory+memory://knowledge-graph"), `${uris}`);
  assert.ok(uris.some((u) => u.startsWith("everything+demo://")), `${uris}`);
  const g = await c.client.readResource({ uri: "memory+memory://knowledge-graph" });
  assert.match(J(g.contents), /mcplex/);
  const d = await c.client.readResource({ uri: "everything+demo://resource/static/document/features.md" });
  assert.ok((d.contents?.[0]?.text ?? "").length > 0);
});

test("CORS preflight from an allowed origin", async () => {
  const r = await http(mx.url, {
    method: "OPTIONS", accept: null,
    headers: {
      origin: "http://localhost:6274",
      "access-control-request-method": "POST",
      "access-control-request-headers": "content-type,mcp-session-id",
    },
  });
  assert.ok(r.status === 200 || r.status === 204, `preflight: HTTP ${r.status}`);
  assert.equal(r.headers.get("access-control-allow-origin"), "http://localhost:6274");
  assert.match(r.headers.get("access-control-allow-methods") ?? "", /POST/);
});

test("CORS: a disallowed origin gets no allow-origin header", async () => {
  const r = await http(mx.url, {
    method: "OPTIONS", accept: null,
    headers: { origin: "http://evil.example", "access-control-request-method": "POST" },
  });
  assert.equal(r.headers.get("access-control-allow-origin"), null);
});

test("DELETE stops the stdio child; the HTTP target is unaffected", async () => {
  const kids = descendants(mx.pid);
  assert.ok(kids.some((k) => k.cmd.includes(memory.args[0])), `memory child: ${describeProcs(kids)}`);
  await c.terminate();
  await c.close();
  await waitFor(() => descendants(mx.pid).length === 0, { timeout: 5000, what: "memory child to exit" });
  const again = await connectClient(mx.url);
  const r = await again.client.callTool({ name: "everything__echo", arguments: { message: "again" } });
  assert.equal(textOf(r), "Echo: again");
  await again.terminate();
  await again.close();
});

test("the same backend as xds.type.v3.TypedStruct: valid and served", async () => {
  const port = await freePort();
  const text = bootstrap(port, typedStruct(up.url));
  const v = await validateConfig("typed-struct.yaml", text);
  assert.equal(v.code, 0, `--validate: exit ${v.code}\n${errorLines(v.stderr).join("\n") || v.stderr}`);
  const ts = await startMcplex(text, { port, flag: "-c", name: "mcplex-typedstruct" });
  const s = await connectClient(ts.url);
  try {
    const n = names((await s.client.listTools()).tools);
    assert.ok(n.includes("everything__echo") && n.includes("memory__read_graph"), `tools: ${n}`);
    await s.terminate();
  } finally {
    await s.close();
  }
});

await run({ timeout: 120000 });
