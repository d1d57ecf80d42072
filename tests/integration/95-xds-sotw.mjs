// 95-xds-sotw: mcplex under an xDS control plane, state-of-the-world ADS (api_type GRPC). The
// control plane is tests/xds/control-plane.mjs (Envoy's genuine protos, go-control-plane's
// rules). Covered: the initial config over ADS (CDS with two McpBackend clusters, one typed, one
// as TypedStruct; LDS with an rds HCM; RDS with weighted_clusters) and an SDK client session
// through it; the node mcplex sends; weights moved from 100/0 to 0/100 while a session runs (new
// sessions move, the old one stays); a target added and removed; a bad resource NACKed with
// error_detail while the old config keeps serving and the valid clusters of the same response
// are applied (as Envoy's CDS does); the control plane killed and restarted
// (reconnect, resubscribe with the last accepted versions, the live session untouched); a
// 1,000-cluster CDS update applied while a session keeps calling tools.
import {
  assert, test, run, freePort, startMcplex, connectClient, textOf, waitFor, log, sleep, J, portAccepts,
  startEverythingHttp, validateConfig,
} from "./lib/harness.mjs";
import { startControlPlane, TYPE } from "../xds/control-plane.mjs";
import { mcpCluster, listener, route, adsBootstrap, MCP_BACKEND_TYPE } from "../xds/resources.mjs";

const NODE_ID = "mcplex-sotw-test";
let cp;
let mx;
let port;
let version = 0;
let first;

const clusters = (extraTargets = []) => [
  mcpCluster("a", [{ name: "a", NAME: "A" }, ...extraTargets]),
  mcpCluster("b", [{ name: "b", NAME: "B" }], { typedStruct: true }),
];

async function publish({ weights = { a: 100, b: 0 }, cluster = clusters(), extra = {} } = {}) {
  version++;
  await cp.setSnapshot(NODE_ID, {
    version: `v${version}`,
    cluster,
    listener: [listener("mcp", port, { routeName: "mcp_route" })],
    route: [route("mcp_route", weights)],
    ...extra,
  });
  return `v${version}`;
}

const acked = (type, v) => (reqs) =>
  reqs.some((r) => r.type_url === type && r.version_info === v && r.response_nonce && !r.error_detail);

async function whoami(c, tool) {
  return textOf(await c.client.callTool({ name: tool, arguments: {} }));
}

test("initial config over ADS: listener, routes and MCP backends come from the control plane", async () => {
  cp = await startControlPlane({ log: (m) => log(`cp: ${m}`) });
  port = await freePort();
  const v = await publish();
  mx = await startMcplex(adsBootstrap(NODE_ID, cp.port), { port, flag: "-c", logLevel: "debug" });
  for (const t of [TYPE.cluster, TYPE.listener, TYPE.route])
    await cp.waitFor(acked(t, v), { what: `ACK of ${t} ${v}` });
  first = await connectClient(mx.url);
  const tools = (await first.client.listTools()).tools.map((t) => t.name);
  assert.deepEqual(tools.sort(), ["a__add", "a__whoami"]);
  assert.equal(await whoami(first, "a__whoami"), "A");
});

test("the node: id, cluster, user agent, our MCP cluster extension", async () => {
  const r = cp.requests.find((q) => q.rawNode);
  assert.equal(r.rawNode.id, NODE_ID);
  assert.equal(r.rawNode.cluster, "mcplex-tests");
  assert.equal(r.rawNode.user_agent_name, "mcplex");
  assert.ok(r.rawNode.user_agent_version);
  const ext = r.rawNode.extensions.find((e) => e.name === "mcplex.clusters.mcp");
  assert.ok(ext, J(r.rawNode.extensions));
  assert.deepEqual(ext.type_urls, ["type.googleapis.com/mcplex.extensions.clusters.mcp.v1.McpBackend"]);
  // the first request of the stream carries the node, later ones need not
  assert.equal(cp.requests.filter((q) => q.rawNode).length >= 1, true);
});

test("weights 100/0 -> 0/100: new sessions move to b, the running session stays on a", async () => {
  const v = await publish({ weights: { a: 0, b: 100 } });
  await cp.waitFor(acked(TYPE.route, v), { what: `ACK of routes ${v}` });
  const second = await connectClient(mx.url);
  const tools = (await second.client.listTools()).tools.map((t) => t.name);
  assert.deepEqual(tools.sort(), ["b__add", "b__whoami"]);
  assert.equal(await whoami(second, "b__whoami"), "B");
  assert.equal(await whoami(first, "a__whoami"), "A", "the old session must stay on backend a");
  await second.close();
});

test("a target added to backend a, then removed (new sessions see it come and go)", async () => {
  let v = await publish({ weights: { a: 100, b: 0 }, cluster: clusters([{ name: "a2", NAME: "A2" }]) });
  await cp.waitFor(acked(TYPE.cluster, v), { what: `ACK of clusters ${v}` });
  await cp.waitFor(acked(TYPE.route, v), { what: `ACK of routes ${v}` });
  const c = await connectClient(mx.url);
  const tools = (await c.client.listTools()).tools.map((t) => t.name);
  assert.ok(tools.includes("a2__whoami"), J(tools));
  assert.equal(await whoami(c, "a2__whoami"), "A2");
  await c.close();
  v = await publish({ weights: { a: 100, b: 0 } });
  await cp.waitFor(acked(TYPE.cluster, v), { what: `ACK of clusters ${v}` });
  const d = await connectClient(mx.url);
  const tools2 = (await d.client.listTools()).tools.map((t) => t.name);
  assert.deepEqual(tools2.sort(), ["a__add", "a__whoami"]);
  await d.close();
  first = await connectClient(mx.url); // the session of test 1 may have ended with backend a's change
  assert.equal(await whoami(first, "a__whoami"), "A");
});

test("a bad cluster is NACKed with error_detail; the previous config keeps serving", async () => {
  const before = version;
  const bad = mcpCluster("bad", [{ name: "bad", NAME: "X" }]);
  bad.cluster_type.typed_config.targets = []; // an MCP backend needs at least one target
  // In the same CDS response, a valid new cluster c (Envoy applies the valid part of an LDS/CDS
  // batch and NACKs), and routes sending new sessions to it.
  const good = mcpCluster("c", [{ name: "c", NAME: "C" }]);
  const v = await publish({ cluster: [...clusters(), bad, good], weights: { a: 0, c: 100 } });
  const nack = await cp.waitFor((reqs) => reqs.find((r) => r.type_url === TYPE.cluster && r.error_detail &&
    r.response_nonce), { what: "NACK of the bad cluster" });
  assert.match(nack.error_detail.message, /Cluster 'bad'/);
  assert.match(nack.error_detail.message, /target/);
  assert.equal(nack.version_info, `v${before}`, "a NACK carries the previous accepted version");
  assert.notEqual(nack.version_info, v);
  assert.equal(await whoami(first, "a__whoami"), "A");
  await cp.waitFor(acked(TYPE.route, v), { what: `ACK of routes ${v}` });
  const c = await connectClient(mx.url);
  assert.equal(await whoami(c, "c__whoami"), "C", "the valid cluster of the NACKed batch is applied");
  await c.close();
  // a good snapshot afterwards is accepted again
  const v2 = await publish();
  await cp.waitFor(acked(TYPE.cluster, v2), { what: `ACK of clusters ${v2}` });
});

test("control plane killed and restarted: mcplex keeps serving, reconnects and resubscribes", async () => {
  const lastV = `v${version}`;
  const n = cp.requests.length;
  await cp.stop();
  await sleep(300);
  assert.equal(await whoami(first, "a__whoami"), "A", "the live session keeps working without a control plane");
  const c = await connectClient(mx.url);
  assert.equal(await whoami(c, "a__whoami"), "A", "new sessions too (last good config)");
  await c.close();
  await cp.start();
  // the new stream's first requests carry the node and the last accepted versions, empty nonces
  const re = await cp.waitFor((reqs) => {
    const fresh = reqs.slice(n);
    const cds = fresh.find((r) => r.type_url === TYPE.cluster && r.response_nonce === "");
    const rds = fresh.find((r) => r.type_url === TYPE.route && r.response_nonce === "");
    return cds && rds && fresh.some((r) => r.rawNode) ? { cds, rds } : null;
  }, { timeout: 20000, what: "resubscription after the restart" });
  assert.equal(re.cds.version_info, lastV);
  assert.equal(re.rds.version_info, lastV);
  assert.deepEqual(re.rds.names, ["mcp_route"]);
  const v = await publish({ weights: { a: 0, b: 100 } });
  await cp.waitFor(acked(TYPE.route, v), { timeout: 15000, what: `ACK of routes ${v} after the restart` });
  const d = await connectClient(mx.url);
  assert.equal(await whoami(d, "b__whoami"), "B");
  await d.close();
  assert.equal(await whoami(first, "a__whoami"), "A");
}, { timeout: 60000 });

test("routes may name a cluster before CDS delivers it (503 until then, no NACK)", async () => {
  const n = cp.requests.length;
  const v = await publish({ weights: { c: 100 } });
  await cp.waitFor(acked(TYPE.route, v), { what: `ACK of routes to the unknown cluster c ${v}` });
  assert.ok(!cp.requests.slice(n).some((r) => r.error_detail), "no NACK");
  const r = await fetch(mx.url, { method: "POST", headers: { "content-type": "application/json",
    accept: "application/json, text/event-stream" }, body: J({ jsonrpc: "2.0", id: 1, method: "initialize",
    params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "t", version: "0" } } }) });
  assert.equal(r.status, 503);
  await r.text();
  const v2 = await publish({ weights: { c: 100 }, cluster: [...clusters(), mcpCluster("c", [{ name: "c", NAME: "C" }])] });
  await cp.waitFor(acked(TYPE.cluster, v2), { what: `ACK of clusters ${v2}` });
  const s = await connectClient(mx.url);
  assert.equal(await whoami(s, "c__whoami"), "C");
  await s.close();
  assert.equal(await whoami(first, "a__whoami"), "A");
});

test("EDS: an MCP target on an EDS cluster gets its endpoints from EDS (CDS before EDS)", async () => {
  const everything = await startEverythingHttp();
  const eds = {
    name: "everything_eds",
    type: "EDS",
    eds_cluster_config: { eds_config: { ads: {}, resource_api_version: "V3" }, service_name: "everything_cla" },
    connect_timeout: { seconds: 2 },
  };
  const http = {
    name: "h",
    connect_timeout: { seconds: 1 },
    lb_policy: "CLUSTER_PROVIDED",
    cluster_type: { name: "mcplex.clusters.mcp", typed_config: {
      "@type": MCP_BACKEND_TYPE, prefix_mode: "ALWAYS",
      targets: [{ name: "ev", streamable_http: { cluster: "everything_eds", path: "/mcp" }, timeout: { seconds: 10 } }],
    } },
  };
  const n = cp.requests.length;
  const v = await publish({
    weights: { h: 100 },
    cluster: [...clusters(), eds, http],
    extra: { endpoint: [{ cluster_name: "everything_cla", endpoints: [{ lb_endpoints: [{ endpoint: { address: {
      socket_address: { address: "127.0.0.1", port_value: everything.port } } } }] }] }] },
  });
  const edsReq = await cp.waitFor((reqs) => reqs.slice(n).find((r) => r.type_url === TYPE.endpoint),
    { what: "an EDS subscription" });
  assert.deepEqual(edsReq.names, ["everything_cla"]);
  await cp.waitFor(acked(TYPE.endpoint, v), { what: `ACK of EDS ${v}` });
  const c = await connectClient(mx.url);
  const tools = (await c.client.listTools()).tools.map((t) => t.name);
  assert.ok(tools.includes("ev__echo"), J(tools));
  const r = await c.client.callTool({ name: "ev__echo", arguments: { message: "via eds" } });
  assert.match(textOf(r), /via eds/);
  await c.close();
  // back to the plain config: the EDS subscription is dropped again
  const v2 = await publish({ weights: { a: 100, b: 0 } });
  await cp.waitFor(acked(TYPE.cluster, v2), { what: `ACK of clusters ${v2}` });
  await cp.waitFor(acked(TYPE.route, v2), { what: `ACK of routes ${v2}` });
  await cp.waitFor((reqs) => reqs.some((q) => q.type_url === TYPE.endpoint && q.names.length === 0),
    { what: "EDS unsubscribed" });
});

test("a 1,000-cluster CDS update is applied while traffic flows", async () => {
  const many = Array.from({ length: 1000 }, (_, i) => mcpCluster(`bulk-${i}`, [{ name: `t${i}`, NAME: `N${i}` }]));
  let stop = false;
  let calls = 0;
  const traffic = (async () => {
    while (!stop) {
      assert.equal(await whoami(first, "a__whoami"), "A");
      calls++;
    }
  })();
  const started = Date.now();
  const v = await publish({ weights: { a: 0, b: 100 }, cluster: [...clusters(), ...many] });
  await cp.waitFor(acked(TYPE.cluster, v), { timeout: 60000, what: `ACK of 1,002 clusters ${v}` });
  await cp.waitFor(acked(TYPE.route, v), { timeout: 30000, what: `ACK of routes ${v}` });
  log(`1,002 clusters applied in ${Date.now() - started} ms; ${calls} calls meanwhile`);
  stop = true;
  await traffic;
  assert.ok(calls > 0);
  const c = await connectClient(mx.url);
  assert.equal(await whoami(c, "b__whoami"), "B");
  await c.close();
}, { timeout: 120000 });

test("a listener whose RouteConfiguration never comes serves (404) after initial_fetch_timeout", async () => {
  const ghostPort = await freePort();
  const node = "mcplex-sotw-ghost";
  await cp.setSnapshot(node, {
    version: "g1",
    cluster: clusters(),
    listener: [listener("ghost", ghostPort, { routeName: "nowhere" })],
  });
  const started = Date.now();
  const gx = await startMcplex(adsBootstrap(node, cp.port, { fetchTimeout: "1s" }),
    { port: ghostPort, flag: "-c", name: "mcplex-ghost", logLevel: "debug" });
  const waited = Date.now() - started;
  assert.ok(waited >= 900, `the listener must warm until the timeout (opened after ${waited} ms)`);
  const r = await fetch(`http://127.0.0.1:${ghostPort}/mcp`, { method: "POST", body: "{}",
    headers: { "content-type": "application/json" } });
  assert.equal(r.status, 404);
  await r.text();
  void gx;
});

test("control plane unreachable at start: static listeners serve, dynamic ones come when it answers", async () => {
  const cpPort = await freePort();
  const staticPort = await freePort();
  const dynPort = await freePort();
  const node = "mcplex-sotw-late";
  const staticListener = `  listeners:
  - name: static
    address: {socket_address: {address: 127.0.0.1, port_value: ${staticPort}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: static
          route_config:
            virtual_hosts:
            - name: s
              domains: ["*"]
              routes: [{match: {prefix: /}, direct_response: {status: 200, body: {inline_string: static}}}]
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
`;
  await startMcplex(adsBootstrap(node, cpPort, { staticListener }),
    { port: staticPort, flag: "-c", name: "mcplex-late", logLevel: "debug" });
  const r = await fetch(`http://127.0.0.1:${staticPort}/`);
  assert.equal(await r.text(), "static");
  const late = await startControlPlane({ port: cpPort, log: (m) => log(`late cp: ${m}`) });
  try {
    await late.setSnapshot(node, {
      version: "l1",
      cluster: clusters(),
      listener: [listener("dyn", dynPort, { routeName: "dyn_route" })],
      route: [route("dyn_route", { a: 100, b: 0 })],
    });
    await waitFor(() => portAccepts(dynPort), { timeout: 20000, what: "the dynamic listener" });
    const c = await connectClient(`http://127.0.0.1:${dynPort}/mcp`);
    assert.equal(await whoami(c, "a__whoami"), "A");
    await c.close();
  } finally {
    await late.close();
  }
}, { timeout: 60000 });

test("--validate checks dynamic_resources (api_type, grpc service, config sources, node.id)", async () => {
  const bad = adsBootstrap("x", 1)
    .replace("api_type: GRPC", "api_type: REST")
    .replace("  id: x\n", "")
    .replace("lds_config: {resource_api_version: V3, ads: {}}", "lds_config: {path_config_source: {path: l.yaml}}");
  const r = await validateConfig("bad-ads.yaml", bad);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /dynamic_resources\.ads_config\.api_type: must be GRPC or DELTA_GRPC/);
  assert.match(r.stderr, /dynamic_resources\.lds_config: only ads: \{\} is supported/);
  assert.match(r.stderr, /node\.id: is required/);
  const bad2 = adsBootstrap("x", 1).replace("cluster_name: xds_cluster}", "cluster_name: nope}");
  const r2 = await validateConfig("bad-ads-cluster.yaml", bad2);
  assert.equal(r2.code, 1, r2.stderr);
  assert.match(r2.stderr, /envoy_grpc\.cluster_name: 'nope' must be a static cluster/);
  // Envoy takes exactly one gRPC service for ADS
  const two = adsBootstrap("x", 1).replace("    - {envoy_grpc: {cluster_name: xds_cluster}}",
    "    - {envoy_grpc: {cluster_name: xds_cluster}}\n    - {envoy_grpc: {cluster_name: xds_cluster}}");
  assert.notEqual(two, adsBootstrap("x", 1));
  const r3 = await validateConfig("two-grpc-services.yaml", two);
  assert.equal(r3.code, 1, r3.stderr);
  assert.match(r3.stderr, /grpc_services: must have a single gRPC service/);
  const good = await validateConfig("good-ads.yaml", adsBootstrap("x", 1, { delta: true }));
  assert.equal(good.code, 0, good.stderr);
});

run({ timeout: 240000 }).finally(() => cp?.close());
