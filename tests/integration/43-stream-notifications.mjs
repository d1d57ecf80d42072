// 43-stream-notifications: notifications a target sends outside any request reach the client on
// its server stream (GET /mcp), with two rich fixtures (stdio) behind mcplex so names are
// prefixed:
//   - a burst of notifications/tools/list_changed from one target arrives coalesced: exactly one
//     per burst, and the next tools/list shows the change (a_dynamic_tool);
//   - resources/subscribe with a prefixed URI is routed to its target, and the target's
//     notifications/resources/updated arrives with the URI prefixed again; after unsubscribe the
//     target no longer has the subscription.
import {
  assert, test, run, freePort, startMcplex, rpc, openSession, deleteSession, sleep, waitFor, textOf, J,
} from "./lib/harness.mjs";
import { richConfig, richStdioTarget, openStream } from "./lib/rich.mjs";

let mx;
let session;

const call = async (name, args = {}) => {
  const r = await rpc(mx.url, session, "tools/call", { name, arguments: args });
  assert.equal(r.status, 200, r.text.slice(0, 300));
  assert.ok(r.json?.result, `${name}: ${r.text.slice(0, 300)}`);
  return r;
};
const methodsOf = (s, method) => s.messages().filter((m) => m.msg.method === method);

test("setup: two rich targets, one session, a server stream", async () => {
  const port = await freePort();
  mx = await startMcplex(richConfig(port, [richStdioTarget("a"), richStdioTarget("b")]), { port });
  ({ session } = await openSession(mx.url));
});

test("a burst of tools/list_changed arrives once on the server stream", async () => {
  const s = await openStream(mx.url, session);
  assert.equal(s.status, 200, "GET /mcp opens the server stream");
  await sleep(300);
  const post = await call("a_change_tools", { burst: 5 });
  assert.match(textOf(post.json.result), /added dynamic_tool/);
  await sleep(1500);
  const onStream = methodsOf(s, "notifications/tools/list_changed").length;
  const onPost = post.messages.filter((m) => m.method === "notifications/tools/list_changed").length;
  assert.equal(onStream + onPost, 1,
    `list_changed: ${onStream} on the GET stream, ${onPost} on the POST stream`);
  const list = await rpc(mx.url, session, "tools/list", {});
  const all = [];
  let page = list.json.result;
  all.push(...page.tools.map((t) => t.name));
  while (page.nextCursor) {
    page = (await rpc(mx.url, session, "tools/list", { cursor: page.nextCursor })).json.result;
    all.push(...page.tools.map((t) => t.name));
  }
  assert.ok(all.includes("a_dynamic_tool"), "the new tool is listed, prefixed");
  assert.ok(!all.includes("b_dynamic_tool"), "the other target did not change");
  // A second burst (removal) is a second notification.
  await call("a_change_tools", { burst: 3 });
  await waitFor(() => methodsOf(s, "notifications/tools/list_changed").length >= 2,
    { timeout: 3000, what: "second list_changed" });
  await sleep(1000);
  assert.equal(methodsOf(s, "notifications/tools/list_changed").length, 2, "one per burst");
  s.close();
}, { timeout: 30000 });

test("resources/updated for a subscribed, prefixed URI", async () => {
  const s = await openStream(mx.url, session);
  assert.equal(s.status, 200);
  await sleep(300);
  const sub = await rpc(mx.url, session, "resources/subscribe", { uri: "a+test://watched-resource" });
  assert.deepEqual(sub.json?.result, {}, `subscribe: ${sub.text.slice(0, 300)}`);
  const stats = JSON.parse(textOf((await call("a_stats")).json.result));
  assert.deepEqual(stats.subscriptions, ["test://watched-resource"], "the target got the bare URI");
  const other = JSON.parse(textOf((await call("b_stats")).json.result));
  assert.deepEqual(other.subscriptions, [], "the other target got nothing");
  const touched = await call("a_touch_resource", {});
  assert.match(textOf(touched.json.result), /^updated/);
  const updated = () => [...methodsOf(s, "notifications/resources/updated").map((m) => m.msg),
    ...touched.messages.filter((m) => m.method === "notifications/resources/updated")];
  await waitFor(() => updated().length >= 1, { timeout: 3000, what: "resources/updated" });
  assert.deepEqual(updated().map((m) => m.params.uri), ["a+test://watched-resource"], J(updated()));
  const unsub = await rpc(mx.url, session, "resources/unsubscribe", { uri: "a+test://watched-resource" });
  assert.deepEqual(unsub.json?.result, {}, `unsubscribe: ${unsub.text.slice(0, 300)}`);
  assert.match(textOf((await call("a_touch_resource", {})).json.result), /not subscribed/);
  s.close();
}, { timeout: 30000 });

test("teardown", async () => {
  await deleteSession(mx.url, session);
});

await run({ timeout: 120000 });
