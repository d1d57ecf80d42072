// 98-xds-golden: golden wire tests between Envoy's GENUINE protos (protobufjs, the .proto files
// of @grpc/grpc-js-xds deps/) and mcplex's own protobuf-c subset, both ways. This file encodes
// DiscoveryResponses (CDS with an McpBackend typed and as TypedStruct, LDS with rds, RDS with
// weighted_clusters, EDS) and a DeltaDiscoveryResponse into a temporary directory, then runs the
// C unit test unit_xds_test_golden (tests/unit/xds/test_golden.c, next to the mcplex binary)
// with MCPLEX_XDS_GOLDEN_DIR set: it decodes and translates them and writes the DiscoveryRequest
// and DeltaDiscoveryRequest it encodes, which this file decodes with protobufjs and checks.
import fs from "node:fs";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { assert, test, run, TMP, MCPLEX_BIN } from "./lib/harness.mjs";
import { envoyRoot, encode, toStruct } from "../xds/control-plane.mjs";
import { listener } from "../xds/resources.mjs";

const TU = "type.googleapis.com/";
const GOLDEN = fs.mkdtempSync(path.join(TMP, "golden-"));
const UNIT = path.join(path.dirname(MCPLEX_BIN), "unit_xds_test_golden");

const backend = (target) => ({
  prefix_mode: "ALWAYS",
  targets: [{ name: target, stdio: { cmd: "node", args: ["server.mjs"] }, timeout: { seconds: 7 } }],
});

async function response(type, resources, nonce) {
  const any = [];
  for (const [typeName, obj] of resources)
    any.push({ type_url: `${TU}${typeName}`, value: await encode(typeName, obj) });
  const root = await envoyRoot();
  const T = root.lookupType("envoy.service.discovery.v3.DiscoveryResponse");
  return Buffer.from(T.encode(T.fromObject({
    version_info: "g1", type_url: `${TU}${type}`, nonce, resources: any,
    control_plane: { identifier: "golden" },
  })).finish());
}

test("protobufjs encodes the golden responses from the genuine protos", async () => {
  const CL = "envoy.config.cluster.v3.Cluster";
  fs.writeFileSync(path.join(GOLDEN, "cds.bin"), await response(CL, [
    [CL, { name: "typed", lb_policy: "CLUSTER_PROVIDED", cluster_type: { name: "mcplex.clusters.mcp",
      typed_config: { "@type": `${TU}mcplex.extensions.clusters.mcp.v1.McpBackend`, ...backend("t1") } } }],
    [CL, { name: "struct", lb_policy: "CLUSTER_PROVIDED", cluster_type: { name: "mcplex.clusters.mcp",
      typed_config: { "@type": `${TU}xds.type.v3.TypedStruct`, type_url: `${TU}mcplex.extensions.clusters.mcp.v1.McpBackend`,
        value: toStruct({ prefix_mode: "ALWAYS", targets: [{ name: "t2", stdio: { cmd: "node", args: ["server.mjs"] }, timeout: "7s" }] }) } } }],
  ], "n-cds"));
  const LI = "envoy.config.listener.v3.Listener";
  fs.writeFileSync(path.join(GOLDEN, "lds.bin"), await response(LI, [
    [LI, listener("golden_listener", 18080, { routeName: "golden_route" })],
  ], "n-lds"));
  const RC = "envoy.config.route.v3.RouteConfiguration";
  fs.writeFileSync(path.join(GOLDEN, "rds.bin"), await response(RC, [
    [RC, { name: "golden_route", virtual_hosts: [{ name: "v", domains: ["*"], routes: [{ match: { prefix: "/" },
      route: { weighted_clusters: { clusters: [{ name: "typed", weight: { value: 70 } }, { name: "struct", weight: { value: 30 } }] } } }] }] }],
  ], "n-rds"));
  const CLA = "envoy.config.endpoint.v3.ClusterLoadAssignment";
  const ep = (port, w) => ({ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: port } } },
    load_balancing_weight: { value: w } });
  fs.writeFileSync(path.join(GOLDEN, "eds.bin"), await response(CLA, [
    [CLA, { cluster_name: "golden_eds", endpoints: [{ lb_endpoints: [ep(9001, 1), ep(9002, 5)] }] }],
  ], "n-eds"));
  const root = await envoyRoot();
  const D = root.lookupType("envoy.service.discovery.v3.DeltaDiscoveryResponse");
  fs.writeFileSync(path.join(GOLDEN, "delta.bin"), Buffer.from(D.encode(D.fromObject({
    system_version_info: "sys1", type_url: `${TU}${CL}`, nonce: "n-delta",
    resources: [{ name: "typed", version: "rv1", resource: { type_url: `${TU}${CL}`, value: await encode(CL, { name: "typed" }) } }],
    removed_resources: ["gone"], removed_resource_names: [{ name: "gone2" }],
  })).finish()));
});

test("mcplex's protobuf-c code decodes and translates them (unit_xds_test_golden)", () => {
  assert.ok(fs.existsSync(UNIT), `${UNIT} not built`);
  const r = spawnSync(UNIT, [], { env: { ...process.env, MCPLEX_XDS_GOLDEN_DIR: GOLDEN }, encoding: "utf8", timeout: 30000 });
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.doesNotMatch(r.stdout + r.stderr, /SKIPPED/);
});

test("protobufjs decodes mcplex's DiscoveryRequest and DeltaDiscoveryRequest", async () => {
  const root = await envoyRoot();
  const R = root.lookupType("envoy.service.discovery.v3.DiscoveryRequest");
  const req = R.toObject(R.decode(fs.readFileSync(path.join(GOLDEN, "request.bin"))), { defaults: false });
  assert.equal(req.version_info, "v7");
  assert.equal(req.type_url, `${TU}envoy.config.route.v3.RouteConfiguration`);
  assert.deepEqual(req.resource_names, ["r1", "r2"]);
  assert.equal(req.response_nonce, "n9");
  assert.equal(req.error_detail.code, 3);
  assert.equal(req.error_detail.message, "Cluster 'x': bad");
  assert.equal(req.node.id, "golden-node");
  assert.equal(req.node.cluster, "golden-cluster");
  assert.equal(req.node.user_agent_name, "mcplex");
  assert.equal(req.node.user_agent_version, "9.9.9");
  assert.equal(req.node.extensions[0].name, "mcplex.clusters.mcp");
  assert.equal(req.node.extensions[0].category, "envoy.clusters");
  assert.deepEqual(req.node.extensions[0].type_urls, [`${TU}mcplex.extensions.clusters.mcp.v1.McpBackend`]);
  const DR = root.lookupType("envoy.service.discovery.v3.DeltaDiscoveryRequest");
  const d = DR.toObject(DR.decode(fs.readFileSync(path.join(GOLDEN, "delta-request.bin"))), { defaults: false });
  assert.equal(d.type_url, `${TU}envoy.config.cluster.v3.Cluster`);
  assert.deepEqual(d.resource_names_subscribe, ["*"]);
  assert.deepEqual(d.initial_resource_versions, { typed: "rv1" });
  assert.equal(d.node.id, "golden-node");
});

await run({ timeout: 60000 });
