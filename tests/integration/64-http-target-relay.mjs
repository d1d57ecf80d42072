// 64-http-target-relay: what crosses mcplex besides plain answers when the target speaks
// streamable HTTP (the rich fixture with --http) instead of stdio, next to a stdio target so
// names are prefixed. These ride different upstream paths than stdio: notifications the target
// sends outside a request come on its own GET stream, server requests on the call's POST SSE
// stream (answered with a new POST upstream), cancellations go as a POST to the target.
//   - tools/list_changed (a burst, coalesced to one) and resources/updated (prefixed URI) reach
//     the client's server stream;
//   - sampling and elicitation from the HTTP target, two client sessions at once: each session
//     answers only its own requests, and each answer returns to the call that asked;
//   - notifications/cancelled reaches the HTTP target (its sleep is aborted), not the other.
import {
  assert, test, run, freePort, startMcplex, rpc, openSession, deleteSession, sleep, waitFor, textOf, J,
} from "./lib/harness.mjs";
import {
  richConfig, richStdioTarget, richHttpTarget, startRichHttp, connectRich, openStream,
} from "./lib/rich.mjs";

let mx;

test("setup: an HTTP target and a stdio target", async () => {
  const web = await startRichHttp("web");
  const port = await freePort();
  const targets = [richHttpTarget("web", web.url), richStdioTarget("local")];
  mx = await startMcplex(richConfig(port, targets), { port });
}, { timeout: 30000 });

test("list_changed (coalesced) and resources/updated from the HTTP target's own stream", async () => {
  const { session } = await openSession(mx.url);
  const s = await openStream(mx.url, session);
  assert.equal(s.status, 200);
  await sleep(500);
  const call = (name, args = {}) => rpc(mx.url, session, "tools/call", { name, arguments: args });
  const post = await call("web_change_tools", { burst: 4 });
  assert.match(textOf(post.json?.result), /added dynamic_tool/, post.text.slice(0, 300));
  const isChanged = (m) => m.method === "notifications/tools/list_changed";
  const changed = () =>
    s.messages().filter((m) => isChanged(m.msg)).length + post.messages.filter(isChanged).length;
  await waitFor(() => changed() >= 1, { timeout: 4000, what: "tools/list_changed from the HTTP target" });
  await sleep(1000);
  assert.equal(changed(), 1, "one per burst");
  const sub = await rpc(mx.url, session, "resources/subscribe", { uri: "web+test://watched-resource" });
  assert.deepEqual(sub.json?.result, {}, sub.text.slice(0, 300));
  const touched = await call("web_touch_resource");
  assert.match(textOf(touched.json?.result), /^updated/, touched.text.slice(0, 300));
  const updated = () => [...s.messages().map((m) => m.msg), ...touched.messages]
    .filter((m) => m.method === "notifications/resources/updated").map((m) => m.params.uri);
  await waitFor(() => updated().length >= 1,
    { timeout: 4000, what: "resources/updated from the HTTP target" });
  assert.deepEqual(updated(), ["web+test://watched-resource"]);
  s.close();
  await deleteSession(mx.url, session);
}, { timeout: 30000 });

test("sampling and elicitation from the HTTP target, two sessions at once", async () => {
  const one = await connectRich(mx.url, { tag: "one" });
  const two = await connectRich(mx.url, { tag: "two" });
  try {
    const calls = [];
    for (let i = 0; i < 3; i++) {
      for (const [c, tag] of [[one, "one"], [two, "two"]]) {
        calls.push(c.client.callTool({ name: "web_test_sampling", arguments: { prompt: `${tag}${i}` } })
          .then((r) => ({ tag, text: textOf(r) })));
        calls.push(c.client.callTool({ name: "web_test_elicitation", arguments: { message: `${tag}${i}` } })
          .then((r) => ({ tag, text: textOf(r) })));
      }
    }
    for (const r of await Promise.all(calls)) assert.match(r.text, new RegExp(`by ${r.tag}\\b`), J(r));
    for (const [c, tag] of [[one, "one"], [two, "two"]]) {
      assert.equal(c.seen.sampling.length, 3, `${tag}: ${c.seen.sampling.length} sampling requests`);
      assert.ok(c.seen.sampling.every((p) => p.messages[0].content.text.startsWith(tag)),
        `${tag} saw only its own`);
      assert.equal(c.seen.elicitation.length, 3);
    }
  } finally {
    await one.close();
    await two.close();
  }
}, { timeout: 45000 });

test("a cancelled call to the HTTP target is aborted there, not at the other target", async () => {
  const c = await connectRich(mx.url);
  try {
    const ac = new AbortController();
    const call = c.client.callTool({ name: "web_sleep", arguments: { ms: 8000 } }, undefined,
      { signal: ac.signal });
    const other = c.client.callTool({ name: "local_sleep", arguments: { ms: 1000 } });
    await sleep(500);
    ac.abort("test cancels");
    await assert.rejects(call, /abort|cancel/i);
    assert.equal(textOf(await other), "slept 1000");
    const stats = async (t) =>
      JSON.parse(textOf(await c.client.callTool({ name: `${t}_stats`, arguments: {} })));
    await waitFor(async () => (await stats("web")).cancelled.includes("sleep"),
      { timeout: 4000, what: "web's sleep aborted by notifications/cancelled" });
    assert.deepEqual((await stats("local")).cancelled, []);
  } finally {
    await c.close();
  }
}, { timeout: 30000 });

await run({ timeout: 150000 });
