// 41-envoy-weighted: weighted load balancing in an Envoy bootstrap: route.weighted_clusters
// over two clusters of mcplex's MCP cluster type (McpBackend, prefix_mode ALWAYS, one tiny
// stdio target each: a__whoami answers A, b__whoami answers B). 200 sessions must split within
// 7 points of 80/20 and stay on their backend; a weight-0 cluster gets no sessions.
import {
  assert, test, run, freePort, startMcplex, stdioPeer, descendants, describeProcs, waitFor, log, J,
} from "./lib/harness.mjs";
import { spreadSessions, assertShare } from "./lib/weighted.mjs";

const tiny = stdioPeer("tiny");
const SESSIONS = 200;

const backend = (name, NAME) => `
  - name: ${name}
    connect_timeout: 1s
    lb_policy: CLUSTER_PROVIDED
    cluster_type:
      name: mcplex.clusters.mcp
      typed_config:
        "@type": type.googleapis.com/mcplex.extensions.clusters.mcp.v1.McpBackend
        prefix_mode: ALWAYS
        targets:
        - name: ${name}
          stdio: {cmd: ${J(tiny.cmd)}, args: ${J(tiny.args)}, env: {NAME: ${NAME}}}
          timeout: 30s`;

const config = (port, wa, wb) => `# weighted_clusters over two McpBackend clusters
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
              - match: {path: /mcp}
                route:
                  timeout: 0s
                  weighted_clusters:
                    clusters:
                    - {name: a, weight: ${wa}}
                    - {name: b, weight: ${wb}}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}
  clusters:${backend("a", "A")}${backend("b", "B")}
`;

let mx;

test("mcplex starts with weighted_clusters 80/20", async () => {
  const port = await freePort();
  mx = await startMcplex(config(port, 80, 20), { port, flag: "-c", logLevel: "info" });
});

test(`${SESSIONS} sessions split 80/20 (+-7 points), each sticky to its cluster`, async () => {
  const { counts, ms } = await spreadSessions(mx.url, {
    total: SESSIONS, concurrency: 4, backends: { a__: "A", b__: "B" },
  });
  log(`counts ${J(counts)} in ${(ms / 1000).toFixed(1)} s`);
  assertShare(counts.a__, SESSIONS, 80);
  assertShare(counts.b__, SESSIONS, 20);
}, { timeout: 240000 });

test("no children left after all sessions were deleted", async () => {
  await waitFor(() => descendants(mx.pid).length === 0, { timeout: 5000, what: "no children" })
    .catch((e) => { throw new Error(`${e.message}: ${describeProcs(descendants(mx.pid))}`); });
});

test("a cluster with weight 0 gets no sessions", async () => {
  const port = await freePort();
  const zero = await startMcplex(config(port, 0, 1), { port, flag: "-c", name: "mcplex-zero", logLevel: "info" });
  const { counts } = await spreadSessions(zero.url, {
    total: 10, concurrency: 2, backends: { a__: "A", b__: "B" },
  });
  assert.deepEqual(counts, { a__: 0, b__: 10 });
});

await run({ timeout: 280000 });
