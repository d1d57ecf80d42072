// 61-server-requests: requests a target sends to the client (sampling/createMessage,
// elicitation/create, roots/list) reach the SDK client that declared those capabilities, and
// its answers return to the target that asked, with two rich fixtures (stdio) behind mcplex;
// two client sessions calling the same tools at the same time each answer only their own
// requests (nothing crosses sessions). (Shared stdio targets: pending/56-shared-stdio.mjs.)
import { assert, test, run, freePort, startMcplex, textOf, J } from "./lib/harness.mjs";
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
    const results = await Promise.all(calls);
    for (const r of results) assert.match(r.text, new RegExp(`by ${r.tag}\\b`), J(r));
    assert.equal(one.seen.sampling.length, 8, `session one answered ${one.seen.sampling.length}`);
    assert.equal(two.seen.sampling.length, 8, `session two answered ${two.seen.sampling.length}`);
    assert.equal(one.seen.elicitation.length, 8);
    assert.equal(two.seen.elicitation.length, 8);
  } finally {
    await one.close();
    await two.close();
  }
}

let perSession;

test("setup", async () => {
  const port = await freePort();
  perSession = await startMcplex(richConfig(port, [richStdioTarget("a"), richStdioTarget("b")]), { port });
});

test("sampling, elicitation and roots reach the client and return to the target", async () => {
  await exercise(perSession.url);
}, { timeout: 30000 });

test("two concurrent sessions answer only their own requests", async () => {
  await twoSessions(perSession.url);
}, { timeout: 45000 });

await run({ timeout: 180000 });
