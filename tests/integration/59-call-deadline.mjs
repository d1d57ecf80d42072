// 59-call-deadline: a routed call to a target that never answers gets a JSON-RPC error with HTTP
// 200 soon after the target's deadline (targets[].timeout: 6 s), while the other target answers
// at once, with two rich fixtures (stdio) behind mcplex.
import {
  assert, test, run, freePort, startMcplex, rpc, openSession, deleteSession, textOf,
} from "./lib/harness.mjs";
import { richConfig, richStdioTarget } from "./lib/rich.mjs";

let mx;
let session;

test("setup", async () => {
  const port = await freePort();
  const targets = [richStdioTarget("a", { timeout: "6s" }), richStdioTarget("b")];
  mx = await startMcplex(richConfig(port, targets), { port });
  ({ session } = await openSession(mx.url));
});

test("a hanging call gets a deadline error (HTTP 200); the other target is unaffected", async () => {
  const t0 = Date.now();
  const hung = rpc(mx.url, session, "tools/call", { name: "a_hang", arguments: {} }, { timeout: 20000 })
    .then((r) => ({ r, ms: Date.now() - t0 }));
  const b0 = Date.now();
  const b = await rpc(mx.url, session, "tools/call", { name: "b_whoami", arguments: {} });
  assert.ok(Date.now() - b0 < 1500, `b answered in ${Date.now() - b0} ms during a's hang`);
  assert.equal(JSON.parse(textOf(b.json.result)).name, "b");
  const { r, ms } = await hung;
  assert.equal(r.status, 200, `HTTP ${r.status}`);
  assert.ok(r.json?.error, `JSON-RPC error: ${r.text.slice(0, 300)}`);
  assert.ok(ms >= 5800 && ms < 12000, `the error came after ${ms} ms (deadline 6 s)`);
}, { timeout: 30000 });

test("the target that hung still answers new calls", async () => {
  const r = await rpc(mx.url, session, "tools/call", { name: "a_whoami", arguments: {} });
  assert.equal(JSON.parse(textOf(r.json.result)).name, "a", r.text.slice(0, 300));
}, { timeout: 30000 });

test("teardown", async () => {
  await deleteSession(mx.url, session);
});

await run({ timeout: 60000 });
