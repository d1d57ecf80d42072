// 96-xds-delta: mcplex under an xDS control plane, delta (incremental) ADS (api_type DELTA_GRPC). The
// control plane is tests/xds/control-plane.mjs (Envoy's genuine protos, go-control-plane's
// rules). Covered: the initial config over ADS (CDS with two McpBackend clusters, one typed, one
// as TypedStruct; LDS with an rds HCM; RDS with weighted_clusters) and an SDK client session
// through it; the node mcplex sends; weights moved from 100/0 to 0/100 while a session runs (new
// sessions move, the old one stays); a target added and removed; a bad resource NACKed with
// error_detail while the old config keeps serving and the valid resources of its response are
// applied; the control plane killed and restarted
// (reconnect, resubscribe with initial_resource_versions, the live session untouched); a
// 1,000-cluster CDS update applied while a session keeps calling tools. mcplex runs two worker
// threads here: every update reaches both.
import {
  assert, test, run, freePort, startMcplex, connectClient, textOf, waitFor, log, sleep, J,
} from "./lib/harness.mjs";
import fs from "node:fs";
import { startControlPlane, TYPE } from "../xds/control-plane.mjs";
import { mcpCluster, listener, route, adsBootstrap } from "../xds/resources.mjs";

const NODE_ID = "mcplex-delta-test";
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

const acked = (type, v) => () => cp.acked(type, v);

async function whoami(c, tool) {
  return textOf(await c.client.callTool({ name: tool, arguments: {} }));
}

test("initial config over ADS: listener, routes and MCP backends come from the control plane", async () => {
  cp = await startControlPlane({ log: (m) => log(`cp: ${m}`) });
  port = await freePort();
  const v = await publish();
  // Two worker threads: every update is published to both (connections land on either).
  mx = await startMcplex(adsBootstrap(NODE_ID, cp.port, { delta: true, googleGrpc: true }),
    { port, flag: "-c", logLevel: "debug", args: ["--concurrency", "2"] });
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
  // In the same response, a valid new cluster c and routes sending new sessions to it: applied,
  // as Envoy's CDS applies the valid part of a batch and NACKs.
  const good = mcpCluster("c", [{ name: "c", NAME: "C" }]);
  const v = await publish({ cluster: [...clusters(), bad, good], weights: { a: 0, c: 100 } });
  const nack = await cp.waitFor((reqs) => reqs.find((r) => r.type_url === TYPE.cluster && r.error_detail &&
    r.response_nonce), { what: "NACK of the bad cluster" });
  assert.match(nack.error_detail.message, /Cluster 'bad'/);
  assert.match(nack.error_detail.message, /target/);
  assert.equal(before + 1, version);
  assert.ok(cp.responses.some((r) => r.nonce === nack.response_nonce && r.version === v));
  assert.equal(await whoami(first, "a__whoami"), "A");
  await cp.waitFor(acked(TYPE.route, v), { what: `ACK of routes ${v}` });
  const c = await connectClient(mx.url);
  assert.equal(await whoami(c, "c__whoami"), "C", "the valid cluster of the NACKed response is applied");
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
    const cds = fresh.find((r) => r.type_url === TYPE.cluster && !r.response_nonce);
    const rds = fresh.find((r) => r.type_url === TYPE.route && !r.response_nonce);
    return cds && rds && fresh.some((r) => r.rawNode) ? { cds, rds } : null;
  }, { timeout: 20000, what: "resubscription after the restart" });
  assert.deepEqual(re.cds.names, ["*"]);
  assert.deepEqual(Object.keys(re.cds.initial_resource_versions).sort(), ["a", "b"]);
  assert.deepEqual(re.rds.names, ["mcp_route"]);
  assert.deepEqual(Object.keys(re.rds.initial_resource_versions), ["mcp_route"]);
  void lastV;
  const v = await publish({ weights: { a: 0, b: 100 } });
  await cp.waitFor(acked(TYPE.route, v), { timeout: 15000, what: `ACK of routes ${v} after the restart` });
  const d = await connectClient(mx.url);
  assert.equal(await whoami(d, "b__whoami"), "B");
  await d.close();
  assert.equal(await whoami(first, "a__whoami"), "A");
}, { timeout: 60000 });

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
  const v = await publish({ weights: { a: 100, b: 0 }, cluster: [...clusters(), ...many] });
  await cp.waitFor(acked(TYPE.cluster, v), { timeout: 60000, what: `ACK of 1,002 clusters ${v}` });
  await cp.waitFor(acked(TYPE.route, v), { timeout: 30000, what: `ACK of routes ${v}` });
  log(`1,002 clusters applied in ${Date.now() - started} ms; ${calls} calls meanwhile`);
  stop = true;
  await traffic;
  assert.ok(calls > 0);
  const c = await connectClient(mx.url);
  assert.equal(await whoami(c, "a__whoami"), "A");
  await c.close();
}, { timeout: 120000 });

test("both worker threads got the control plane's config and served sessions", async () => {
  const text = fs.readFileSync(mx.logFile, "utf8");
  // Connections are spread by the kernel (SO_REUSEPORT); over this file's ~20 connections each
  // worker accepts some, and each owns sessions the other hands requests to.
  assert.match(text, /worker 0 hands \S+ \S+ over to worker 1/);
  assert.match(text, /worker 1 hands \S+ \S+ over to worker 0/);
});

run({ timeout: 240000 }).finally(() => cp?.close());
