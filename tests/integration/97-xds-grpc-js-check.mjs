// 97-xds-grpc-js-check: checks the test control plane itself (tests/xds/control-plane.mjs)
// against an independent xDS client, the one inside @grpc/grpc-js-xds (Google's gRPC xDS client
// for Node): a grpc-js channel to xds:///echo-service resolves through our ADS server
// (Listener with api_listener -> RDS -> CDS of type EDS -> EDS), ACKs every type, and its RPCs
// reach the gRPC server the endpoints name. If this client is happy, the control plane speaks
// the protocol correctly and the mcplex xDS tests can trust it. Also: an updated EDS snapshot
// moves the client to a second server. Everything listens on 127.0.0.1.
import fs from "node:fs";
import path from "node:path";
import { assert, test, run, TMP, log, withTimeout } from "./lib/harness.mjs";
import { startControlPlane, TYPE } from "../xds/control-plane.mjs";

const NODE_ID = "grpc-js-xds-client";
let cp;
const servers = [];
let client;
let grpc;
let Echo;

const HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";

function snapshot(version, port) {
  return {
    version,
    listener: [{
      name: "echo-service",
      api_listener: {
        api_listener: {
          "@type": HCM,
          rds: { route_config_name: "echo-route", config_source: { ads: {}, resource_api_version: "V3" } },
          http_filters: [{ name: "router", typed_config: { "@type": ROUTER } }],
        },
      },
    }],
    route: [{
      name: "echo-route",
      virtual_hosts: [{
        name: "echo", domains: ["echo-service"],
        routes: [{ match: { prefix: "" }, route: { cluster: "echo-cluster" } }],
      }],
    }],
    cluster: [{
      name: "echo-cluster",
      type: "EDS",
      eds_cluster_config: { eds_config: { ads: {}, resource_api_version: "V3" } },
      lb_policy: "ROUND_ROBIN",
      connect_timeout: { seconds: 1 },
    }],
    endpoint: [{
      cluster_name: "echo-cluster",
      endpoints: [{
        locality: { region: "r", zone: "z" },
        load_balancing_weight: { value: 1 },
        lb_endpoints: [{ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: port } } } }],
      }],
    }],
  };
}

async function startEcho(name) {
  const server = new grpc.Server();
  server.addService(Echo.service, { Say: (call, cb) => cb(null, { text: `${name}:${call.request.text}` }) });
  const port = await new Promise((res, rej) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  servers.push(server);
  return port;
}

const say = (text) => withTimeout(new Promise((res, rej) =>
  client.Say({ text }, { deadline: Date.now() + 10000 }, (e, r) => (e ? rej(e) : res(r.text)))), 15000, "Say");

test("grpc-js-xds resolves xds:///echo-service through the test control plane and calls the server", async () => {
  cp = await startControlPlane({ log: (m) => log(`cp: ${m}`) });
  const bootstrap = path.join(TMP, "grpc-xds-bootstrap.json");
  fs.writeFileSync(bootstrap, JSON.stringify({
    xds_servers: [{ server_uri: `127.0.0.1:${cp.port}`, channel_creds: [{ type: "insecure" }], server_features: ["xds_v3"] }],
    node: { id: NODE_ID, cluster: "grpc-clients", locality: { region: "r", zone: "z" } },
  }));
  process.env.GRPC_XDS_BOOTSTRAP = bootstrap;
  grpc = (await import("@grpc/grpc-js")).default;
  const protoLoader = (await import("@grpc/proto-loader")).default;
  const xds = await import("@grpc/grpc-js-xds");
  (xds.register ?? xds.default.register)();
  const protoFile = path.join(TMP, "echo.proto");
  fs.writeFileSync(protoFile, 'syntax = "proto3"; package t; message Msg { string text = 1; }\n' +
    "service Echo { rpc Say(Msg) returns (Msg); }\n");
  Echo = grpc.loadPackageDefinition(protoLoader.loadSync(protoFile)).t.Echo;
  const port = await startEcho("one");
  await cp.setSnapshot(NODE_ID, snapshot("1", port));
  client = new Echo("xds:///echo-service", grpc.credentials.createInsecure());
  assert.equal(await say("hi"), "one:hi");
  for (const t of Object.values(TYPE))
    await cp.waitFor(() => cp.acked(t, "1"), { what: `grpc-js-xds ACK of ${t}` });
  const first = cp.requests.find((r) => r.rawNode);
  assert.equal(first.rawNode.id, NODE_ID);
});

test("an EDS update moves the grpc-js-xds client to a second server", async () => {
  const port = await startEcho("two");
  await cp.setSnapshot(NODE_ID, snapshot("2", port));
  await cp.waitFor(() => cp.acked(TYPE.endpoint, "2"), { what: "ACK of EDS 2" });
  let got;
  for (let i = 0; i < 50 && got !== "two:x"; i++) got = await say("x");
  assert.equal(got, "two:x");
});

run({ timeout: 90000 }).finally(async () => {
  client?.close();
  for (const s of servers) s.forceShutdown();
  await cp?.close();
  setTimeout(() => process.exit(process.exitCode ?? 0), 200).unref();
});
