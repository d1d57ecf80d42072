// 52-target-hang: a target that stops answering, with rich fixtures (stdio) behind mcplex and a
// 10 s per-target deadline (targets[].timeout; generous, since it also bounds the initialize
// of a node child on a loaded machine):
//   - while a_hang hangs, calls to b and new calls to a are answered at once (a hung request
//     does not poison the target's connection); the deadline error of the hung call itself is
//     pending/59-call-deadline.mjs;
//   - a fan-out (tools/list) where one target answers after 30 s: the answer comes within the
//     deadline with the other target's tools (FAIL_OPEN), not after 30 s and not an error.
import {
  assert, test, run, freePort, startMcplex, rpc, openSession, deleteSession, textOf, sleep, J,
} from "./lib/harness.mjs";
import { richConfig, richStdioTarget } from "./lib/rich.mjs";

let mx;
let session;

test("setup", async () => {
  const port = await freePort();
  const targets = [richStdioTarget("a", { timeout: "10s" }), richStdioTarget("b")];
  mx = await startMcplex(richConfig(port, targets), { port });
  ({ session } = await openSession(mx.url));
});

test("while a call hangs, b and new calls to a are answered at once", async () => {
  rpc(mx.url, session, "tools/call", { name: "a_hang", arguments: {} }, { timeout: 20000 }).catch(() => {});
  await sleep(200);
  const t0 = Date.now();
  const b = await rpc(mx.url, session, "tools/call", { name: "b_whoami", arguments: {} });
  assert.equal(JSON.parse(textOf(b.json.result)).name, "b");
  const r = await rpc(mx.url, session, "tools/call", { name: "a_whoami", arguments: {} });
  assert.equal(JSON.parse(textOf(r.json.result)).name, "a", r.text.slice(0, 300));
  assert.ok(Date.now() - t0 < 2500, `answered in ${Date.now() - t0} ms`);
}, { timeout: 30000 });

test("fan-out: a target slower than its deadline is left out of tools/list", async () => {
  const port = await freePort();
  const slow = await startMcplex(richConfig(port, [
    richStdioTarget("slow", { args: ["--list-delay", "30000", "--page-size", "0"], timeout: "10s" }),
    richStdioTarget("fast", { args: ["--page-size", "0"] }),
  ]), { port, name: "mcplex-slow" });
  const s = await openSession(slow.url);
  const who = await rpc(slow.url, s.session, "tools/call", { name: "slow_whoami", arguments: {} });
  assert.equal(JSON.parse(textOf(who.json?.result) || "{}").name, "slow",
    `slow is in the session: ${who.text.slice(0, 200)}`);
  const t0 = Date.now();
  const list = await rpc(slow.url, s.session, "tools/list", {});
  const ms = Date.now() - t0;
  assert.equal(list.status, 200);
  const names = list.json?.result?.tools?.map((t) => t.name) ?? [];
  assert.ok(names.some((n) => n.startsWith("fast_")), `fast's tools: ${J(list.json).slice(0, 200)}`);
  assert.ok(ms < 20000, `tools/list took ${ms} ms with a 10 s deadline`);
  await deleteSession(slow.url, s.session);
}, { timeout: 60000 });

test("teardown", async () => {
  await deleteSession(mx.url, session);
});

await run({ timeout: 120000 });
