// 46-http2: HTTP/2 on the downstream listener, next to HTTP/1.1 (issue 4, HTTP/2 half).
//   curl --http2-prior-knowledge: initialize, notifications/initialized, tools/call over h2c;
//   curl --http2 on http://: h2c via HTTP/1.1 Upgrade (101, then HTTP/2);
//   nghttp -v: the SETTINGS exchange and a ping within a session;
//   h2load -n 2000 -c 4 -m 10: every request answered (bounded in time);
//   the official SDK client over HTTP/1.1 on the same listener;
//   codec_type HTTP2 (an Envoy bootstrap, direct_response route) refuses HTTP/1.1, HTTP1 refuses
//   the preface; malformed frames and an oversized header block (raw bytes from node's net
//   module) do not take mcplex down.
//   an upstream HTTP/2 target: mcp_router to a second mcplex whose listener is HTTP2-only, through a
//   cluster with explicit_http_config.http2_protocol_options (h2c, one connection, many streams);
//   SIGTERM: GOAWAY(NO_ERROR) to an open SSE stream, exit after the drain.
// Not here yet: TLS (h2 via ALPN, downstream and upstream).
// Debian has no h2spec package (apt-cache search h2spec: nothing), so h2spec is not run.
import {
  assert, test, run, freePort, startMcplex, connectClient, names, textOf, stdioPeer, withTimeout, TMP, J, sh,
} from "./lib/harness.mjs";
import { PREFACE, frame } from "./lib/h2frames.mjs";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";

const tiny = stdioPeer("tiny");

const localConfig = (port) => `# one stdio target
binds:
- port: ${port}
  listeners:
  - routes:
    - backends:
      - mcp:
          targets:
          - name: tiny
            stdio: {cmd: ${J(tiny.cmd)}, args: ${J(tiny.args)}, env: {NAME: h2}}
`;

const directBootstrap = (port, codec) => `# direct_response, codec_type ${codec}
static_resources:
  listeners:
  - name: direct
    address: {socket_address: {address: 127.0.0.1, port_value: ${port}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: direct
          codec_type: ${codec}
          http2_protocol_options: {max_concurrent_streams: 50, initial_stream_window_size: 131072}
          route_config:
            name: direct
            virtual_hosts:
            - name: direct
              domains: ["*"]
              routes:
              - match: {prefix: /}
                direct_response: {status: 200, body: {inline_string: "pong"}}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
`;

const INIT = J({
  jsonrpc: "2.0", id: 1, method: "initialize",
  params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "curl-h2", version: "0" } },
});
const MCP_HEADERS = ["-H", "content-type: application/json", "-H", "accept: application/json, text/event-stream"];

function sessionOf(headerText) {
  const m = /^mcp-session-id:\s*(\S+)/im.exec(headerText);
  return m ? m[1] : null;
}

// initialize over curl with |mode| ("--http2-prior-knowledge" or "--http2"); returns the session.
async function curlInit(url, mode) {
  const r = await sh("curl", ["-sS", "-i", mode, ...MCP_HEADERS, "-d", INIT, url]);
  assert.equal(r.code, 0, r.stderr);
  return r;
}

function curlRpc(url, session, body) {
  return sh("curl", ["-sS", "--http2-prior-knowledge", ...MCP_HEADERS, "-H", `mcp-session-id: ${session}`,
    "-H", "mcp-protocol-version: 2025-11-25", "-w", "\n%{http_version} %{http_code}", "-d", J(body), url]);
}

// Sends raw bytes and resolves with what came back before the server closed (or |ms| passed).
function rawExchange(port, chunks, ms = 3000) {
  return new Promise((resolve) => {
    const sock = net.connect(port, "127.0.0.1");
    let got = Buffer.alloc(0);
    const done = () => {
      clearTimeout(timer);
      sock.destroy();
      resolve(got);
    };
    const timer = setTimeout(done, ms);
    sock.on("data", (d) => (got = Buffer.concat([got, d])));
    sock.on("close", done);
    sock.on("error", done);
    sock.on("connect", () => {
      for (const c of chunks) sock.write(c);
    });
  });
}

let mx;
let url;

test("h2c with prior knowledge: initialize and tools/call", async () => {
  const port = await freePort();
  mx = await startMcplex(localConfig(port), { port, logLevel: "info" });
  url = mx.url;
  const init = await curlInit(url, "--http2-prior-knowledge");
  assert.match(init.stdout, /^HTTP\/2 200/m, init.stdout.slice(0, 300));
  const session = sessionOf(init.stdout);
  assert.ok(session, "a session id");
  const note = await curlRpc(url, session, { jsonrpc: "2.0", method: "notifications/initialized" });
  assert.match(note.stdout, /2 202$/, note.stdout);
  const call = await curlRpc(url, session, {
    jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "whoami", arguments: {} },
  });
  assert.match(call.stdout, /2 200$/, call.stdout);
  assert.match(call.stdout, /"text":"h2"/, call.stdout);
});

test("h2c via HTTP/1.1 Upgrade", async () => {
  const r = await curlInit(url, "--http2");
  assert.match(r.stdout, /^HTTP\/1\.1 101 Switching Protocols/m, r.stdout.slice(0, 300));
  assert.match(r.stdout, /^HTTP\/2 200/m, r.stdout.slice(0, 400));
  assert.ok(sessionOf(r.stdout), "a session id over the upgraded stream");
  assert.match(r.stdout, /"serverInfo"/);
});

test("nghttp -v: SETTINGS exchange and a ping in a session", async () => {
  const init = await curlInit(url, "--http2-prior-knowledge");
  const session = sessionOf(init.stdout);
  const file = path.join(TMP, "ping.json");
  fs.writeFileSync(file, J({ jsonrpc: "2.0", id: 7, method: "ping" }));
  const r = await sh("nghttp", ["-v", "-d", file, "-H", "content-type: application/json",
    "-H", "accept: application/json, text/event-stream", "-H", `mcp-session-id: ${session}`,
    "-H", "mcp-protocol-version: 2025-11-25", url]);
  assert.equal(r.code, 0, r.stderr + r.stdout.slice(-500));
  assert.match(r.stdout, /recv SETTINGS frame/);
  assert.match(r.stdout, /:status: 200/);
  assert.match(r.stdout, /"id":7/);
});

test("h2load -n 2000 -c 4 -m 10 against ping", async () => {
  const init = await curlInit(url, "--http2-prior-knowledge");
  const session = sessionOf(init.stdout);
  const file = path.join(TMP, "ping-load.json");
  fs.writeFileSync(file, J({ jsonrpc: "2.0", id: 8, method: "ping" }));
  const r = await sh("h2load", ["-n", "2000", "-c", "4", "-m", "10", "-d", file,
    "-H", "content-type: application/json", "-H", "accept: application/json, text/event-stream",
    "-H", `mcp-session-id: ${session}`, "-H", "mcp-protocol-version: 2025-11-25", url], { timeout: 60000 });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /2000 succeeded, 0 failed, 0 errored/, r.stdout);
  assert.match(r.stdout, /status codes: 2000 2xx/, r.stdout);
}, { timeout: 90000 });

test("the SDK client still works over HTTP/1.1 on the same listener", async () => {
  const c = await connectClient(url);
  assert.ok(names((await c.client.listTools()).tools).includes("whoami"));
  assert.equal(textOf(await c.client.callTool({ name: "whoami", arguments: {} })), "h2");
  await c.close();
});

test("malformed frames and an oversized header block do not take mcplex down", async () => {
  const port = mx.port;
  // A SETTINGS frame whose length is not a multiple of 6, then garbage: GOAWAY and close.
  const bad = await rawExchange(port, [PREFACE, frame(4, 0, 0, Buffer.from([1, 2, 3, 4, 5])),
    Buffer.alloc(64, 0xff)]);
  assert.ok(bad.length > 0, "the server answered (SETTINGS, GOAWAY) before closing");
  // A broken preface: closed without crashing.
  await rawExchange(port, [Buffer.from("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n"), Buffer.alloc(32, 0)]);
  // HEADERS for stream 1 with two 40 KiB literal headers (80 KiB, over the 60 KiB default), in
  // CONTINUATION frames: answered 431 on that stream, the connection stays up.
  const name = Buffer.from("x-big");
  const value = Buffer.alloc(40 * 1024, "a".charCodeAt(0));
  const lenPrefix = (n) => { // HPACK integer with a 7-bit prefix, no Huffman
    const out = [];
    if (n < 127) return Buffer.from([n]);
    out.push(127);
    n -= 127;
    while (n >= 128) {
      out.push((n & 127) | 128);
      n >>= 7;
    }
    out.push(n);
    return Buffer.from(out);
  };
  const block = Buffer.concat([
    Buffer.from([0x82, 0x86, 0x84]), // :method GET, :scheme http, :path /
    Buffer.from([0x41, 1, "h".charCodeAt(0)]), // :authority h
    Buffer.from([0x00]), lenPrefix(name.length), name, lenPrefix(value.length), value,
    Buffer.from([0x00]), lenPrefix(name.length), name, lenPrefix(value.length), value,
  ]);
  const frames = [frame(4, 0, 0, Buffer.alloc(0))];
  for (let off = 0; off < block.length; off += 16384) {
    const last = off + 16384 >= block.length;
    const part = block.subarray(off, off + 16384);
    frames.push(off === 0 ? frame(1, 0x01 | (last ? 0x04 : 0), 1, part) : frame(9, last ? 0x04 : 0, 1, part));
  }
  const big = await rawExchange(port, [PREFACE, ...frames], 1500);
  // SETTINGS, SETTINGS ACK, then HEADERS (":status: 431" as a literal) and DATA on stream 1.
  assert.ok(big.includes(Buffer.from("431")) || big.length > 30, `an answer: ${big.length} bytes`);
  // A single 100 KiB field is more than HPACK decoding accepts: a connection error, no crash.
  const huge = Buffer.alloc(100 * 1024, "b".charCodeAt(0));
  const block2 = Buffer.concat([Buffer.from([0x82, 0x86, 0x84, 0x41, 1, 0x68]),
    Buffer.from([0x00]), lenPrefix(name.length), name, lenPrefix(huge.length), huge]);
  const frames2 = [];
  for (let off = 0; off < block2.length; off += 16384) {
    const last = off + 16384 >= block2.length;
    const part = block2.subarray(off, off + 16384);
    frames2.push(off === 0 ? frame(1, 0x01 | (last ? 0x04 : 0), 1, part) : frame(9, last ? 0x04 : 0, 1, part));
  }
  await rawExchange(port, [PREFACE, ...frames2], 1500);
  assert.equal(mx.exitInfo, null, "mcplex is still running");
  const init = await curlInit(url, "--http2-prior-knowledge");
  assert.match(init.stdout, /^HTTP\/2 200/m);
});

test("codec_type HTTP2 refuses HTTP/1.1; HTTP1 refuses the preface; http2 options accepted", async () => {
  const p2 = await freePort();
  const h2only = await startMcplex(directBootstrap(p2, "HTTP2"), { port: p2, flag: "-c", path: "/" });
  const ok2 = await sh("curl", ["-sS", "--http2-prior-knowledge", "-w", " %{http_version}", `http://127.0.0.1:${p2}/`]);
  assert.equal(ok2.stdout, "pong 2");
  const no1 = await sh("curl", ["-sS", "--http1.1", "-w", "%{http_code}", `http://127.0.0.1:${p2}/`]);
  assert.notEqual(no1.stdout.trim().slice(-3), "200", `HTTP/1.1 must not be served: ${no1.stdout}`);
  const p1 = await freePort();
  await startMcplex(directBootstrap(p1, "HTTP1"), { port: p1, flag: "-c", path: "/" });
  const ok1 = await sh("curl", ["-sS", "--http1.1", `http://127.0.0.1:${p1}/`]);
  assert.equal(ok1.stdout, "pong");
  const no2 = await sh("curl", ["-sS", "--http2-prior-knowledge", "-w", "%{http_code}", `http://127.0.0.1:${p1}/`]);
  assert.notEqual(no2.stdout.trim().slice(-3), "200", `HTTP/2 must not be served: ${no2.stdout}`);
  // Upgrade is not offered under HTTP1 either: the request is served as HTTP/1.1.
  const up = await sh("curl", ["-sS", "-i", "--http2", `http://127.0.0.1:${p1}/`]);
  assert.match(up.stdout, /^HTTP\/1\.1 200/m);
  assert.doesNotMatch(up.stdout, /101 Switching/);
  assert.equal(h2only.exitInfo, null);
});

// B: MCP over codec_type HTTP2 only (a stdio tiny target behind mcplex's own MCP cluster type).
const h2OnlyMcp = (port) => `# MCP on an HTTP/2-only listener
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
          codec_type: HTTP2
          route_config:
            virtual_hosts:
            - name: mcp
              domains: ["*"]
              routes:
              - match: {prefix: /mcp}
                route: {cluster: tiny, timeout: 0s}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
  clusters:
  - name: tiny
    connect_timeout: 1s
    lb_policy: CLUSTER_PROVIDED
    cluster_type:
      name: mcplex.clusters.mcp
      typed_config:
        "@type": type.googleapis.com/mcplex.extensions.clusters.mcp.v1.McpBackend
        targets:
        - name: tiny
          stdio: {cmd: ${J(tiny.cmd)}, args: ${J(tiny.args)}, env: {NAME: behind-h2}}
          timeout: 5s
`;

// A: mcp_router to B through a cluster that asks for HTTP/2 (explicit_http_config).
const h2Router = (port, upstreamPort) => `# mcp_router to an HTTP/2 upstream
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
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config:
          http2_protocol_options: {}
    load_assignment:
      cluster_name: behind
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: ${upstreamPort}}}}}]}]
`;

test("an HTTP/2 upstream target: explicit_http_config.http2_protocol_options to an HTTP2-only mcplex", async () => {
  const pb = await freePort();
  const b = await startMcplex(h2OnlyMcp(pb), { port: pb, flag: "-c", name: "mcplex-h2-upstream" });
  const pa = await freePort();
  // One worker: upstream connection pools are per worker thread.
  const a = await startMcplex(h2Router(pa, pb), { port: pa, flag: "-c", name: "mcplex-h2-router",
    args: ["--concurrency", "1"] });
  // Two SDK sessions (HTTP/1.1 downstream) share B's one HTTP/2 connection.
  const c1 = await connectClient(a.url);
  const c2 = await connectClient(a.url);
  for (const c of [c1, c2]) {
    const tools = names((await c.client.listTools()).tools);
    assert.ok(tools.includes("whoami"), `tools: ${tools}`);
    assert.equal(textOf(await c.client.callTool({ name: "whoami", arguments: {} })), "behind-h2");
  }
  await c1.close();
  await c2.close();
  const logA = fs.readFileSync(a.logFile, "utf8");
  assert.match(logA, /h2 127\.0\.0\.1:\d+: connected/, "A reached B over HTTP/2");
  assert.equal((logA.match(/h2 127\.0\.0\.1:\d+: connecting/g) ?? []).length, 1, "one connection, many streams");
  assert.equal(b.exitInfo, null);
}, { timeout: 60000 });

test("SIGTERM: GOAWAY(NO_ERROR) to an open SSE stream, then exit after the drain", async () => {
  const port = await freePort();
  // One worker: the drain log below is the main thread's (each worker thread logs its own).
  const m = await startMcplex(localConfig(port), { port, logLevel: "debug", args: ["--concurrency", "1"] });
  const init = await curlInit(m.url, "--http2-prior-knowledge");
  const session = sessionOf(init.stdout);
  // The session's server stream (GET, text/event-stream): open until the drain ends it.
  const ng = sh("nghttp", ["-v", "-H", "accept: text/event-stream", "-H", `mcp-session-id: ${session}`,
    "-H", "mcp-protocol-version: 2025-11-25", m.url], { timeout: 30000 });
  await new Promise((r) => setTimeout(r, 2000)); // nghttp connects and opens the stream
  process.kill(m.pid, "SIGTERM");
  const exit = await withTimeout(m.exited, 25000, "mcplex exit after SIGTERM");
  assert.equal(exit.code, 0, `exit ${J(exit)}`);
  const out = await ng;
  assert.match(out.stdout, /recv GOAWAY frame[^\n]*\n\s*\(last_stream_id=\d+, error_code=NO_ERROR/, out.stdout.slice(-800));
  assert.match(fs.readFileSync(m.logFile, "utf8"), /draining 1 HTTP\/2 connection/);
}, { timeout: 45000 });

await run({ timeout: 240000 });
