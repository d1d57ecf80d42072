// 60-malformed: bad input never crashes mcplex and always gets the right error.
//   part 1, requests (raw HTTP/1.1 against a two-target backend): bad JSON, missing and unknown
//     sessions, Accept/Content-Type negotiation, unknown tools and methods, notifications and
//     responses, protocol versions, request ids, pipelining, garbage bytes; then a normal
//     session still works;
//   part 2, config files: `mcplex --validate` reports every error as `path.to.field: message`
//     and exits 1 (0 for good files); `mcplex -f bad.yaml` never starts listening.
import {
  assert, test, run, freePort, portAccepts, startMcplex, stdioPeer, http, rpc, request,
  notification, openSession, deleteSession, assertDeleted, connectClient, textOf, names,
  validateConfig, errorLines, runMcplex, writeConfig, J, PROTOCOL_VERSION, sleep,
} from "./lib/harness.mjs";
import net from "node:net";

const tiny = stdioPeer("tiny");
const SUPPORTED = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

const agwGood = (port) => `# two tiny targets: a_* and b_*
binds:
- port: ${port}
  listeners:
  - routes:
    - matches:
      - path: {exact: /mcp}
      backends:
      - mcp:
          targets:
          - name: a
            stdio: {cmd: ${J(tiny.cmd)}, args: ${J(tiny.args)}, env: {NAME: A}}
            timeout: 5s
          - name: b
            stdio: {cmd: ${J(tiny.cmd)}, args: ${J(tiny.args)}, env: {NAME: B}}
            timeout: 5s
`;

let mx;
let s; // a raw session {session, result}
let url;

test("mcplex starts", async () => {
  const port = await freePort();
  mx = await startMcplex(agwGood(port), { port });
  url = mx.url;
});

// ---- sessions --------------------------------------------------------------------------------

test("initialize returns a visible-ASCII Mcp-Session-Id", async () => {
  s = await openSession(url);
  assert.match(s.session, /^[\x21-\x7e]+$/);
});

test("bad JSON -> HTTP 400 with JSON-RPC -32700", async () => {
  for (const body of ['{"jsonrpc":"2.0","id":1,"method":', "not json at all", "{\"a\":}"]) {
    const r = await http(url, { body, session: s.session, protocolVersion: PROTOCOL_VERSION });
    assert.equal(r.status, 400, `${J(body)}: HTTP ${r.status}`);
    assert.equal(r.json?.error?.code, -32700, `${J(body)}: ${r.text.slice(0, 200)}`);
    assert.equal(r.json?.id ?? null, null);
  }
  const noSession = await http(url, { body: "{oops" });
  assert.equal(noSession.status, 400);
  assert.equal(noSession.json?.error?.code, -32700, noSession.text.slice(0, 200));
});

test("JSON that is not a JSON-RPC message -> HTTP 4xx", async () => {
  for (const body of ["42", '"str"', "null", '{"foo":1}', '{"jsonrpc":"2.0","id":1}']) {
    const r = await http(url, { body, session: s.session, protocolVersion: PROTOCOL_VERSION });
    assert.ok(r.status >= 400 && r.status < 500, `${body}: HTTP ${r.status} ${r.text.slice(0, 200)}`);
  }
});

test("a request without Mcp-Session-Id -> 400", async () => {
  const r = await http(url, { body: request("tools/list", {}), protocolVersion: PROTOCOL_VERSION });
  assert.equal(r.status, 400, r.text.slice(0, 200));
});

test("an unknown Mcp-Session-Id -> 404", async () => {
  const r = await rpc(url, "no-such-session-0123456789", "tools/list", {});
  assert.equal(r.status, 404, r.text.slice(0, 200));
  const d = await http(url, { method: "DELETE", session: "no-such-session-0123456789" });
  assert.equal(d.status, 404, "DELETE of an unknown session");
});

test("an invalid MCP-Protocol-Version header -> 400", async () => {
  const r = await http(url, { body: request("ping"), session: s.session, protocolVersion: "1999-01-01" });
  assert.equal(r.status, 400, r.text.slice(0, 200));
});

test("initialize negotiates the protocol version", async () => {
  for (const v of SUPPORTED) {
    const r = await http(url, { body: request("initialize", {
      protocolVersion: v, capabilities: {}, clientInfo: { name: "v", version: "0" } }) });
    assert.equal(r.status, 200);
    assert.equal(r.json?.result?.protocolVersion, v, `asked ${v}`);
    if (r.session) await deleteSession(url, r.session);
  }
  const future = await http(url, { body: request("initialize", {
    protocolVersion: "2099-01-01", capabilities: {}, clientInfo: { name: "v", version: "0" } }) });
  assert.equal(future.status, 200);
  assert.ok(SUPPORTED.includes(future.json?.result?.protocolVersion),
    `answered ${future.json?.result?.protocolVersion} to 2099-01-01`);
  if (future.session) await deleteSession(url, future.session);
});

// ---- Accept and Content-Type -----------------------------------------------------------------

test("Accept negotiation: JSON, SSE or both; 406 for neither", async () => {
  const ping = () => request("ping");
  const both = await http(url, { body: ping(), session: s.session, protocolVersion: PROTOCOL_VERSION });
  assert.equal(both.status, 200);
  assert.match(both.contentType, /^(application\/json|text\/event-stream)/);
  const json = await http(url, { body: ping(), session: s.session, protocolVersion: PROTOCOL_VERSION,
    accept: "application/json" });
  assert.equal(json.status, 200, `Accept: application/json -> ${json.status}`);
  assert.match(json.contentType, /^application\/json/);
  const sse = await http(url, { body: ping(), session: s.session, protocolVersion: PROTOCOL_VERSION,
    accept: "text/event-stream" });
  assert.equal(sse.status, 200, `Accept: text/event-stream -> ${sse.status}`);
  assert.match(sse.contentType, /^text\/event-stream/);
  assert.deepEqual(sse.json?.result, {});
  const neither = await http(url, { body: ping(), session: s.session, protocolVersion: PROTOCOL_VERSION,
    accept: "text/html" });
  assert.equal(neither.status, 406);
});

test("a body that is not application/json -> 415", async () => {
  const r = await http(url, { body: J(request("ping")), session: s.session,
    protocolVersion: PROTOCOL_VERSION, contentType: "text/plain" });
  assert.equal(r.status, 415);
});

test("GET without Accept: text/event-stream -> 4xx; GET with it -> SSE stream or 405", async () => {
  const bad = await fetch(url, { headers: { accept: "application/json", "mcp-session-id": s.session },
    signal: AbortSignal.timeout(5000) });
  assert.ok([400, 405, 406].includes(bad.status), `GET Accept json: HTTP ${bad.status}`);
  await bad.body?.cancel();
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), 5000);
  const ok = await fetch(url, { headers: { accept: "text/event-stream", "mcp-session-id": s.session,
    "mcp-protocol-version": PROTOCOL_VERSION }, signal: ctl.signal });
  clearTimeout(timer);
  assert.ok(ok.status === 405 || (ok.status === 200 &&
    (ok.headers.get("content-type") ?? "").startsWith("text/event-stream")), `GET SSE: HTTP ${ok.status}`);
  ctl.abort();
});

// ---- JSON-RPC semantics ----------------------------------------------------------------------

test("ping is answered locally with {} and the same id", async () => {
  const r = await rpc(url, s.session, "ping", undefined);
  assert.equal(r.status, 200);
  assert.deepEqual(r.json?.result, {});
});

test("an unknown tool -> JSON-RPC -32602 with HTTP 200", async () => {
  for (const name of ["zzz_whoami", "whoami", "", "a_"]) {
    const r = await rpc(url, s.session, "tools/call", { name, arguments: {} });
    assert.equal(r.status, 200, `${J(name)}: HTTP ${r.status}`);
    const code = r.json?.error?.code;
    // A known prefix with an unknown tool reaches the target, which may answer isError instead.
    if (name === "a_") assert.ok(code === -32602 || r.json?.result?.isError, r.text.slice(0, 200));
    else assert.equal(code, -32602, `${J(name)}: ${r.text.slice(0, 200)}`);
  }
});

test("tools/call without params -> -32602, HTTP 200", async () => {
  const r = await rpc(url, s.session, "tools/call", undefined);
  assert.equal(r.status, 200);
  assert.equal(r.json?.error?.code, -32602, r.text.slice(0, 200));
});

test("an unknown method -> JSON-RPC -32601 with HTTP 200", async () => {
  const r = await rpc(url, s.session, "no/such/method", {});
  assert.equal(r.status, 200, r.text.slice(0, 200));
  assert.equal(r.json?.error?.code, -32601, r.text.slice(0, 200));
});

test("notifications and responses -> 202 with no body", async () => {
  for (const body of [
    notification("notifications/cancelled", { requestId: 999, reason: "test" }),
    notification("notifications/roots/list_changed"),
    { jsonrpc: "2.0", id: "srv-1", result: {} },
    { jsonrpc: "2.0", id: 77, error: { code: -32601, message: "no" } },
  ]) {
    const r = await http(url, { body, session: s.session, protocolVersion: PROTOCOL_VERSION });
    assert.equal(r.status, 202, `${J(body)}: HTTP ${r.status}`);
    assert.equal(r.text, "");
  }
});

test("request ids come back exactly: strings, negatives, big integers", async () => {
  for (const [raw, want] of [['"abc-1"', '"abc-1"'], ["-7", "-7"], ["0", "0"],
    ["12345678901234567890", "12345678901234567890"], ['"9007199254740993"', '"9007199254740993"']]) {
    const body = `{"jsonrpc":"2.0","id":${raw},"method":"tools/call","params":{"name":"b_whoami","arguments":{}}}`;
    const r = await http(url, { body, session: s.session, protocolVersion: PROTOCOL_VERSION });
    assert.equal(r.status, 200);
    const msg = r.raws.find((x) => x.includes('"result"') || x.includes('"error"')) ?? "";
    assert.match(msg.replace(/\s/g, ""), new RegExp(`"id":${want.replace(/[-"]/g, "\\$&")}[,}]`),
      `id ${raw} came back as: ${msg.slice(0, 200)}`);
    assert.equal(textOf(JSON.parse(msg).result), "B");
  }
});

// ---- the HTTP/1.1 connection -----------------------------------------------------------------

// Sends |data| on one TCP connection; resolves what came back within |ms| (or at close).
function rawExchange(port, data, { ms = 3000, until } = {}) {
  return new Promise((resolve) => {
    let got = "";
    const sock = net.connect({ host: "127.0.0.1", port });
    const finish = () => {
      sock.destroy();
      resolve(got);
    };
    const timer = setTimeout(finish, ms);
    sock.on("connect", () => sock.write(data));
    sock.on("data", (d) => {
      got += d.toString("latin1");
      if (until && until(got)) {
        clearTimeout(timer);
        finish();
      }
    });
    sock.on("error", () => {});
    sock.on("close", () => {
      clearTimeout(timer);
      resolve(got);
    });
  });
}

const post = (id) => {
  const body = J({ jsonrpc: "2.0", id, method: "ping" });
  return `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
    `Accept: application/json\r\nMcp-Session-Id: ${s.session}\r\nMCP-Protocol-Version: ${PROTOCOL_VERSION}\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
};

test("pipelined requests on one connection are answered in order", async () => {
  const got = await rawExchange(mx.port, post(101) + post(102) + post(103), {
    until: (t) => /"id":\s*103/.test(t),
  });
  // Bodies carry no trailing newline, so a status line may follow a body directly.
  const statuses = got.match(/HTTP\/1\.1 \d+/g) ?? [];
  assert.deepEqual(statuses, ["HTTP/1.1 200", "HTTP/1.1 200", "HTTP/1.1 200"], got.slice(0, 600));
  const order = [...got.matchAll(/"id":\s*(\d+)/g)].map((m) => Number(m[1]));
  assert.deepEqual(order, [101, 102, 103]);
});

test("garbage bytes get 400 or a closed connection, and nothing else breaks", async () => {
  const got = await rawExchange(mx.port, "\x00\x01\x02 NOT HTTP AT ALL\r\n\r\n", { ms: 3000 });
  assert.ok(got === "" || /^HTTP\/1\.1 4\d\d/.test(got), got.slice(0, 200));
  const half = await rawExchange(mx.port, "POST /mcp HTTP/1.1\r\nContent-Length: 10\r\n\r\n{", { ms: 500 });
  assert.ok(!/^HTTP\/1\.1 [25]/.test(half), `half a request got ${half.slice(0, 100)}`);
  const huge = await rawExchange(mx.port, `GET /mcp HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(200000)}\r\n\r\n`,
    { ms: 3000 });
  assert.ok(huge === "" || /^HTTP\/1\.1 4\d\d/.test(huge), huge.slice(0, 100));
});

test("after all that: the session still works and a new SDK session too", async () => {
  const r = await rpc(url, s.session, "tools/call", { name: "a_whoami", arguments: {} });
  assert.equal(textOf(r.json?.result), "A", r.text.slice(0, 200));
  assertDeleted(await deleteSession(url, s.session));
  const c = await connectClient(url);
  const n = names((await c.client.listTools()).tools);
  assert.ok(n.includes("a_whoami") && n.includes("b_whoami"), `tools: ${n}`);
  assert.equal(textOf(await c.client.callTool({ name: "b_whoami", arguments: {} })), "B");
  await c.terminate();
  await c.close();
  assert.equal(mx.exitInfo, null, "mcplex exited");
});

// ---- part 2: config files ---------------------------------------------------------------------

const envoyGood = `# minimal valid bootstrap: weighted clusters over two McpBackend clusters
static_resources:
  listeners:
  - name: mcp
    address: {socket_address: {address: 127.0.0.1, port_value: 39999}}
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
                route:
                  weighted_clusters:
                    clusters: [{name: a, weight: 1}, {name: b, weight: 1}]
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
  clusters:
  - name: a
    connect_timeout: 1s
    lb_policy: CLUSTER_PROVIDED
    cluster_type:
      name: mcplex.clusters.mcp
      typed_config:
        "@type": type.googleapis.com/mcplex.extensions.clusters.mcp.v1.McpBackend
        targets:
        - {name: one, stdio: {cmd: node, args: [x.js]}, timeout: 2s}
  - name: b
    connect_timeout: 1s
    lb_policy: CLUSTER_PROVIDED
    cluster_type:
      name: mcplex.clusters.mcp
      typed_config:
        "@type": type.googleapis.com/mcplex.extensions.clusters.mcp.v1.McpBackend
        targets:
        - {name: two, streamable_http: {url: "http://127.0.0.1:39998/mcp"}}
`;

const agwValid = agwGood(39997);

// Replaces |from| (which must occur) in |text|.
function edit(text, from, to) {
  assert.ok(text.includes(from), `fixture edit: ${J(from)} not found`);
  return text.replace(from, to);
}

// Validates |text|; expects exit 1 and an error line whose text matches every regexp in |want|.
async function expectInvalid(name, text, want, { flag = "-c", minLines = 1 } = {}) {
  const r = await validateConfig(name, text, { flag });
  assert.equal(r.signal, null, `${name}: mcplex crashed (${r.signal})\n${r.stderr}`);
  assert.equal(r.code, 1, `${name}: exit ${r.code}, want 1\n${r.stderr}`);
  const lines = errorLines(r.stderr);
  assert.ok(lines.length >= minLines, `${name}: want >= ${minLines} 'path: message' lines:\n${r.stderr}`);
  for (const re of want) {
    assert.ok(lines.some((l) => re.test(l)), `${name}: no error line matches ${re}:\n${r.stderr}`);
  }
  return lines;
}

async function expectValid(name, text, { flag = "-c" } = {}) {
  const r = await validateConfig(name, text, { flag });
  assert.equal(r.code, 0, `${name}: exit ${r.code}, want 0\n${r.stderr}`);
}

test("valid files validate (Envoy YAML, agentgateway-style, either flag)", async () => {
  await expectValid("good-envoy.yaml", envoyGood);
  await expectValid("good-envoy-f.yaml", envoyGood, { flag: "-f" });
  await expectValid("good-agw.yaml", agwValid);
  await expectValid("good-agw-f.yaml", agwValid, { flag: "-f" });
});

test("an unknown field (Envoy bootstrap) names the field", async () => {
  await expectInvalid("unknown-field.yaml",
    edit(envoyGood, "          stat_prefix: mcp\n", "          stat_prefix: mcp\n          bogus_field: 1\n"),
    [/bogus_field/]);
});

test("an unknown field (agentgateway-style) names the field", async () => {
  await expectInvalid("unknown-field-agw.yaml",
    edit(agwValid, "            timeout: 5s\n", "            timeout: 5s\n            bogusKey: true\n"),
    [/bogusKey/]);
});

test("a bad duration names the field", async () => {
  await expectInvalid("bad-duration.yaml", edit(envoyGood, "connect_timeout: 1s", "connect_timeout: soon"),
    [/connect_timeout|connectTimeout/]);
  await expectInvalid("bad-duration-agw.yaml", edit(agwValid, "timeout: 5s", "timeout: 5 parsecs"),
    [/timeout/]);
});

test("a target name with '_' or '+' (agentgateway-style) is rejected", async () => {
  await expectInvalid("underscore-target.yaml", edit(agwValid, "- name: a\n", "- name: my_a\n"),
    [/name/]);
  await expectInvalid("plus-target.yaml", edit(agwValid, "- name: a\n", "- name: a+b\n"), [/name/]);
});

test("a target name with '__' (Envoy McpBackend) is rejected", async () => {
  await expectInvalid("dunder-target.yaml", edit(envoyGood, "name: one,", "name: o__ne,"), [/name/]);
});

test("a weighted cluster naming a missing cluster is rejected", async () => {
  await expectInvalid("missing-cluster.yaml", edit(envoyGood, "{name: b, weight: 1}", "{name: nosuchcluster, weight: 1}"),
    [/weighted_clusters|weightedClusters/, /nosuchcluster|name/]);
});

test("a route to a missing cluster is rejected", async () => {
  await expectInvalid("missing-route-cluster.yaml",
    edit(envoyGood, "weighted_clusters:\n                    clusters: [{name: a, weight: 1}, {name: b, weight: 1}]",
      "cluster: ghost"), [/ghost|cluster/]);
});

test("YAML syntax errors are reported, not crashed on", async () => {
  for (const [name, text] of [
    ["syntax-1.yaml", "static_resources:\n  listeners: [\n"],
    ["syntax-2.yaml", "binds:\n- port: 3000\n   listeners: x\n"],
    ["syntax-3.yaml", "a: b: c\n"],
    ["syntax-4.json", '{"static_resources": {"listeners": [}'],
  ]) {
    const r = await validateConfig(name, text);
    assert.equal(r.signal, null, `${name}: crashed`);
    assert.equal(r.code, 1, `${name}: exit ${r.code}\n${r.stderr}`);
    assert.ok(r.stderr.trim().length > 0, `${name}: no message`);
  }
});

test("every error is reported, not just the first", async () => {
  let text = edit(envoyGood, "connect_timeout: 1s", "connect_timeout: soon");
  text = edit(text, "{name: b, weight: 1}", "{name: nosuchcluster, weight: 1}");
  text = edit(text, "port_value: 39999", "port_value: 70000");
  await expectInvalid("three-errors.yaml", text, [/connect_timeout|connectTimeout/, /nosuchcluster|weighted/, /port_value|portValue/],
    { minLines: 3 });
});

test("unknown HTTP filters: rejected, unless is_optional", async () => {
  const unknown = edit(envoyGood, "          http_filters:\n",
    "          http_filters:\n          - name: acme.filters.http.magic\n" +
    "            typed_config: {\"@type\": type.googleapis.com/acme.Magic, x: 1}\n");
  await expectInvalid("unknown-filter.yaml", unknown, [/acme|http_filters|httpFilters/]);
  const optional = edit(unknown, "          - name: acme.filters.http.magic\n",
    "          - name: acme.filters.http.magic\n            is_optional: true\n");
  await expectValid("optional-filter.yaml", optional);
});

test("an unknown cluster type is rejected", async () => {
  await expectInvalid("unknown-cluster-type.yaml",
    edit(envoyGood, "name: mcplex.clusters.mcp\n      typed_config:\n        \"@type\": type.googleapis.com/mcplex.extensions.clusters.mcp.v1.McpBackend\n        targets:\n        - {name: two",
      "name: acme.clusters.x\n      typed_config:\n        \"@type\": type.googleapis.com/acme.Cluster\n        targets:\n        - {name: two"),
    [/acme|cluster_type|clusterType/]);
});

test("a target without a transport, and an mcp_router server with a missing cluster", async () => {
  await expectInvalid("no-transport.yaml", edit(agwValid,
    `            stdio: {cmd: ${J(tiny.cmd)}, args: ${J(tiny.args)}, env: {NAME: B}}\n`, ""), [/targets/]);
  const router = edit(envoyGood, "          - name: envoy.filters.http.router\n            typed_config: {\"@type\": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}\n",
    "          - name: envoy.filters.http.mcp_router\n            typed_config:\n" +
    "              \"@type\": type.googleapis.com/envoy.extensions.filters.http.mcp_router.v3.McpRouter\n" +
    "              servers: [{name: s1, mcp_cluster: {cluster: nowhere, path: /mcp}}]\n");
  await expectInvalid("router-missing-cluster.yaml", router, [/nowhere|mcp_cluster|mcpCluster|servers/]);
});

test("empty and missing files: no crash; a missing file fails", async () => {
  // An empty file is an empty bootstrap (Envoy accepts one); it must just not crash.
  const empty = await validateConfig("empty.yaml", "");
  assert.equal(empty.signal, null, "crashed on an empty file");
  assert.ok(empty.code === 0 || empty.code === 1, `empty file: exit ${empty.code}`);
  const missing = await runMcplex(["--validate", "-c", "/nonexistent/mcplex/config.yaml"]);
  assert.notEqual(missing.code, 0, "a missing file must fail");
  assert.equal(missing.signal, null);
});

test("mcplex -f with a bad file exits non-zero and never listens", async () => {
  const port = await freePort();
  const bad = edit(agwGood(port), "- name: a\n", "- name: my_a\n");
  const file = writeConfig("bad-serve.yaml", bad);
  let accepted = false;
  const probe = (async () => {
    const end = Date.now() + 3000;
    while (Date.now() < end && !accepted) {
      if (await portAccepts(port)) accepted = true;
      await sleep(20);
    }
  })();
  const r = await runMcplex(["-f", file], { timeout: 10000 });
  await probe;
  assert.notEqual(r.code, 0, `exit ${r.code}`);
  assert.equal(r.signal, null, `killed by ${r.signal} (did it start serving?)\n${r.stderr}`);
  assert.ok(!accepted, "mcplex accepted connections with a bad config");
  assert.ok(errorLines(r.stderr).some((l) => /name/.test(l)), r.stderr);
});

await run({ timeout: 150000 });
