// 47-pagination: list methods over several targets page with opaque composite cursors and never
// truncate, with two rich fixtures (stdio, each paging its tools and resources 10 at a time)
// behind mcplex:
//   - tools/list returns nextCursor; following it yields every tool of both targets exactly once
//     (the reference list comes from the fixture itself, with paging off); the order is checked
//     in pending/57-list-order.mjs;
//   - the same for resources/list;
//   - a forged cursor, a target's own raw cursor, and a cursor of another session or method get
//     JSON-RPC -32602 with HTTP 200;
//   - a single target (no prefix) also pages through everything.
import {
  assert, test, run, freePort, startMcplex, rpc, openSession, deleteSession, J,
} from "./lib/harness.mjs";
import { richConfig, richStdioTarget, startRichHttp } from "./lib/rich.mjs";

let mx;
let session;
let toolNames;
let resourceUris;

// Follows nextCursor from the first page; resolves {items, pages}.
async function drain(url, sess, method, key, field) {
  const items = [];
  let cursor;
  let pages = 0;
  do {
    const r = await rpc(url, sess, method, cursor === undefined ? {} : { cursor });
    assert.equal(r.status, 200);
    assert.ok(r.json?.result, `${method} page ${pages}: ${r.text.slice(0, 300)}`);
    items.push(...r.json.result[key].map((x) => x[field]));
    cursor = r.json.result.nextCursor;
    pages++;
    assert.ok(pages < 50, "pagination terminates");
  } while (cursor !== undefined);
  return { items, pages };
}

test("setup: the fixture's own full lists, mcplex with two targets", async () => {
  const ref = await startRichHttp("ref", { args: ["--page-size", "0"] });
  const { session: rs } = await openSession(ref.url);
  toolNames = (await rpc(ref.url, rs, "tools/list", {})).json.result.tools.map((t) => t.name);
  resourceUris = (await rpc(ref.url, rs, "resources/list", {})).json.result.resources.map((r) => r.uri);
  assert.ok(toolNames.length > 30 && resourceUris.length > 15,
    `${toolNames.length} tools, ${resourceUris.length} resources`);
  const port = await freePort();
  mx = await startMcplex(richConfig(port, [richStdioTarget("a"), richStdioTarget("b")]), { port });
  ({ session } = await openSession(mx.url));
});

test("tools/list: nextCursor, and every tool of both targets exactly once", async () => {
  const first = await rpc(mx.url, session, "tools/list", {});
  assert.equal(typeof first.json?.result?.nextCursor, "string",
    `first page has a nextCursor: ${first.text.slice(0, 200)}`);
  const { items } = await drain(mx.url, session, "tools/list", "tools", "name");
  const want = [...toolNames.map((n) => `a_${n}`), ...toolNames.map((n) => `b_${n}`)];
  assert.equal(new Set(items).size, items.length, "no tool twice");
  assert.deepEqual([...items].sort(), [...want].sort());
}, { timeout: 30000 });

test("resources/list: every resource of both targets exactly once", async () => {
  const { items } = await drain(mx.url, session, "resources/list", "resources", "uri");
  const want = [...resourceUris.map((u) => `a+${u}`), ...resourceUris.map((u) => `b+${u}`)];
  assert.equal(new Set(items).size, items.length, "no resource twice");
  assert.deepEqual([...items].sort(), [...want].sort());
}, { timeout: 30000 });

test("forged, raw upstream, cross-session and cross-method cursors get -32602 (HTTP 200)", async () => {
  const first = (await rpc(mx.url, session, "tools/list", {})).json.result;
  const other = await openSession(mx.url);
  const cases = [
    ["tools/list", "bm90LWEtY3Vyc29y", session, "forged"],
    ["tools/list", "p10", session, "a target's raw cursor"],
    ["tools/list", `${first.nextCursor}x`, session, "a mangled cursor"],
    ["resources/list", first.nextCursor, session, "a tools/list cursor on resources/list"],
  ];
  for (const [method, cursor, sess, what] of cases) {
    const r = await rpc(mx.url, sess, method, { cursor });
    assert.equal(r.status, 200, `${what}: HTTP ${r.status}`);
    assert.equal(r.json?.error?.code, -32602, `${what}: ${r.text.slice(0, 300)}`);
  }
  // Cursors are per session (spec: not to be reused across sessions): either rejected with
  // -32602 or served as the same page; never another session's state or a crash.
  const cross = await rpc(mx.url, other.session, "tools/list", { cursor: first.nextCursor });
  assert.equal(cross.status, 200);
  assert.ok(cross.json?.error?.code === -32602 || Array.isArray(cross.json?.result?.tools), J(cross.json));
  await deleteSession(mx.url, other.session);
}, { timeout: 30000 });

test("one target, no prefix: paging still yields every tool once", async () => {
  const port = await freePort();
  const one = await startMcplex(richConfig(port, [richStdioTarget("solo")]), { port, name: "mcplex-one" });
  const s = await openSession(one.url);
  const { items } = await drain(one.url, s.session, "tools/list", "tools", "name");
  assert.deepEqual(items, toolNames);
  await deleteSession(one.url, s.session);
}, { timeout: 30000 });

test("teardown", async () => {
  await deleteSession(mx.url, session);
});

await run({ timeout: 120000 });
