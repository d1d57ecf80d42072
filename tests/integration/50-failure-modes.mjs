// 50-failure-modes: targets that fail to start or to initialize, next to a good one:
//   missing - stdio command that does not exist
//   crashy  - stdio command that exits at once
//   silent  - stdio server that never answers initialize (timeout 1s)
//   refused - streamable-HTTP URL on a port nobody listens on (Envoy bootstrap)
// failOpen (the default): the session works with the good target and the failures are logged;
// failClosed: initialize answers HTTP 200 with a JSON-RPC error naming the failed target.
import {
  assert, test, run, freePort, startMcplex, stdioPeer, descendants, describeProcs, waitFor,
  http, rpc, openSession, deleteSession, assertDeleted, textOf, tail, J, NODE, PROTOCOL_VERSION,
} from "./lib/harness.mjs";
import fs from "node:fs";

const tiny = stdioPeer("tiny");

const TARGETS = {
  good: `{cmd: ${J(tiny.cmd)}, args: ${J(tiny.args)}, env: {NAME: GOOD}}`,
  missing: `{cmd: /nonexistent/mcplex-test/no-such-mcp-server, args: []}`,
  crashy: `{cmd: ${J(NODE)}, args: ["-e", "process.exit(3)"]}`,
  silent: `{cmd: ${J(tiny.cmd)}, args: ${J(tiny.args)}, env: {TINY_HANG: "1"}}`,
};

// agentgateway-style file: one backend with the named targets. The broken ones get a 1 s
// timeout; the good one 10 s, since starting node on a loaded 2-core machine can take a second.
const agwConfig = (port, mode, targetNames) => `# failure mode ${mode}
binds:
- port: ${port}
  listeners:
  - routes:
    - backends:
      - mcp:
          failureMode: ${mode}
          targets:
${targetNames.map((n) => `          - name: ${n}\n            stdio: ${TARGETS[n]}\n            timeout: ${n === "good" ? "15s" : "1s"}`).join("\n")}
`;

const initBody = () => ({
  jsonrpc: "2.0", id: 1, method: "initialize",
  params: { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: "t", version: "0" } },
});

const noZombies = (pid) => !descendants(pid).some((p) => p.state === "Z");

// ---- failOpen --------------------------------------------------------------------------------

let open;
let openSess;

test("failOpen: initialize succeeds despite missing, crashy and silent targets", async () => {
  const port = await freePort();
  open = await startMcplex(agwConfig(port, "failOpen", ["good", "missing", "crashy", "silent"]),
    { port, name: "mcplex-failopen" });
  const t0 = Date.now();
  openSess = await openSession(open.url);
  const ms = Date.now() - t0;
  assert.ok(ms < 5000, `initialize took ${ms} ms with 1 s target timeouts`);
});

test("failOpen: the good target's tools are listed and callable", async () => {
  const list = await rpc(open.url, openSess.session, "tools/list", {});
  const n = (list.json?.result?.tools ?? []).map((t) => t.name);
  assert.ok(n.includes("good_whoami"), `tools: ${n}`);
  for (const t of n) assert.match(t, /^good_/, `tool of a failed target listed: ${t}`);
  const call = await rpc(open.url, openSess.session, "tools/call", { name: "good_whoami", arguments: {} });
  assert.equal(textOf(call.json?.result), "GOOD", call.text.slice(0, 300));
});

test("failOpen: a call to a failed target is a JSON-RPC error with HTTP 200", async () => {
  const r = await rpc(open.url, openSess.session, "tools/call", { name: "missing_whoami", arguments: {} });
  assert.equal(r.status, 200, r.text.slice(0, 300));
  assert.ok(r.json?.error || r.json?.result?.isError, `no error: ${r.text.slice(0, 300)}`);
});

test("failOpen: the crashed child is reaped (no zombie)", async () => {
  await waitFor(() => noZombies(open.pid), { timeout: 3000, what: "no zombie children" })
    .catch((e) => { throw new Error(`${e.message}: ${describeProcs(descendants(open.pid))}`); });
});

test("failOpen: the target that never initialized is not left running", async () => {
  await waitFor(() => !descendants(open.pid).some((p) => p.cmd.includes(tiny.args[0]) &&
    readEnviron(p.pid).includes("TINY_HANG=1")), { timeout: 5000, what: "the silent child to be stopped" });
});

test("failOpen: each failure is logged with the target's name", async () => {
  await waitFor(() => {
    const log = fs.readFileSync(open.logFile, "utf8");
    return ["missing", "crashy", "silent"].every((n) => log.includes(n));
  }, { timeout: 3000, what: "log lines naming missing, crashy and silent" })
    .catch((e) => { throw new Error(`${e.message}\n${tail(open.logFile, 20)}`); });
});

test("failOpen: DELETE stops every child", async () => {
  assertDeleted(await deleteSession(open.url, openSess.session));
  await waitFor(() => descendants(open.pid).length === 0, { timeout: 5000, what: "no children" })
    .catch((e) => { throw new Error(`${e.message}: ${describeProcs(descendants(open.pid))}`); });
});

// ---- failClosed ------------------------------------------------------------------------------

for (const bad of ["missing", "crashy", "silent"]) {
  test(`failClosed: initialize fails naming the ${bad} target (HTTP 200, JSON-RPC error)`, async () => {
    const port = await freePort();
    const mx = await startMcplex(agwConfig(port, "failClosed", ["good", bad]),
      { port, name: `mcplex-failclosed-${bad}` });
    const r = await http(mx.url, { body: initBody() });
    assert.equal(r.status, 200, `HTTP ${r.status}: ${r.text.slice(0, 300)}`);
    assert.ok(r.json?.error, `initialize did not fail: ${r.text.slice(0, 300)}`);
    assert.equal(r.json.id, 1);
    assert.match(J(r.json.error), new RegExp(`\\b${bad}\\b`), "the error must name the target");
    await waitFor(() => descendants(mx.pid).length === 0, { timeout: 5000, what: "children of the failed session to exit" })
      .catch((e) => { throw new Error(`${e.message}: ${describeProcs(descendants(mx.pid))}`); });
    // mcplex keeps serving: a retry fails the same way, without a crash.
    const again = await http(mx.url, { body: initBody() });
    assert.equal(again.status, 200);
    assert.ok(again.json?.error);
    assert.equal(mx.exitInfo, null, "mcplex exited");
  });
}

test("failClosed with only good targets works", async () => {
  const port = await freePort();
  const mx = await startMcplex(agwConfig(port, "failClosed", ["good"]), { port, name: "mcplex-failclosed-good" });
  const s = await openSession(mx.url);
  // One target, conditional prefix mode: no prefix.
  const call = await rpc(mx.url, s.session, "tools/call", { name: "whoami", arguments: {} });
  assert.equal(textOf(call.json?.result), "GOOD", call.text.slice(0, 300));
  assertDeleted(await deleteSession(mx.url, s.session));
});

// ---- an HTTP target that refuses connections (Envoy bootstrap, McpBackend) -------------------

const envoyConfig = (port, mode, refusedPort) => `# refused HTTP target, ${mode}
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
            - {name: mcp, domains: ["*"], routes: [{match: {prefix: /mcp}, route: {cluster: backend}}]}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
  clusters:
  - name: backend
    lb_policy: CLUSTER_PROVIDED
    cluster_type:
      name: mcplex.clusters.mcp
      typed_config:
        "@type": type.googleapis.com/mcplex.extensions.clusters.mcp.v1.McpBackend
        failure_mode: ${mode}
        targets:
        - name: good
          stdio: ${TARGETS.good}
          timeout: 15s
        - name: refused
          streamable_http: {url: "http://127.0.0.1:${refusedPort}/mcp"}
          timeout: 2s
`;

test("FAIL_OPEN: a refused HTTP target is skipped", async () => {
  const port = await freePort();
  const mx = await startMcplex(envoyConfig(port, "FAIL_OPEN", await freePort()),
    { port, flag: "-c", name: "mcplex-refused-open" });
  const s = await openSession(mx.url);
  const call = await rpc(mx.url, s.session, "tools/call", { name: "good__whoami", arguments: {} });
  assert.equal(textOf(call.json?.result), "GOOD", call.text.slice(0, 300));
  assertDeleted(await deleteSession(mx.url, s.session));
});

test("FAIL_CLOSED: a refused HTTP target fails initialize, naming it", async () => {
  const port = await freePort();
  const mx = await startMcplex(envoyConfig(port, "FAIL_CLOSED", await freePort()),
    { port, flag: "-c", name: "mcplex-refused-closed" });
  const r = await http(mx.url, { body: initBody() });
  assert.equal(r.status, 200, `HTTP ${r.status}: ${r.text.slice(0, 300)}`);
  assert.ok(r.json?.error, `initialize did not fail: ${r.text.slice(0, 300)}`);
  assert.match(J(r.json.error), /\brefused\b/);
});

// /proc/<pid>/environ of a process, or "" (the silent target is told apart by TINY_HANG=1).
function readEnviron(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").join("\n");
  } catch {
    return "";
  }
}

await run({ timeout: 120000 });
