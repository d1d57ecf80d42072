// 80-admin: the admin listener of issue 7 with Envoy's endpoints and output formats (/ready,
// /server_info, /stats text/json/prometheus with ?filter=, /config_dump, /clusters, /listeners,
// /logging, /healthcheck/fail|ok, /drain_listeners, /quitquitquit) and the MCP additions
// (/mcp/sessions, /mcp/targets), stats values after known traffic, `promtool check metrics` on
// the Prometheus exposition (Debian's prometheus package), and the HCM's file access logs (text
// and json_format). mcplex runs an Envoy bootstrap with two stdio targets (time, everything).
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import {
  assert, test, run, freePort, startMcplex, connectClient, stdioPeer, textOf, J, TMP, ARTIFACTS,
  waitFor, portAccepts, descendants, describeProcs, withTimeout, startEverythingHttp,
} from "./lib/harness.mjs";

const time = stdioPeer("time");
const everything = stdioPeer("everything");
const textLog = path.join(TMP, "access.log");
const jsonLog = path.join(TMP, "access.json");

const bootstrap = (port, adminPort, remoteUrl) => `
admin:
  address: {socket_address: {address: 127.0.0.1, port_value: ${adminPort}}}
node: {id: admin-test, cluster: mcplex-tests}
static_resources:
  listeners:
  - name: main
    address: {socket_address: {address: 127.0.0.1, port_value: ${port}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: ingress
          access_log:
          - name: envoy.access_loggers.file
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
              path: ${J(textLog)}
          - name: envoy.access_loggers.file
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
              path: ${J(jsonLog)}
              log_format:
                json_format:
                  start: "%START_TIME%"
                  method: "%REQ(:METHOD)%"
                  path: "%REQ(:PATH)%"
                  status: "%RESPONSE_CODE%"
                  session: "%MCP_SESSION_ID%"
                  duration: "%DURATION%"
                  bytes_sent: "%BYTES_SENT%"
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {prefix: /hello}
                direct_response: {status: 200, body: {inline_string: "hi\\n"}}
              - match: {prefix: /mcp}
                route: {cluster: tools}
              - match: {prefix: /remote}
                route: {cluster: remote}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
  clusters:
  - name: tools
    cluster_type:
      name: mcplex.clusters.mcp
      typed_config:
        "@type": type.googleapis.com/mcplex.extensions.clusters.mcp.v1.McpBackend
        targets:
        - name: time
          stdio: {cmd: ${J(time.cmd)}, args: ${J(time.args)}}
          timeout: 10s
        - name: everything
          stdio: {cmd: ${J(everything.cmd)}, args: ${J(everything.args)}}
          timeout: 10s
  - name: remote
    cluster_type:
      name: mcplex.clusters.mcp
      typed_config:
        "@type": type.googleapis.com/mcplex.extensions.clusters.mcp.v1.McpBackend
        targets:
        - name: everything
          streamable_http: {url: ${J(remoteUrl)}}
          timeout: 10s
`;

let mx;
let admin; // base URL of the admin listener
let c;

async function get(p, { method = "GET" } = {}) {
  const res = await fetch(admin + p, { method, signal: AbortSignal.timeout(10000) });
  return { status: res.status, type: res.headers.get("content-type") ?? "", text: await res.text() };
}
const post = (p) => get(p, { method: "POST" });

// "name: value" lines of /stats -> Map (histograms kept as text).
async function stats(filter) {
  const r = await get(`/stats${filter ? `?filter=${encodeURIComponent(filter)}` : ""}`);
  assert.equal(r.status, 200, r.text);
  const m = new Map();
  for (const line of r.text.split("\n")) {
    const i = line.indexOf(": ");
    if (i > 0) m.set(line.slice(0, i), /^-?\d+$/.test(line.slice(i + 2)) ? Number(line.slice(i + 2)) : line.slice(i + 2));
  }
  return m;
}

test("mcplex starts with an admin listener from the bootstrap", async () => {
  const port = await freePort();
  const adminPort = await freePort();
  admin = `http://127.0.0.1:${adminPort}`;
  const remote = await startEverythingHttp();
  mx = await startMcplex(bootstrap(port, adminPort, remote.url), { port, flag: "-c", logLevel: "info" });
  await waitFor(() => portAccepts(adminPort), { what: "admin port" });
});

test("GET / lists the admin endpoints; unknown paths are 404", async () => {
  const r = await get("/");
  assert.equal(r.status, 200);
  for (const p of ["/ready", "/server_info", "/stats", "/stats/prometheus", "/config_dump", "/clusters",
    "/listeners", "/logging", "/healthcheck/fail", "/quitquitquit", "/mcp/sessions", "/mcp/targets"]) {
    assert.ok(r.text.includes(`  ${p}`), `home page lacks ${p}:\n${r.text}`);
  }
  assert.equal((await get("/no/such/thing")).status, 404);
});

test("/ready answers 200 LIVE", async () => {
  const r = await get("/ready");
  assert.equal(r.status, 200);
  assert.equal(r.text.trim(), "LIVE");
});

test("/server_info is Envoy's ServerInfo JSON", async () => {
  const r = await get("/server_info");
  assert.equal(r.status, 200);
  assert.match(r.type, /application\/json/);
  const j = JSON.parse(r.text);
  assert.match(j.version, /^mcplex\//);
  assert.equal(j.state, "LIVE");
  assert.equal(j.command_line_options.config_path, mx.configFile);
  assert.equal(j.node.id, "admin-test");
  assert.match(j.uptime_current_epoch, /^\d+s$/);
});

test("traffic: 3 tools/call through the SDK client are counted", async () => {
  const before = await stats();
  c = await connectClient(mx.url);
  for (let i = 0; i < 3; i++) {
    const res = await c.client.callTool({ name: "everything__echo", arguments: { message: `hello ${i}` } });
    assert.equal(textOf(res), `Echo: hello ${i}`);
  }
  assert.equal((await fetch(mx.url.replace("/mcp", "/hello"))).status, 200);
  const after = await stats();
  const delta = (k) => (after.get(k) ?? 0) - (before.get(k) ?? 0);
  assert.ok(delta("downstream_rq_total") >= 5, `downstream_rq_total +${delta("downstream_rq_total")}`);
  assert.ok(delta("http.ingress.downstream_rq_total") >= 5);
  assert.ok(delta("http.ingress.downstream_rq_2xx") >= 5);
  assert.ok(after.get("downstream_cx_total") >= 1);
  assert.ok(after.get(`listener.127.0.0.1_${mx.port}.downstream_cx_total`) >= 1, J([...after.keys()]));
  assert.equal(after.get("listener_manager.lds.update_success"), 1);
  assert.equal(after.get("cluster_manager.active_clusters"), 3); // tools, remote, remote/everything
  assert.equal(after.get("server.live"), 1);
  assert.equal(after.get("mcp.sessions_active"), 1);
  assert.match(String(after.get("http.ingress.downstream_rq_time")), /^P0\(nan,[\d.]+\) P25/);
  // The MCP layer's per-method counters (mcplex_mcp_stats_request), once it reports them.
  const method = after.get("mcp.tools.method.tools/call.rq_total");
  if (method !== undefined) assert.equal(method, 3, "mcp.tools.method.tools/call.rq_total");
});

test("/stats?filter= selects by regex; format=json; a bad regex is 400", async () => {
  const only = await stats("^http\\.ingress\\.downstream_rq_[0-9]xx$");
  assert.deepEqual([...only.keys()].sort(),
    ["1xx", "2xx", "3xx", "4xx", "5xx"].map((x) => `http.ingress.downstream_rq_${x}`));
  const j = await get("/stats?format=json&filter=downstream_rq");
  const doc = JSON.parse(j.text);
  assert.ok(doc.stats.some((s) => s.name === "downstream_rq_total" && s.value >= 5), j.text.slice(0, 300));
  const hist = doc.stats.find((s) => s.histograms)?.histograms;
  assert.ok(hist?.computed_quantiles.some((q) => q.name === "http.ingress.downstream_rq_time"));
  assert.equal((await get("/stats?filter=(")).status, 400);
});

test("/stats/prometheus passes `promtool check metrics`", async () => {
  const r = await get("/stats/prometheus");
  assert.equal(r.status, 200);
  assert.match(r.type, /text\/plain; version=0\.0\.4/);
  fs.writeFileSync(path.join(ARTIFACTS, "prometheus.txt"), r.text);
  assert.match(r.text, /^envoy_http_downstream_rq_total\{envoy_http_conn_manager_prefix="ingress"\} \d+$/m);
  assert.match(r.text, /^# TYPE envoy_http_downstream_rq_time histogram$/m);
  assert.match(r.text, /^envoy_http_downstream_rq_time_bucket\{envoy_http_conn_manager_prefix="ingress",le="\+Inf"\} \d+$/m);
  const p = spawnSync("promtool", ["check", "metrics"], { input: r.text, encoding: "utf8", timeout: 20000 });
  assert.equal(p.error, undefined, `promtool: ${p.error} (install Debian's prometheus package)`);
  assert.equal(p.status, 0, `promtool check metrics failed:\n${p.stdout}${p.stderr}`);
});

test("/config_dump is a ConfigDump of the bootstrap", async () => {
  const r = await get("/config_dump");
  const j = JSON.parse(r.text);
  const types = j.configs.map((x) => x["@type"].split(".").pop());
  assert.deepEqual(types, ["BootstrapConfigDump", "ClustersConfigDump", "ListenersConfigDump", "RoutesConfigDump"]);
  assert.equal(j.configs[0].bootstrap.node.id, "admin-test");
  assert.match(j.configs[0].last_updated, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  assert.equal(j.configs[1].static_clusters[0].cluster.name, "tools");
  assert.equal(j.configs[1].static_clusters[0].cluster["@type"], "type.googleapis.com/envoy.config.cluster.v3.Cluster");
  assert.equal(j.configs[2].static_listeners[0].listener.name, "main");
  assert.equal(j.configs[3].static_route_configs[0].route_config.virtual_hosts[0].name, "all");
});

test("/clusters and /listeners (text and ?format=json)", async () => {
  const cl = await get("/clusters");
  assert.match(cl.text, /^tools::observability_name::tools$/m);
  assert.match(cl.text, /^tools::stdio:everything::health_flags::healthy$/m);
  const cj = JSON.parse((await get("/clusters?format=json")).text);
  assert.equal(cj.cluster_statuses[0].name, "tools");
  const li = await get("/listeners");
  assert.equal(li.text.trim(), `main::127.0.0.1:${mx.port}`);
  const lj = JSON.parse((await get("/listeners?format=json")).text);
  assert.equal(lj.listener_statuses[0].local_address.socket_address.port_value, mx.port);
});

test("/mcp/sessions and /mcp/targets show the live session and its targets", async () => {
  const s = JSON.parse((await get("/mcp/sessions")).text);
  assert.equal(s.count, 1, J(s));
  const sess = s.sessions[0];
  assert.equal(sess.backend, "tools");
  assert.equal(sess.client_info.name, "mcplex-test");
  assert.ok(c.sessionId.startsWith(sess.id_prefix) && sess.id_prefix.length === 8);
  assert.deepEqual(sess.targets.map((t) => [t.name, t.state]), [["time", "ready"], ["everything", "ready"]]);
  assert.ok(sess.age_seconds >= 0);
  const t = JSON.parse((await get("/mcp/targets")).text);
  const byName = Object.fromEntries(t.targets.filter((x) => x.backend === "tools").map((x) => [x.name, x]));
  const remote = t.targets.find((x) => x.backend === "remote");
  assert.equal(remote.kind, "streamable_http");
  assert.equal(remote.state, "idle"); // no session has used it yet
  assert.equal(byName.time.backend, "tools");
  assert.equal(byName.time.kind, "stdio");
  assert.equal(byName.everything.state, "ready");
  assert.equal(byName.everything.sessions, 1);
  assert.equal(byName.everything.restarts, 0);
});

test("/logging lists and changes levels (all, or one component)", async () => {
  const list = await get("/logging");
  assert.match(list.text, /^active loggers:$/m);
  assert.match(list.text, /^ {2}mcp: info$/m);
  assert.equal((await get("/logging?level=debug")).status, 405, "GET must not change levels");
  const one = await post("/logging?admin=debug");
  assert.equal(one.status, 200, one.text);
  assert.match(one.text, /^ {2}admin: debug$/m);
  assert.match(one.text, /^ {2}mcp: info$/m);
  // a debug line of the admin component now reaches the log (each admin request logs one)
  await get("/ready?probe=1");
  await waitFor(() => /\[debug\] \[admin\] GET \/ready\?probe=1/.test(fs.readFileSync(mx.logFile, "utf8")),
    { what: "an admin debug line" });
  const all = await post("/logging?level=warning");
  assert.match(all.text, /^ {2}mcp: warning$/m);
  assert.match(all.text, /^ {2}main: warning$/m);
  assert.equal((await post("/logging?level=loud")).status, 400);
  await post("/logging?level=info");
});

test("/healthcheck/fail makes /ready 503 until /healthcheck/ok", async () => {
  assert.equal((await get("/healthcheck/fail")).status, 405, "GET must not fail health checks");
  assert.equal((await post("/healthcheck/fail")).status, 200);
  const r = await get("/ready");
  assert.equal(r.status, 503);
  assert.equal(r.text.trim(), "DRAINING");
  assert.equal(JSON.parse((await get("/server_info")).text).state, "DRAINING");
  assert.equal((await post("/healthcheck/ok")).status, 200);
  assert.equal((await get("/ready")).status, 200);
});

test("the access logs got one line per HTTP request (text and json_format)", async () => {
  const text = fs.readFileSync(textLog, "utf8");
  fs.writeFileSync(path.join(ARTIFACTS, "access.log"), text);
  assert.match(text, /^\[\d{4}-\d\d-\d\dT[\d:.]+Z\] "GET \/hello HTTP\/1\.1" 200 - 0 3 \d+ /m);
  assert.ok(text.split("\n").filter((l) => l.includes('"POST /mcp HTTP/1.1" 200')).length >= 4, text);
  const lines = fs.readFileSync(jsonLog, "utf8").trim().split("\n").map((l) => JSON.parse(l));
  const calls = lines.filter((l) => l.method === "POST" && l.path === "/mcp");
  assert.ok(calls.length >= 4, J(lines));
  assert.ok(calls.some((l) => l.session === c.sessionId), "no line carries the session id");
  assert.equal(typeof calls[0].status, "number");
  assert.equal(typeof calls[0].duration, "number");
  assert.ok(lines.some((l) => l.path === "/hello" && l.status === 200 && l.bytes_sent === 3));
});

test("cluster.<name>.upstream_rq_* count the requests to a streamable-HTTP target", async () => {
  const before = await stats("^cluster\\.remote/everything\\.");
  const r = await connectClient(mx.url.replace("/mcp", "/remote"), { name: "remote-client" });
  const res = await r.client.callTool({ name: "echo", arguments: { message: "over http" } });
  assert.equal(textOf(res), "Echo: over http");
  await r.terminate();
  await r.close();
  const after = await stats("^cluster\\.remote/everything\\.");
  const d = (k) => after.get(`cluster.remote/everything.${k}`) - (before.get(`cluster.remote/everything.${k}`) ?? 0);
  assert.ok(d("upstream_rq_total") >= 3, `upstream_rq_total +${d("upstream_rq_total")}`); // init, initialized, call
  assert.ok(d("upstream_rq_2xx") >= 3, J([...after]));
  assert.match(String(after.get("cluster.remote/everything.upstream_rq_time")), /^P0\(/);
  const prom = (await get("/stats/prometheus")).text;
  assert.match(prom, /^envoy_cluster_upstream_rq_total\{envoy_cluster_name="remote\/everything"\} [1-9]\d*$/m);
  const p = spawnSync("promtool", ["check", "metrics"], { input: prom, encoding: "utf8", timeout: 20000 });
  assert.equal(p.status, 0, `promtool check metrics failed:\n${p.stdout}${p.stderr}`);
});

test("a config reload shows in lds/cds stats and in /config_dump", async () => {
  const before = await stats("^listener_manager\\.lds\\.update_success$");
  fs.writeFileSync(mx.configFile, fs.readFileSync(mx.configFile, "utf8").replace('"hi\\n"', '"hi again\\n"'));
  await waitFor(async () => (await (await fetch(mx.url.replace("/mcp", "/hello"))).text()) === "hi again\n",
    { timeout: 10000, what: "the reloaded direct response" });
  const after = await stats("^(listener_manager|cluster_manager)\\.");
  assert.equal(after.get("listener_manager.lds.update_success"),
    before.get("listener_manager.lds.update_success") + 1);
  assert.ok(after.get("cluster_manager.cds.version") >= 2);
  const dump = JSON.parse((await get("/config_dump")).text);
  const route = dump.configs[3].static_route_configs[0].route_config.virtual_hosts[0].routes[0];
  assert.equal(route.direct_response.body.inline_string, "hi again\n");
  // the session of the unchanged backend keeps running
  assert.equal(JSON.parse((await get("/mcp/sessions")).text).count, 1);
});

test("/drain_listeners closes the listener sockets; /ready says DRAINING", async () => {
  await c.close();
  assert.equal((await post("/drain_listeners")).status, 200);
  assert.equal(await portAccepts(mx.port), false, "the MCP listener still accepts");
  const r = await get("/ready");
  assert.equal(r.status, 503);
  assert.equal(r.text.trim(), "DRAINING");
});

test("/quitquitquit exits cleanly and ends every child", async () => {
  assert.equal((await post("/quitquitquit")).status, 200);
  const exit = await withTimeout(mx.exited, 10000, "mcplex exit after /quitquitquit");
  assert.deepEqual(exit, { code: 0, signal: null });
  assert.deepEqual(descendants(mx.pid), [], describeProcs(descendants(mx.pid)));
});

await run({ timeout: 120000 });
