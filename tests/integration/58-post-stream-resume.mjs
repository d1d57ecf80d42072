// 58-post-stream-resume: a tools/call whose POST SSE stream breaks mid-call (after its first
// progress event) is resumed by GET /mcp with that event's id as Last-Event-ID (MCP 2025-11-25
// transports, "Resumability and Redelivery"): the remaining progress and the call's response
// arrive on the resumed stream, with two rich fixtures (stdio) behind mcplex.
import {
  assert, test, run, freePort, startMcplex, openSession, deleteSession, sleep, waitFor, request, J,
  PROTOCOL_VERSION,
} from "./lib/harness.mjs";
import { richConfig, richStdioTarget, openStream } from "./lib/rich.mjs";

let mx;
let session;

test("setup", async () => {
  const port = await freePort();
  mx = await startMcplex(richConfig(port, [richStdioTarget("a"), richStdioTarget("b")]), { port });
  ({ session } = await openSession(mx.url));
});

test("POST stream: a call whose stream broke mid-call is resumed with GET + Last-Event-ID", async () => {
  const ac = new AbortController();
  const res = await fetch(mx.url, {
    method: "POST", signal: ac.signal,
    headers: {
      accept: "application/json, text/event-stream", "content-type": "application/json",
      "mcp-session-id": session, "mcp-protocol-version": PROTOCOL_VERSION,
    },
    body: J(request("tools/call", {
      name: "a_progress_steps", arguments: { steps: 6, intervalMs: 250 },
      _meta: { progressToken: "resume-me" },
    }, 77)),
  });
  assert.ok(res.headers.get("content-type")?.startsWith("text/event-stream"), "the call answers on SSE");
  // Read until the first progress event, remember its id, then drop the connection.
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let buf = "";
  let lastId;
  while (!lastId) {
    const { value, done } = await reader.read();
    assert.ok(!done, `stream ended early: ${buf}`);
    buf += dec.decode(value, { stream: true });
    for (const block of buf.split("\n\n").slice(0, -1)) {
      const id = /^id: ?(.*)$/m.exec(block)?.[1];
      if (id && /"notifications\/progress"/.test(block)) lastId = id;
    }
  }
  ac.abort();
  await sleep(300);
  const s = await openStream(mx.url, session, { lastEventId: lastId });
  assert.equal(s.status, 200, "GET with the POST stream's Last-Event-ID");
  await waitFor(() => s.messages().some((m) => m.msg.id === 77),
    { timeout: 5000, what: "the call's response replayed" });
  const msgs = s.messages().map((m) => m.msg);
  const progress = msgs.filter((m) => m.method === "notifications/progress").map((m) => m.params.progress);
  assert.deepEqual(progress, [2, 3, 4, 5, 6], `remaining progress: ${J(msgs).slice(0, 400)}`);
  assert.match(J(msgs.find((m) => m.id === 77).result), /done 6/);
  s.close();
}, { timeout: 30000 });

test("teardown", async () => {
  await deleteSession(mx.url, session);
});

await run({ timeout: 60000 });
