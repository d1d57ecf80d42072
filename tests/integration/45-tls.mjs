// 45-tls: TLS on both sides of the proxy (issue 4, TLS half). Certificates are made by the
// openssl CLI at test time under the test's temporary directory (a CA, a.example.com with
// localhost and 127.0.0.1, b.example.com).
//   B: an Envoy bootstrap with two TLS filter chains (DownstreamTlsContext from files and
//      inline, filter_chain_match.server_names a.example.com/localhost and b.example.com/
//      *.b.example.com), each with its own HCM in front of a stdio "tiny" target that answers
//      whoami with the chain's name;
//   the official SDK client over https (in a child node with NODE_EXTRA_CA_CERTS) lists and
//   calls tools; curl --http1.1 over TLS with --resolve reaches each chain by SNI, curl --http2
//   gets h2 by ALPN where the chain offers it; openssl
//   s_client -servername sees each chain's certificate and the ALPN;
//   A: mcp_router to B through a cluster with an UpstreamTlsContext (trusted_ca, sni) - the
//      HTTPS target's tools called through A; the same over HTTP/2 (h2 by ALPN,
//      two sessions on one connection); a wrong CA fails cleanly;
//   the agentgateway-style file: `mcp: {host: https://localhost:.../mcp}` with the system roots
//   (here SSL_CERT_FILE=ca.crt), with `policies: {backendTLS: {root}}` and with {insecure: true};
//   config errors: a missing certificate file, identical filter chain matches; garbage instead
//   of a ClientHello does not take mcplex down.
import {
  assert, test, run, freePort, startMcplex, connectClient, names, textOf, stdioPeer, validateConfig,
  TMP, J, TESTS_DIR, sh,
} from "./lib/harness.mjs";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { pathToFileURL } from "node:url";

const tiny = stdioPeer("tiny");
const CERTS = path.join(TMP, "certs");
const file = (n) => path.join(CERTS, n);

async function openssl(...args) {
  const r = await sh("openssl", args, { timeout: 20000 });
  assert.equal(r.code, 0, `openssl ${args.join(" ")}: ${r.stderr}`);
  return r;
}

async function makeCert(name, cn, san) {
  fs.writeFileSync(file(`${name}.ext`), `subjectAltName=${san}\n`);
  await openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", file(`${name}.key`), "-out", file(`${name}.csr`), "-subj", `/CN=${cn}`);
  await openssl("x509", "-req", "-in", file(`${name}.csr`), "-CA", file("ca.crt"), "-CAkey", file("ca.key"),
    "-CAcreateserial", "-out", file(`${name}.crt`), "-days", "2", "-extfile", file(`${name}.ext`));
}

test("certificates (openssl CLI)", async () => {
  fs.mkdirSync(CERTS, { recursive: true });
  await openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", file("ca.key"), "-out", file("ca.crt"), "-days", "2", "-subj", "/CN=mcplex-test-ca");
  await openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", file("other-ca.key"), "-out", file("other-ca.crt"), "-days", "2", "-subj", "/CN=other-ca");
  await makeCert("a", "a.example.com", "DNS:a.example.com,DNS:localhost,IP:127.0.0.1");
  await makeCert("b", "b.example.com", "DNS:b.example.com,DNS:*.b.example.com");
});

// One filter chain: |names| by SNI, |tls| a DownstreamTlsContext, an HCM in front of tiny(NAME=|who|).
const chain = (names, tls, who) => `
    - filter_chain_match: {server_names: ${J(names)}}
      transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
${tls}
      filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ${who}
          route_config:
            virtual_hosts:
            - name: mcp
              domains: ["*"]
              routes:
              - match: {prefix: /mcp}
                route: {cluster: ${who}, timeout: 0s}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}`;

const tinyCluster = (who) => `
  - name: ${who}
    connect_timeout: 1s
    lb_policy: CLUSTER_PROVIDED
    cluster_type:
      name: mcplex.clusters.mcp
      typed_config:
        "@type": type.googleapis.com/mcplex.extensions.clusters.mcp.v1.McpBackend
        targets:
        - name: tiny
          stdio: {cmd: ${J(tiny.cmd)}, args: ${J(tiny.args)}, env: {NAME: ${who}}}
          timeout: 5s`;

// Chain A: certificate and key from files; chain B: inline PEM (DataSource inline_string).
const tlsBootstrap = (port, extraChain = "") => `# two TLS filter chains picked by SNI
static_resources:
  listeners:
  - name: tls
    address: {socket_address: {address: 127.0.0.1, port_value: ${port}}}
    listener_filters:
    - name: envoy.filters.listener.tls_inspector
      typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector}
    filter_chains:${chain(["a.example.com", "localhost"], `          common_tls_context:
            tls_certificates:
            - certificate_chain: {filename: ${J(file("a.crt"))}}
              private_key: {filename: ${J(file("a.key"))}}`, "chain-a")}${chain(["b.example.com", "*.b.example.com"],
  `          common_tls_context:
            tls_params: {tls_minimum_protocol_version: TLSv1_2}
            alpn_protocols: [http/1.1]
            tls_certificates:
            - certificate_chain: {inline_string: ${J(fs.readFileSync(file("b.crt"), "utf8"))}}
              private_key: {inline_string: ${J(fs.readFileSync(file("b.key"), "utf8"))}}`, "chain-b")}${extraChain}
  clusters:${tinyCluster("chain-a")}${tinyCluster("chain-b")}
`;

let B;

test("B: a TLS listener with two filter chains starts", async () => {
  const port = await freePort();
  B = await startMcplex(tlsBootstrap(port), { port, flag: "-c", name: "mcplex-tls" });
  B.https = (host) => `https://${host}:${port}/mcp`;
});

// The SDK client in a child node that trusts our CA (NODE_EXTRA_CA_CERTS is read at start).
const SDK = (p) => pathToFileURL(path.join(TESTS_DIR, "node_modules/@modelcontextprotocol/sdk/dist/esm", p)).href;
const sdkScript = `
import { Client } from ${J(SDK("client/index.js"))};
import { StreamableHTTPClientTransport } from ${J(SDK("client/streamableHttp.js"))};
const client = new Client({ name: "tls-test", version: "0.0.0" }, { capabilities: {} });
const transport = new StreamableHTTPClientTransport(new URL(process.argv[2]));
client.onerror = () => {};
await client.connect(transport);
const tools = (await client.listTools()).tools.map((t) => t.name);
const who = await client.callTool({ name: "whoami", arguments: {} });
await transport.terminateSession().catch(() => {});
await client.close();
console.log(JSON.stringify({ tools, who: who.content.map((c) => c.text).join("") }));
`;

async function sdkOverHttps(url) {
  const script = path.join(TMP, "sdk-over-https.mjs");
  fs.writeFileSync(script, sdkScript);
  const r = await sh(process.execPath, [script, url], { timeout: 30000, env: { NODE_EXTRA_CA_CERTS: file("ca.crt") } });
  assert.equal(r.code, 0, `SDK client over TLS failed: ${r.stderr.slice(-1500)}`);
  return JSON.parse(r.stdout.trim().split("\n").pop());
}

test("the SDK client over https lists and calls tools (SNI localhost -> chain A)", async () => {
  const r = await sdkOverHttps(B.https("localhost"));
  assert.ok(r.tools.includes("whoami"), `tools: ${r.tools}`);
  assert.equal(r.who, "chain-a");
}, { timeout: 45000 });

const INIT = J({
  jsonrpc: "2.0", id: 1, method: "initialize",
  params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "curl", version: "0" } },
});

// initialize, notifications/initialized, tools/call whoami with curl --http1.1 over TLS to |host|.
async function curlWhoami(host, version = "--http1.1") {
  const url = B.https(host);
  const base = ["-sS", version, "--cacert", file("ca.crt"), "--resolve", `${host}:${B.port}:127.0.0.1`,
    "-H", "content-type: application/json", "-H", "accept: application/json, text/event-stream", "--max-time", "15",
    // SNI stays |host| (from the URL); Host is a loopback name, as DNS rebinding protection wants
    // on a listener bound to 127.0.0.1 (issue 3).
    "-H", `host: localhost:${B.port}`];
  const init = await sh("curl", [...base, "-i", "-d", INIT, url]);
  assert.equal(init.code, 0, `curl initialize to ${host}: ${init.stderr}`);
  assert.match(init.stdout, version === "--http2" ? /^HTTP\/2 200/ : /^HTTP\/1\.1 200/, init.stdout.slice(0, 300));
  const session = /mcp-session-id:\s*(\S+)/i.exec(init.stdout)?.[1];
  assert.ok(session, `no session id: ${init.stdout.slice(0, 400)}`);
  const hdrs = ["-H", `mcp-session-id: ${session}`, "-H", "mcp-protocol-version: 2025-11-25"];
  await sh("curl", [...base, ...hdrs, "-d", J({ jsonrpc: "2.0", method: "notifications/initialized" }), url]);
  const call = await sh("curl", [...base, ...hdrs, "-d",
    J({ jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "whoami", arguments: {} } }), url]);
  assert.equal(call.code, 0, call.stderr);
  const m = /"text"\s*:\s*"([^"]*)"/.exec(call.stdout);
  assert.ok(m, `no text in ${call.stdout.slice(0, 300)}`);
  await sh("curl", [...base, ...hdrs, "-X", "DELETE", url]);
  return m[1];
}

test("curl --http1.1 over TLS: SNI picks the filter chain and its HCM", async () => {
  assert.equal(await curlWhoami("a.example.com"), "chain-a");
  assert.equal(await curlWhoami("b.example.com"), "chain-b");
  assert.equal(await curlWhoami("x.b.example.com"), "chain-b"); // the wildcard
}, { timeout: 60000 });

test("h2 via ALPN: curl --http2 over TLS to each chain", async () => {
  assert.equal(await curlWhoami("a.example.com", "--http2"), "chain-a");
  // Chain B offers only http/1.1 (its alpn_protocols): curl falls back to HTTP/1.1 there.
  const url = B.https("b.example.com");
  const r = await sh("curl", ["-sS", "--http2", "--cacert", file("ca.crt"), "--resolve", `b.example.com:${B.port}:127.0.0.1`,
    "-o", "/dev/null", "-w", "%{http_version}", "-H", `host: localhost:${B.port}`, "-X", "DELETE", url]);
  assert.equal(r.stdout, "1.1", r.stderr);
}, { timeout: 45000 });

async function sClient(servername, alpn) {
  const args = ["s_client", "-connect", `127.0.0.1:${B.port}`, "-servername", servername,
    "-CAfile", file("ca.crt"), "-verify_return_error"];
  if (alpn) args.push("-alpn", alpn);
  return sh("openssl", args, { timeout: 15000, input: "" });
}

test("openssl s_client: each server name sees its chain's certificate; ALPN", async () => {
  const a = await sClient("a.example.com", "h2,http/1.1");
  assert.match(a.stdout, /subject=\s*CN\s*=\s*a\.example\.com/, a.stdout.slice(0, 800));
  assert.match(a.stdout, /Verify return code: 0 \(ok\)/);
  assert.match(a.stdout, /ALPN protocol: h2/, "chain A offers h2,http/1.1 (codec AUTO)");
  const b = await sClient("b.example.com", "h2,http/1.1");
  assert.match(b.stdout, /subject=\s*CN\s*=\s*b\.example\.com/, b.stdout.slice(0, 800));
  assert.match(b.stdout, /ALPN protocol: http\/1\.1/, "chain B's alpn_protocols: [http/1.1]");
  // A name no chain serves: the handshake fails (unrecognized_name), mcplex stays up.
  const none = await sClient("nobody.test");
  assert.notEqual(none.code, 0);
  assert.equal(B.exitInfo, null);
}, { timeout: 45000 });

test("garbage instead of a ClientHello, and a half handshake: mcplex stays up", async () => {
  for (const bytes of [Buffer.from("GET /mcp HTTP/1.1\r\nHost: x\r\n\r\n"), Buffer.from([0x16, 3, 1, 0xff, 0xff, 1, 2]),
    Buffer.alloc(5000, 0x16)]) {
    await new Promise((resolve) => {
      const s = net.connect(B.port, "127.0.0.1", () => s.end(bytes));
      s.on("error", () => resolve());
      s.on("close", () => resolve());
      s.resume();
      setTimeout(() => { s.destroy(); resolve(); }, 3000);
    });
  }
  assert.equal(B.exitInfo, null);
  assert.equal(await curlWhoami("a.example.com"), "chain-a");
}, { timeout: 30000 });

// A: mcp_router to B over TLS (UpstreamTlsContext with trusted_ca and sni).
const routerToB = (port, ca, sni, h2 = false) => `# mcp_router to an HTTPS target
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
                route: {cluster: behind, timeout: 0s}
          http_filters:
          - name: envoy.filters.http.mcp_router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.mcp_router.v3.McpRouter
              servers:
              - name: behind
                mcp_cluster: {cluster: behind, path: /mcp, timeout: 5s}
  clusters:
  - name: behind
    type: STATIC
    connect_timeout: 2s${h2 ? `
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config:
          http2_protocol_options: {}` : ""}
    transport_socket:
      name: envoy.transport_sockets.tls
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
        sni: ${sni}
        common_tls_context:${h2 ? `
          alpn_protocols: [h2]` : ""}
          validation_context:
            trusted_ca: {filename: ${J(ca)}}
    load_assignment:
      cluster_name: behind
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: ${B.port}}}}}]}]
`;

test("an HTTPS target: mcp_router through an UpstreamTlsContext (trusted_ca, sni)", async () => {
  const pa = await freePort();
  const a = await startMcplex(routerToB(pa, file("ca.crt"), "b.example.com"), { port: pa, flag: "-c", name: "mcplex-to-tls" });
  const c = await connectClient(a.url);
  try {
    const tools = names((await c.client.listTools()).tools);
    assert.ok(tools.includes("whoami"), `tools: ${tools}`);
    assert.equal(textOf(await c.client.callTool({ name: "whoami", arguments: {} })), "chain-b", "SNI b.example.com");
  } finally {
    await c.close();
  }
}, { timeout: 45000 });

test("an HTTP/2 + TLS target: h2 by ALPN, two sessions on one connection", async () => {
  const pa = await freePort();
  const a = await startMcplex(routerToB(pa, file("ca.crt"), "a.example.com", true),
    // One worker: upstream connection pools are per worker thread.
    { port: pa, flag: "-c", name: "mcplex-to-h2-tls", args: ["--concurrency", "1"] });
  const c1 = await connectClient(a.url);
  const c2 = await connectClient(a.url);
  try {
    for (const c of [c1, c2]) {
      const tools = names((await c.client.listTools()).tools);
      assert.ok(tools.includes("whoami"), `tools: ${tools}`);
      assert.equal(textOf(await c.client.callTool({ name: "whoami", arguments: {} })), "chain-a", "SNI a.example.com");
    }
  } finally {
    await c1.close();
    await c2.close();
  }
  const logA = fs.readFileSync(a.logFile, "utf8");
  assert.match(logA, /h2 127\.0\.0\.1:\d+: connected/, "A reached B over HTTP/2 inside TLS");
  assert.equal((logA.match(/h2 127\.0\.0\.1:\d+: connecting/g) ?? []).length, 1, "one connection, many streams");
  assert.equal(B.exitInfo, null);
}, { timeout: 45000 });

test("an HTTPS target with an untrusted certificate fails cleanly", async () => {
  const pa = await freePort();
  const a = await startMcplex(routerToB(pa, file("other-ca.crt"), "b.example.com"),
    { port: pa, flag: "-c", name: "mcplex-to-tls-bad-ca" });
  const c = await connectClient(a.url).catch((e) => e);
  if (!(c instanceof Error)) {
    const r = await c.client.callTool({ name: "whoami", arguments: {} }).catch((e) => e);
    assert.ok(r instanceof Error || r.isError || !textOf(r).includes("chain-b"), "must not reach B");
    await c.close();
  }
  assert.equal(a.exitInfo, null);
  assert.match(fs.readFileSync(a.logFile, "utf8"), /TLS handshake failed/);
}, { timeout: 45000 });

// The agentgateway-style file with one https:// target; |policies| (YAML flow) on the target.
const httpsTargetConfig = (port, policies) => `# an https target
binds:
- port: ${port}
  listeners:
  - routes:
    - backends:
      - mcp:
          targets:
          - name: remote
            mcp: {host: ${J(B.https("localhost"))}}${policies ? `
            policies: ${policies}` : ""}
`;

async function whoamiThrough(cfg, name, env = {}) {
  const port = await freePort();
  const m = await startMcplex(httpsTargetConfig(port, cfg), { port, name, env });
  const c = await connectClient(m.url);
  try {
    const tools = names((await c.client.listTools()).tools);
    assert.ok(tools.includes("whoami"), `tools: ${tools}`);
    return textOf(await c.client.callTool({ name: "whoami", arguments: {} }));
  } finally {
    await c.close();
  }
}

test("agentgateway-style file: https:// targets (system roots, backendTLS root, backendTLS insecure)", async () => {
  // System roots: OpenSSL's default verify paths, here pointed at our CA by SSL_CERT_FILE.
  assert.equal(await whoamiThrough(null, "mcplex-https-system", { SSL_CERT_FILE: file("ca.crt") }), "chain-a");
  assert.equal(await whoamiThrough(`{backendTLS: {root: ${J(file("ca.crt"))}}}`, "mcplex-https-root"), "chain-a");
  assert.equal(await whoamiThrough("{backendTLS: {insecure: true}}", "mcplex-https-insecure"), "chain-a");
}, { timeout: 60000 });

test("config errors: a missing certificate file; two chains with the same match", async () => {
  const port = await freePort();
  const missing = tlsBootstrap(port).replace(J(file("a.crt")), J(file("nope.crt")));
  const r1 = await validateConfig("missing-cert.yaml", missing);
  assert.notEqual(r1.code, 0);
  assert.match(r1.stderr + r1.stdout, /certificate_chain: cannot read/);
  const dup = tlsBootstrap(port, chain(["b.example.com", "*.b.example.com"], `          common_tls_context:
            tls_certificates:
            - certificate_chain: {filename: ${J(file("b.crt"))}}
              private_key: {filename: ${J(file("b.key"))}}`, "chain-b"));
  const r2 = await validateConfig("duplicate-chains.yaml", dup);
  assert.notEqual(r2.code, 0);
  assert.match(r2.stderr + r2.stdout, /same matching rules/);
}, { timeout: 30000 });

await run({ timeout: 280000 });
