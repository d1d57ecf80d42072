// 63-ping-and-roots-changed: the small messages of research/mcp-protocol.md 5.4 and 5.9, with two
// rich fixtures (stdio) behind mcplex:
//   - a ping from a target to the client is answered ({}), by mcplex itself or by the client;
//   - notifications/roots/list_changed from the client reaches every target (202 to the client).
import {
  assert, test, run, freePort, startMcplex, rpc, http, notification, openSession, deleteSession, textOf,
  waitFor, PROTOCOL_VERSION,
} from "./lib/harness.mjs";
import { richConfig, richStdioTarget } from "./lib/rich.mjs";

let mx;
let session;

test("setup", async () => {
  const port = await freePort();
  mx = await startMcplex(richConfig(port, [richStdioTarget("a"), richStdioTarget("b")]), { port });
  ({ session } = await openSession(mx.url));
});

test("a target's ping to the client is answered", async () => {
  const r = await rpc(mx.url, session, "tools/call", { name: "a_ping_client", arguments: {} },
    { timeout: 15000 });
  assert.equal(r.status, 200);
  assert.equal(textOf(r.json?.result), "pong {}", r.text.slice(0, 300));
}, { timeout: 30000 });

test("notifications/roots/list_changed reaches every target", async () => {
  const n = await http(mx.url, {
    body: notification("notifications/roots/list_changed"), session, protocolVersion: PROTOCOL_VERSION,
  });
  assert.equal(n.status, 202);
  for (const t of ["a", "b"]) {
    await waitFor(async () => {
      const r = await rpc(mx.url, session, "tools/call", { name: `${t}_stats`, arguments: {} });
      return JSON.parse(textOf(r.json.result)).rootsChanged === 1;
    }, { timeout: 3000, what: `${t} got roots/list_changed once` });
  }
}, { timeout: 30000 });

test("teardown", async () => {
  await deleteSession(mx.url, session);
});

await run({ timeout: 90000 });
