// 56-shared-stdio: stdio targets in shared mode (targets[].stdio.shared: one child serves every
// client session), with two rich fixtures behind mcplex. Only mcplex's rewriting keeps the
// sessions apart, so: sampling, elicitation and roots requests from the shared child reach the
// client session whose call caused them, and two sessions calling at the same time never see
// each other's requests; both sessions use one child per target; progress tokens that both
// sessions chose alike come back to each caller only.
// Server requests of a shared child are relayed only when one call is in flight on it (on stdio
// nothing says whose request it is otherwise); with several, mcplex refuses them rather than
// risk sending one session's prompt to another.
import { assert, test, run, freePort, startMcplex, textOf, descendants, J } from "./lib/harness.mjs";
import { CallToolResultSchema } from "@modelcontextprotocol/sdk/types.js";
import { richConfig, richStdioTarget, connectRich } from "./lib/rich.mjs";

async function exercise(url) {
  const c = await connectRich(url, { tag: "solo" });
  try {
    const s = await c.client.callTool({ name: "a_test_sampling", arguments: { prompt: "hi from a" } });
    assert.equal(textOf(s), "LLM response: sampled by solo");
    assert.equal(c.seen.sampling[0]?.messages?.[0]?.content?.text, "hi from a", "the target's own request");
    const e = await c.client.callTool({ name: "b_test_elicitation", arguments: { message: "pick" } });
    assert.match(textOf(e), /action=accept.*elicited by solo/);
    const r = await c.client.callTool({ name: "b_test_roots", arguments: {} });
    assert.deepEqual(JSON.parse(textOf(r)), [{ uri: "file:///roots/solo", name: "solo" }]);
    assert.deepEqual([c.seen.sampling.length, c.seen.elicitation.length, c.seen.roots], [1, 1, 1]);
  } finally {
    await c.close();
  }
}

async function twoSessions(url) {
  const one = await connectRich(url, { tag: "one" });
  const two = await connectRich(url, { tag: "two" });
  try {
    const calls = [];
    for (let i = 0; i < 4; i++) {
      for (const [c, t] of [[one, "a"], [two, "a"], [one, "b"], [two, "b"]]) {
        calls.push(c.client.callTool({ name: `${t}_test_sampling`, arguments: { prompt: `${t}${i}` } })
          .then((r) => ({ tag: c === one ? "one" : "two", text: textOf(r) })));
        calls.push(c.client.callTool({ name: `${t}_test_elicitation`, arguments: { message: `${t}${i}` } })
          .then((r) => ({ tag: c === one ? "one" : "two", text: textOf(r) })));
      }
    }
    // With several calls in flight on one shared child, nothing on stdio says whose request a
    // server request is: mcplex relays it only when one call is in flight and refuses it
    // otherwise. What must hold is isolation: a session is only ever asked on behalf of its own
    // calls, and every answer it gets is its own (or the refusal).
    const results = await Promise.all(calls);
    let relayed = 0;
    for (const r of results) {
      if (/cannot tell which session/.test(r.text)) continue;
      assert.match(r.text, new RegExp(`by ${r.tag}\\b`), J(r));
      relayed++;
    }
    const prompts = (c) => c.seen.sampling.map((m) => m?.messages?.[0]?.content?.text);
    for (const p of [...prompts(one), ...prompts(two)]) assert.match(p ?? "", /^[ab]\d$/);
    assert.ok(relayed + results.filter((r) => /cannot tell/.test(r.text)).length === results.length);
    // One call at a time: every request reaches its own session.
    const single = await one.client.callTool({ name: "a_test_sampling", arguments: { prompt: "alone" } });
    assert.match(textOf(single), /by one\b/);
  } finally {
    await one.close();
    await two.close();
  }
}

let mx;

test("setup: shared stdio targets", async () => {
  const port = await freePort();
  const sharedTarget = (n) => richStdioTarget(n).replace("stdio: {", "stdio: {shared: true, ");
  // Shared children are per worker: one worker, so both sessions use the same children.
  mx = await startMcplex(richConfig(port, [sharedTarget("a"), sharedTarget("b")]),
    { port, args: ["--concurrency", "1"] });
});

test("sampling, elicitation and roots reach the right client", async () => {
  await exercise(mx.url);
}, { timeout: 30000 });

test("two concurrent sessions never see each other's requests", async () => {
  await twoSessions(mx.url);
}, { timeout: 45000 });

test("two sessions share one child per target", async () => {
  const one = await connectRich(mx.url, { tag: "one" });
  const two = await connectRich(mx.url, { tag: "two" });
  try {
    const pid = async (c, t) =>
      JSON.parse(textOf(await c.client.callTool({ name: `${t}_whoami`, arguments: {} }))).pid;
    assert.equal(await pid(one, "a"), await pid(two, "a"));
    assert.equal(await pid(one, "b"), await pid(two, "b"));
    assert.equal(descendants(mx.pid).filter((p) => p.cmd.includes("rich-server")).length, 2,
      "two children in all");
  } finally {
    await one.close();
    await two.close();
  }
}, { timeout: 30000 });

test("the same progress token in two sessions: each caller gets only its own progress", async () => {
  const one = await connectRich(mx.url, { tag: "one" });
  const two = await connectRich(mx.url, { tag: "two" });
  try {
    const call = (c, steps) => {
      const seen = [];
      return c.client.request({
        method: "tools/call",
        params: {
          name: "a_progress_steps", arguments: { steps, intervalMs: 40 }, _meta: { progressToken: 1 },
        },
      }, CallToolResultSchema, { onprogress: (p) => seen.push(p.total) }).then(() => seen);
    };
    const [s1, s2] = await Promise.all([call(one, 3), call(two, 5)]);
    assert.deepEqual(s1, [3, 3, 3], `session one: ${J(s1)}`);
    assert.deepEqual(s2, [5, 5, 5, 5, 5], `session two: ${J(s2)}`);
  } finally {
    await one.close();
    await two.close();
  }
}, { timeout: 30000 });

await run({ timeout: 180000 });
