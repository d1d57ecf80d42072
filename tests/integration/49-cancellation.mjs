// 49-cancellation: notifications/cancelled from the client reaches only the target that owns the
// request, under the id mcplex gave it upstream, with two rich fixtures (stdio) behind mcplex:
// the SDK client aborts a_sleep while b_sleep runs; a's handler is aborted (its stats list the
// cancelled tool), b's call completes and b saw no cancellation; a cancellation for an id that
// is not in flight is ignored (202) and breaks nothing.
import {
  assert, test, run, freePort, startMcplex, textOf, http, notification, sleep, waitFor, J, PROTOCOL_VERSION,
} from "./lib/harness.mjs";
import { richConfig, richStdioTarget, connectRich } from "./lib/rich.mjs";

let mx;

test("setup", async () => {
  const port = await freePort();
  mx = await startMcplex(richConfig(port, [richStdioTarget("a"), richStdioTarget("b")]), { port });
});

test("a cancelled call is aborted at its own target only", async () => {
  const c = await connectRich(mx.url);
  try {
    const ac = new AbortController();
    const t0 = Date.now();
    const aCall = c.client.callTool({ name: "a_sleep", arguments: { ms: 8000 } }, undefined,
      { signal: ac.signal });
    const bCall = c.client.callTool({ name: "b_sleep", arguments: { ms: 1500 } });
    await sleep(500);
    ac.abort("test cancels");
    await assert.rejects(aCall, /abort|cancel/i);
    const b = await bCall;
    assert.equal(textOf(b), "slept 1500", "the other target's call completed");
    const stats = async (t) =>
      JSON.parse(textOf(await c.client.callTool({ name: `${t}_stats`, arguments: {} })));
    await waitFor(async () => (await stats("a")).cancelled.includes("sleep"),
      { timeout: 3000, what: "a's sleep aborted by notifications/cancelled" });
    assert.ok(Date.now() - t0 < 8000, "a's sleep did not run to its end");
    assert.deepEqual((await stats("b")).cancelled, [], "b saw no cancellation");
  } finally {
    await c.close();
  }
}, { timeout: 30000 });

test("a cancellation for an unknown request id is accepted and ignored", async () => {
  const c = await connectRich(mx.url);
  try {
    const r = await http(mx.url, {
      body: notification("notifications/cancelled", { requestId: 987654, reason: "nothing" }),
      session: c.transport.sessionId, protocolVersion: PROTOCOL_VERSION,
    });
    assert.equal(r.status, 202, r.text);
    const s = await c.client.callTool({ name: "b_sleep", arguments: { ms: 10 } });
    assert.equal(textOf(s), "slept 10", J(s));
    for (const t of ["a", "b"]) {
      const st = JSON.parse(textOf(await c.client.callTool({ name: `${t}_stats`, arguments: {} })));
      assert.deepEqual(st.cancelled, [], `${t}: ${J(st)}`);
    }
  } finally {
    await c.close();
  }
}, { timeout: 30000 });

await run({ timeout: 120000 });
