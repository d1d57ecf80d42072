// 54-client-disconnect: a client that goes away mid-stream, with rich fixtures (stdio) behind
// mcplex. A disconnect is not a cancellation (MCP 2025-11-25 transports): the session stays
// usable. Twenty times: a tools/call whose SSE response is dropped after its first progress
// event, and a GET server stream dropped at once; afterwards mcplex holds no more file
// descriptors than before (a small slack), has the same children, and the session still works.
import {
  assert, test, run, freePort, startMcplex, rpc, openSession, deleteSession, descendants, request, sleep,
  textOf, waitFor, J, PROTOCOL_VERSION,
} from "./lib/harness.mjs";
import fs from "node:fs";
import { richConfig, richStdioTarget, openStream } from "./lib/rich.mjs";

let mx;
let session;

const fds = (pid) => fs.readdirSync(`/proc/${pid}/fd`).length;
const children = (pid) => descendants(pid).map((p) => p.pid).sort();

// A tools/call with a progress token whose response stream is dropped after the first event.
async function dropMidCall() {
  const ac = new AbortController();
  const res = await fetch(mx.url, {
    method: "POST", signal: ac.signal,
    headers: {
      accept: "application/json, text/event-stream", "content-type": "application/json",
      "mcp-session-id": session, "mcp-protocol-version": PROTOCOL_VERSION,
    },
    body: J(request("tools/call", {
      name: "a_progress_steps", arguments: { steps: 5, intervalMs: 100 }, _meta: { progressToken: "t" },
    })),
  });
  const reader = res.body.getReader();
  await reader.read();
  ac.abort();
}

test("setup", async () => {
  const port = await freePort();
  mx = await startMcplex(richConfig(port, [richStdioTarget("a"), richStdioTarget("b")]),
    { port, logLevel: "info" });
  ({ session } = await openSession(mx.url));
  await rpc(mx.url, session, "tools/call", { name: "a_whoami", arguments: {} });
});

test("twenty dropped calls and streams leak nothing; the session still works", async () => {
  await sleep(500);
  const fd0 = fds(mx.pid);
  const kids0 = children(mx.pid);
  for (let i = 0; i < 20; i++) {
    await dropMidCall();
    const s = await openStream(mx.url, session);
    s.close();
  }
  // The dropped calls still run to their end upstream (a disconnect is not a cancellation).
  await sleep(1500);
  await waitFor(() => fds(mx.pid) <= fd0 + 4,
    { timeout: 5000, what: `fds back to ${fd0} (now ${fds(mx.pid)})` });
  assert.deepEqual(children(mx.pid), kids0, "same children");
  const r = await rpc(mx.url, session, "tools/call",
    { name: "a_progress_steps", arguments: { steps: 2, intervalMs: 10 } });
  assert.equal(textOf(r.json?.result), "done 2", r.text.slice(0, 300));
  const b = await rpc(mx.url, session, "tools/call", { name: "b_whoami", arguments: {} });
  assert.equal(JSON.parse(textOf(b.json.result)).name, "b");
  const s = await openStream(mx.url, session);
  assert.equal(s.status, 200, "a new server stream opens");
  s.close();
}, { timeout: 60000 });

test("teardown: DELETE stops the children", async () => {
  await deleteSession(mx.url, session);
  await waitFor(() => descendants(mx.pid).length === 0, { timeout: 8000, what: "children gone" });
}, { timeout: 15000 });

await run({ timeout: 120000 });
