// 94-xds-tls: the ADS stream over TLS (issue 5). The control plane (tests/xds/control-plane.mjs)
// serves gRPC over TLS with a certificate made by the openssl CLI at test time (a CA,
// localhost/127.0.0.1). Covered: envoy_grpc to a static cluster with an UpstreamTlsContext
// (trusted_ca, sni) in state-of-the-world mode; google_grpc with channel_credentials
// ssl_credentials.root_certs in delta mode; each gets its config and serves an SDK session;
// an untrusted CA gets no config (the control plane sees no request) while mcplex stays up;
// a missing root_certs file is a config error.
import {
  assert, test, run, freePort, startMcplex, connectClient, textOf, log, sleep, validateConfig, TMP,
} from "./lib/harness.mjs";
import { spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { startControlPlane, TYPE } from "../xds/control-plane.mjs";
import { mcpCluster, listener, route, adsBootstrap } from "../xds/resources.mjs";

const CERTS = path.join(TMP, "certs");
const file = (n) => path.join(CERTS, n);

function openssl(...args) {
  return new Promise((resolve, reject) => {
    const p = spawn("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    p.stderr.on("data", (d) => (err += d));
    const timer = setTimeout(() => p.kill("SIGKILL"), 20000);
    p.once("close", (code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`openssl ${args.join(" ")}: ${err}`));
    });
  });
}

let cp;

async function publish(nodeId, port) {
  await cp.setSnapshot(nodeId, {
    version: "v1",
    cluster: [mcpCluster("a", [{ name: "a", NAME: "A" }])],
    listener: [listener("mcp", port, { routeName: "mcp_route" })],
    route: [route("mcp_route", { a: 100 })],
  });
}

// An ACK of |type| from the mcplex with node id |nodeId| (each test uses its own node id).
const acked = (nodeId, type) => (reqs) =>
  reqs.some((q) => q.node === nodeId && q.type_url === type && q.response_nonce && !q.error_detail);

async function sessionThrough(mx) {
  const c = await connectClient(mx.url);
  try {
    return textOf(await c.client.callTool({ name: "a__whoami", arguments: {} }));
  } finally {
    await c.close();
  }
}

test("certificates and a control plane serving gRPC over TLS", async () => {
  fs.mkdirSync(CERTS, { recursive: true });
  for (const ca of ["ca", "other-ca"]) {
    await openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
      "-keyout", file(`${ca}.key`), "-out", file(`${ca}.crt`), "-days", "2", "-subj", `/CN=${ca}`);
  }
  fs.writeFileSync(file("cp.ext"), "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
  await openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", file("cp.key"), "-out", file("cp.csr"), "-subj", "/CN=localhost");
  await openssl("x509", "-req", "-in", file("cp.csr"), "-CA", file("ca.crt"), "-CAkey", file("ca.key"),
    "-CAcreateserial", "-out", file("cp.crt"), "-days", "2", "-extfile", file("cp.ext"));
  cp = await startControlPlane({
    log: (m) => log(`cp: ${m}`),
    tls: { key: fs.readFileSync(file("cp.key")), cert: fs.readFileSync(file("cp.crt")) },
  });
});

test("envoy_grpc: a static cluster with an UpstreamTlsContext (SotW)", async () => {
  const port = await freePort();
  await publish("tls-sotw", port);
  const mx = await startMcplex(adsBootstrap("tls-sotw", cp.port, { tls: { ca: file("ca.crt"), sni: "localhost" } }),
    { port, flag: "-c", name: "mcplex-xds-tls-sotw" });
  for (const t of [TYPE.cluster, TYPE.listener, TYPE.route]) {
    await cp.waitFor(acked("tls-sotw", t), { what: `ACK of ${t}` });
  }
  assert.ok(cp.requests.some((r) => r.mode === "sotw" && r.node === "tls-sotw"), "SotW requests");
  assert.equal(await sessionThrough(mx), "A");
}, { timeout: 45000 });

test("google_grpc: channel_credentials.ssl_credentials.root_certs (delta)", async () => {
  const port = await freePort();
  await publish("tls-delta", port);
  const mx = await startMcplex(adsBootstrap("tls-delta", cp.port, { delta: true, googleGrpc: true,
    tls: { ca: file("ca.crt") } }), { port, flag: "-c", name: "mcplex-xds-tls-delta" });
  for (const t of [TYPE.cluster, TYPE.listener, TYPE.route]) {
    await cp.waitFor(acked("tls-delta", t), { what: `ACK of ${t}` });
  }
  assert.ok(cp.requests.some((r) => r.mode === "delta" && r.node === "tls-delta"), "delta requests");
  assert.equal(await sessionThrough(mx), "A");
}, { timeout: 45000 });

test("an untrusted control plane certificate: no config, no crash", async () => {
  const n = cp.requests.length;
  const port = await freePort();
  const adminPort = await freePort();
  // A static listener shows that mcplex is up while the ADS stream cannot connect.
  const staticListener = `  listeners:
  - name: up
    address: {socket_address: {address: 127.0.0.1, port_value: ${adminPort}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: up
          route_config:
            virtual_hosts: [{name: up, domains: ["*"], routes: [{match: {prefix: /}, direct_response: {status: 200, body: {inline_string: up}}}]}]
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
`;
  await publish("tls-bad", port);
  const mx = await startMcplex(adsBootstrap("tls-bad", cp.port, { tls: { ca: file("other-ca.crt") }, staticListener }),
    { port: adminPort, flag: "-c", name: "mcplex-xds-tls-bad" });
  await sleep(2000);
  assert.ok(!cp.requests.slice(n).some((r) => r.node === "tls-bad"), "no request may reach the control plane");
  const r = await fetch(`http://127.0.0.1:${adminPort}/`);
  assert.equal(await r.text(), "up");
  assert.equal(mx.exitInfo, null);
}, { timeout: 30000 });

test("config error: a missing root_certs file", async () => {
  const r = await validateConfig("xds-tls-missing.yaml",
    adsBootstrap("x", 1, { googleGrpc: true, tls: { ca: file("nope.crt") } }));
  assert.notEqual(r.code, 0);
  assert.match(r.stdout + r.stderr, /root_certs.*nope\.crt/);
}, { timeout: 20000 });

test("stop the control plane", async () => {
  await cp.stop();
});

await run();
