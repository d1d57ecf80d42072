// 53-target-garbage: targets that write what is not JSON-RPC on stdout, with rich fixtures
// behind mcplex:
//   - a target that answers everything with garbage (--garbage) next to a good one: the session
//     starts (failOpen) with the good target's tools; a call to the garbage target is a JSON-RPC
//     error with HTTP 200; mcplex stays up;
//   - a good target that writes garbage lines mid-session (emit_garbage): the lines are skipped
//     (logged), the call is answered, and the child is the same process afterwards.
import {
  assert, test, run, freePort, startMcplex, rpc, openSession, deleteSession, textOf, J,
} from "./lib/harness.mjs";
import { richConfig, richStdioTarget } from "./lib/rich.mjs";

let mx;
let session;

test("setup: a garbage target next to a good one", async () => {
  const port = await freePort();
  mx = await startMcplex(richConfig(port, [
    richStdioTarget("junk", { args: ["--garbage"], timeout: "3s" }),
    richStdioTarget("good"),
  ]), { port });
  ({ session } = await openSession(mx.url));
}, { timeout: 30000 });

test("the good target's tools are listed; none of the garbage target's", async () => {
  const r = await rpc(mx.url, session, "tools/list", {});
  const names = r.json?.result?.tools?.map((t) => t.name) ?? [];
  assert.ok(names.some((n) => n.startsWith("good_")), r.text.slice(0, 300));
  assert.ok(!names.some((n) => n.startsWith("junk_")), J(names));
});

test("a call to the garbage target: JSON-RPC error, HTTP 200", async () => {
  const r = await rpc(mx.url, session, "tools/call", { name: "junk_whoami", arguments: {} },
    { timeout: 15000 });
  assert.equal(r.status, 200);
  assert.ok(r.json?.error || r.json?.result?.isError, r.text.slice(0, 300));
}, { timeout: 30000 });

test("garbage lines mid-session are skipped; the call is answered by the same child", async () => {
  const who = async () => {
    const r = await rpc(mx.url, session, "tools/call", { name: "good_whoami", arguments: {} });
    return JSON.parse(textOf(r.json.result));
  };
  const before = await who();
  const r = await rpc(mx.url, session, "tools/call", { name: "good_emit_garbage", arguments: { lines: 5 } });
  assert.equal(r.status, 200);
  assert.equal(textOf(r.json?.result), "garbage sent", r.text.slice(0, 300));
  assert.equal((await who()).pid, before.pid, "the child was not restarted over garbage lines");
}, { timeout: 30000 });

test("mcplex is still up: a new session works", async () => {
  assert.equal(mx.exitInfo, null, "mcplex did not exit");
  const s = await openSession(mx.url);
  const r = await rpc(mx.url, s.session, "ping", {});
  assert.deepEqual(r.json?.result, {});
  await deleteSession(mx.url, s.session);
  await deleteSession(mx.url, session);
}, { timeout: 30000 });

await run({ timeout: 120000 });
