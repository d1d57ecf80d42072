// 44-progress: progress notifications of a tools/call travel on that POST's SSE stream, before
// its response, carrying the client's own progressToken (same value and JSON type), with two
// rich fixtures (stdio) behind mcplex; two concurrent calls with the same token in two sessions
// each get only their own progress; and the SDK client's onprogress sees every step.
import {
  assert, test, run, freePort, startMcplex, http, request, openSession, deleteSession, J, PROTOCOL_VERSION,
} from "./lib/harness.mjs";
import { richConfig, richStdioTarget, connectRich } from "./lib/rich.mjs";

let mx;

const callWithToken = (session, name, args, token) => http(mx.url, {
  body: request("tools/call", { name, arguments: args, _meta: { progressToken: token } }),
  session, protocolVersion: PROTOCOL_VERSION, accept: "application/json, text/event-stream", timeout: 20000,
});

// The progress notifications of |r| and where the response sits among its messages.
function progressOf(r) {
  const msgs = r.messages;
  const at = msgs.findIndex((m) => "result" in m || "error" in m);
  return { notes: msgs.filter((m) => m.method === "notifications/progress"), responseIndex: at, msgs };
}

test("setup", async () => {
  const port = await freePort();
  mx = await startMcplex(richConfig(port, [richStdioTarget("a"), richStdioTarget("b")]), { port });
});

test("string and integer tokens come back exactly, on the POST stream, before the response", async () => {
  const { session } = await openSession(mx.url);
  for (const token of ["client-token-7", 42]) {
    const r = await callWithToken(session, "b_progress_steps", { steps: 4, intervalMs: 30 }, token);
    assert.equal(r.status, 200);
    assert.ok(r.contentType.startsWith("text/event-stream"), `SSE answer: ${r.contentType}`);
    const { notes, responseIndex, msgs } = progressOf(r);
    assert.equal(notes.length, 4, `progress notifications: ${J(msgs).slice(0, 500)}`);
    for (const n of notes) assert.equal(J(n.params.progressToken), J(token), "the client's own token");
    assert.deepEqual(notes.map((n) => n.params.progress), [1, 2, 3, 4]);
    assert.ok(msgs.indexOf(notes[3]) < responseIndex, "progress before the response");
    assert.match(J(msgs[responseIndex].result), /done 4/);
  }
  await deleteSession(mx.url, session);
}, { timeout: 30000 });

test("two sessions using the same token concurrently each see only their own progress", async () => {
  const s1 = await openSession(mx.url);
  const s2 = await openSession(mx.url);
  const [r1, r2] = await Promise.all([
    callWithToken(s1.session, "a_progress_steps", { steps: 3, intervalMs: 50 }, 1),
    callWithToken(s2.session, "a_progress_steps", { steps: 5, intervalMs: 30 }, 1),
  ]);
  assert.equal(progressOf(r1).notes.length, 3, J(r1.messages).slice(0, 400));
  assert.equal(progressOf(r2).notes.length, 5, J(r2.messages).slice(0, 400));
  await deleteSession(mx.url, s1.session);
  await deleteSession(mx.url, s2.session);
}, { timeout: 30000 });

test("the SDK client's onprogress sees every step (conformance tool)", async () => {
  const c = await connectRich(mx.url);
  const seen = [];
  const r = await c.client.callTool({ name: "a_test_tool_with_progress", arguments: {} }, undefined,
    { onprogress: (p) => seen.push(p.progress) });
  assert.deepEqual(seen, [0, 50, 100]);
  assert.ok(r.content?.[0]?.text, J(r));
  await c.close();
}, { timeout: 30000 });

await run({ timeout: 120000 });
