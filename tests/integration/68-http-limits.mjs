// 68-http-limits: request limits from config on both codecs (issue 4).
//   Per-route body limits (route.request_body_buffer_limit, the deprecated
//   per_request_buffer_limit_bytes, the virtual host's, and the 4 MiB default) answered 413 over
//   HTTP/1.1 and h2c (curl), a route allowing 8 MiB takes a 5 MiB body that the default refuses
//   (the codecs buffer up to the route configuration's largest limit);
//   http2_protocol_options.max_concurrent_streams (raw frames): a third open stream on a
//   connection allowed two is refused (RST_STREAM REFUSED_STREAM) while the first two stay
//   usable; over an acknowledged limit the connection ends with GOAWAY(PROTOCOL_ERROR);
//   a zero limit is a config error.
import { assert, test, run, freePort, startMcplex, validateConfig, TMP, sh } from "./lib/harness.mjs";
import { PREFACE, frame, parseFrames } from "./lib/h2frames.mjs";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";

const direct = (match, extra = "") => `
              - match: {${match}}${extra}
                direct_response: {status: 200, body: {inline_string: "pong"}}`;

const bootstrap = (port, smallLimit = 2048) => `# body limits per route and per virtual host
static_resources:
  listeners:
  - name: limits
    address: {socket_address: {address: 127.0.0.1, port_value: ${port}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: limits
          codec_type: AUTO
          http2_protocol_options: {max_concurrent_streams: 2}
          route_config:
            name: limits
            virtual_hosts:
            - name: strict
              domains: ["localhost:${port}"]
              per_request_buffer_limit_bytes: 3000
              routes:${direct("prefix: /")}
            - name: any
              domains: ["*"]
              routes:${direct("path: /small", `
                request_body_buffer_limit: ${smallLimit}`)}${direct("path: /legacy", `
                per_request_buffer_limit_bytes: 1000`)}${direct("path: /big", `
                request_body_buffer_limit: 8388608`)}${direct("prefix: /")}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
`;

const bodies = new Map();
function bodyFile(bytes) {
  if (!bodies.has(bytes)) {
    const f = path.join(TMP, `body-${bytes}`);
    fs.writeFileSync(f, Buffer.alloc(bytes, "x"));
    bodies.set(bytes, f);
  }
  return bodies.get(bytes);
}

// POSTs |bytes| bytes to |urlPath| over |proto|; resolves the status. HTTP/1.1 with curl; h2c
// with nghttp, since Debian's curl 7.88 reports an early answer followed by RST_STREAM(NO_ERROR)
// (RFC 9113 section 8.1, what mcplex and Envoy send for a body over the limit) as error 92.
async function post(port, urlPath, bytes, proto, host) {
  const url = `http://127.0.0.1:${port}${urlPath}`;
  if (proto === "h2c") {
    const args = ["-v", "-d", bodyFile(bytes), "-H", "content-type: application/octet-stream"];
    if (host) args.push("-H", `:authority: ${host}`);
    const r = await sh("nghttp", [...args, url]);
    const m = /recv \(stream_id=\d+\) :status: (\d+)/.exec(r.stdout);
    assert.ok(m, `nghttp: no status (exit ${r.code}): ${r.stderr}`);
    return Number(m[1]);
  }
  const args = ["-sS", "-o", "/dev/null", "-w", "%{http_version} %{http_code}", "--http1.1",
    "-H", "content-type: application/octet-stream", "--data-binary", `@${bodyFile(bytes)}`];
  if (host) args.push("-H", `host: ${host}`);
  const r = await sh("curl", [...args, url]);
  assert.equal(r.code, 0, `curl: ${r.stderr}`);
  const [version, status] = r.stdout.trim().split(" ");
  assert.equal(version, "1.1");
  return Number(status);
}

let mx;

test("start an Envoy bootstrap with per-route and per-virtual-host body limits", async () => {
  const port = await freePort();
  mx = await startMcplex(bootstrap(port), { port, flag: "-c", name: "mcplex-limits" });
});

for (const proto of ["h1", "h2c"]) {
  test(`${proto}: each route's body limit, 413 above it`, async () => {
    const p = mx.port;
    assert.equal(await post(p, "/small", 2048, proto), 200, "at the limit");
    assert.equal(await post(p, "/small", 2049, proto), 413, "one byte over");
    assert.equal(await post(p, "/legacy", 1000, proto), 200);
    assert.equal(await post(p, "/legacy", 1500, proto), 413, "per_request_buffer_limit_bytes");
    assert.equal(await post(p, "/x", 2500, proto, `localhost:${p}`), 200);
    assert.equal(await post(p, "/x", 3500, proto, `localhost:${p}`), 413, "the virtual host's limit");
    assert.equal(await post(p, "/other", 3500, proto), 200, "default route");
    assert.equal(await post(p, "/other", 5 * 1024 * 1024, proto), 413, "the 4 MiB default");
    assert.equal(await post(p, "/big", 5 * 1024 * 1024, proto), 200, "a route allowing 8 MiB");
    assert.equal(await post(p, "/big", 9 * 1024 * 1024, proto), 413, "above 8 MiB");
    assert.equal(mx.exitInfo, null);
  }, { timeout: 60000 });
}

// ---- max_concurrent_streams with raw HTTP/2 frames ----

// HPACK: :method POST (0x83), :scheme http (0x86), :path / (0x84) from the static table, and
// :authority localhost as a literal without indexing (0x01, length 9).
const POST_SLASH = Buffer.concat([Buffer.from([0x83, 0x86, 0x84, 0x01, 9]), Buffer.from("localhost")]);
const HEADERS = 1;
const DATA = 0;
const RST_STREAM = 3;
const SETTINGS = 4;
const GOAWAY = 7;
const END_STREAM = 1;
const END_HEADERS = 4;

// Opens a raw h2c connection to mcplex: {sock, frames(), until(pred, what)}.
async function rawH2() {
  const sock = net.connect(mx.port, "127.0.0.1");
  let got = Buffer.alloc(0);
  sock.on("data", (d) => (got = Buffer.concat([got, d])));
  sock.on("error", () => {});
  await new Promise((r) => sock.once("connect", r));
  const frames = () => parseFrames(got);
  const until = async (pred, what) => {
    for (let i = 0; i < 100 && !pred(frames()); i++) await new Promise((r) => setTimeout(r, 30));
    assert.ok(pred(frames()), `${what}; frames: ${JSON.stringify(frames().map((f) => [f.type, f.stream, f.flags]))}`);
  };
  sock.write(Buffer.concat([PREFACE, frame(SETTINGS, 0, 0)]));
  await until((l) => l.some((f) => f.type === SETTINGS && (f.flags & 1) === 0), "server SETTINGS");
  const settings = frames().find((f) => f.type === SETTINGS && (f.flags & 1) === 0).payload;
  let advertised = null;
  for (let o = 0; o + 6 <= settings.length; o += 6) {
    if (settings.readUInt16BE(o) === 3) advertised = settings.readUInt32BE(o + 2);
  }
  assert.equal(advertised, 2, "SETTINGS_MAX_CONCURRENT_STREAMS from http2_protocol_options");
  return { sock, frames, until };
}

// nghttp2's rule (RFC 9113 section 5.1.2 allows both): over a limit the client may not know yet
// (SETTINGS not acknowledged), that stream is refused; over an acknowledged one, the connection
// ends with GOAWAY(PROTOCOL_ERROR).
test("h2c: a third concurrent stream before SETTINGS ACK is refused (REFUSED_STREAM), the others answer", async () => {
  const { sock, frames, until } = await rawH2();
  try {
    for (const id of [1, 3, 5]) sock.write(frame(HEADERS, END_HEADERS, id, POST_SLASH));
    await until((l) => l.some((f) => (f.type === RST_STREAM && f.stream === 5) || f.type === GOAWAY),
      "RST_STREAM on stream 5");
    assert.equal(frames().find((f) => f.type === GOAWAY), undefined, "no GOAWAY");
    const rst = frames().find((f) => f.type === RST_STREAM && f.stream === 5);
    assert.equal(rst.payload.readUInt32BE(0), 7, "REFUSED_STREAM");
    for (const id of [1, 3]) sock.write(frame(DATA, END_STREAM, id, Buffer.from("hi")));
    await until((l) => [1, 3].every((id) => l.some((f) => f.type === DATA && f.stream === id
      && (f.flags & END_STREAM))), "answers on streams 1 and 3");
    const text = Buffer.concat(frames().filter((f) => f.type === DATA && f.stream === 1).map((f) => f.payload));
    assert.equal(text.toString(), "pong");
  } finally {
    sock.destroy();
  }
  assert.equal(mx.exitInfo, null);
}, { timeout: 30000 });

test("h2c: over the acknowledged limit, GOAWAY(PROTOCOL_ERROR); mcplex serves the next client", async () => {
  const { sock, until } = await rawH2();
  try {
    sock.write(frame(SETTINGS, 1, 0));
    await until((l) => l.some((f) => f.type === SETTINGS && (f.flags & 1) === 1), "SETTINGS ACK");
    for (const id of [1, 3, 5]) sock.write(frame(HEADERS, END_HEADERS, id, POST_SLASH));
    await until((l) => l.some((f) => f.type === GOAWAY && f.payload.readUInt32BE(4) === 1), "GOAWAY(PROTOCOL_ERROR)");
  } finally {
    sock.destroy();
  }
  assert.equal(await post(mx.port, "/other", 10, "h2c"), 200);
  assert.equal(mx.exitInfo, null);
}, { timeout: 30000 });

test("config errors: a zero or oversized body limit", async () => {
  for (const [limit, name] of [[0, "zero"], [2 * 1024 * 1024 * 1024, "huge"]]) {
    const r = await validateConfig(`limit-${name}.yaml`, bootstrap(1, limit));
    assert.notEqual(r.code, 0, `${name}: must be refused`);
    assert.match(r.stdout + r.stderr, /request_body_buffer_limit.*must be from 1 to/);
  }
}, { timeout: 30000 });

await run();
