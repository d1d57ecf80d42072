// 40-weighted: weighted load balancing in the agentgateway-style file: one route with two
// backends, weight 80 and 20, each a single stdio target (tests/fixtures/tiny-server.mjs, with
// NAME=A or B) with prefixMode always, so tools are a_* or b_*. 200 sessions over raw HTTP
// must split within 7 points of 80/20, and every later request of a session must stay on the
// backend picked at initialize. All children must be gone at the end.
import {
  assert, test, run, freePort, startMcplex, stdioPeer, descendants, describeProcs, waitFor, log, J,
} from "./lib/harness.mjs";
import { spreadSessions, assertShare } from "./lib/weighted.mjs";

const tiny = stdioPeer("tiny");
const SESSIONS = 200;

const config = (port) => `# two weighted backends, one tiny stdio target each
binds:
- port: ${port}
  listeners:
  - routes:
    - matches:
      - path: {pathPrefix: /mcp}
      backends:
      - weight: 80
        mcp:
          prefixMode: always
          targets:
          - name: a
            stdio: {cmd: ${J(tiny.cmd)}, args: ${J(tiny.args)}, env: {NAME: A}}
            timeout: 30s
      - weight: 20
        mcp:
          prefixMode: always
          targets:
          - name: b
            stdio: {cmd: ${J(tiny.cmd)}, args: ${J(tiny.args)}, env: {NAME: B}}
            timeout: 30s
`;

let mx;

test("mcplex starts with two weighted backends", async () => {
  const port = await freePort();
  mx = await startMcplex(config(port), { port, flag: "-f", logLevel: "info" });
});

test(`${SESSIONS} sessions split 80/20 (+-7 points), each sticky to its backend`, async () => {
  const { counts, ms } = await spreadSessions(mx.url, {
    total: SESSIONS, concurrency: 4, backends: { a_: "A", b_: "B" },
  });
  log(`counts ${J(counts)} in ${(ms / 1000).toFixed(1)} s`);
  assert.equal(counts.a_ + counts.b_, SESSIONS);
  assertShare(counts.a_, SESSIONS, 80);
  assertShare(counts.b_, SESSIONS, 20);
}, { timeout: 240000 });

test("no children left after all sessions were deleted", async () => {
  await waitFor(() => descendants(mx.pid).length === 0, { timeout: 5000, what: "no children" })
    .catch((e) => { throw new Error(`${e.message}: ${describeProcs(descendants(mx.pid))}`); });
});

test("a path outside the route's pathPrefix is not served as MCP", async () => {
  const r = await fetch(mx.url.replace(/\/mcp$/, "/elsewhere"), {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
    body: J({ jsonrpc: "2.0", id: 1, method: "ping" }),
    signal: AbortSignal.timeout(5000),
  });
  assert.equal(r.status, 404);
});

await run({ timeout: 280000 });
