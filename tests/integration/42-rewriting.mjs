// 42-rewriting: names and URIs are rewritten wherever they cross mcplex, with two rich fixtures
// (stdio) behind it so prefixes are on (research/mcp-protocol.md 5.4 and 6.2):
//   - tools/call results: resource_link and embedded resource URIs come back prefixed, and the
//     prefixed URI reads back through resources/read;
//   - prompts/get results: the embedded resource URI is prefixed;
//   - resources/templates/list prefixes uriTemplate, and a templated URI reads back;
//   - completion/complete: ref/prompt names and ref/resource URI templates are un-prefixed (the
//     fixture rejects refs it does not know with -32602);
//   - logging/setLevel reaches every target;
//   - JSON-RPC errors from a target (unknown resource) come back as errors with HTTP 200.
import {
  assert, test, run, freePort, startMcplex, rpc, openSession, deleteSession, textOf, J,
} from "./lib/harness.mjs";
import { richConfig, richStdioTarget } from "./lib/rich.mjs";

let mx;
let session;

const ok = async (method, params) => {
  const r = await rpc(mx.url, session, method, params);
  assert.equal(r.status, 200, `${method}: HTTP ${r.status}`);
  assert.ok(r.json?.result, `${method}: ${r.text.slice(0, 300)}`);
  return r.json.result;
};

test("setup", async () => {
  const port = await freePort();
  mx = await startMcplex(richConfig(port, [richStdioTarget("a"), richStdioTarget("b")]), { port });
  ({ session } = await openSession(mx.url));
});

test("tools/call: resource_link and embedded resource URIs are prefixed and read back", async () => {
  const r = await ok("tools/call", { name: "b_test_resource_link", arguments: {} });
  const link = r.content.find((c) => c.type === "resource_link");
  const embedded = r.content.find((c) => c.type === "resource");
  assert.equal(link?.uri, "b+test://static-text", J(r.content));
  assert.equal(embedded?.resource?.uri, "b+test://static-text", J(r.content));
  const read = await ok("resources/read", { uri: link.uri });
  assert.equal(read.contents[0].uri, "b+test://static-text");
  assert.match(read.contents[0].text, /static text resource/);
});

test("prompts/get: an embedded resource URI is prefixed", async () => {
  const r = await ok("prompts/get", {
    name: "a_test_prompt_with_embedded_resource", arguments: { resourceUri: "test://static-text" },
  });
  const res = r.messages.find((m) => m.content.type === "resource");
  assert.equal(res?.content?.resource?.uri, "a+test://static-text", J(r.messages));
});

test("resource templates: prefixed uriTemplate; a templated URI reads back", async () => {
  const r = await ok("resources/templates/list", {});
  const templates = r.resourceTemplates.map((t) => t.uriTemplate);
  for (const t of ["a", "b"]) assert.ok(templates.includes(`${t}+test://template/{id}/data`), J(templates));
  const read = await ok("resources/read", { uri: "a+test://template/42/data" });
  assert.equal(read.contents[0].uri, "a+test://template/42/data");
  assert.equal(JSON.parse(read.contents[0].text).id, "42");
});

test("completion/complete: prompt names and URI templates are un-prefixed", async () => {
  const p = await ok("completion/complete", {
    ref: { type: "ref/prompt", name: "a_test_prompt_with_arguments" },
    argument: { name: "arg1", value: "pa" },
  });
  assert.deepEqual(p.completion.values, ["paris", "park", "party"]);
  const u = await ok("completion/complete", {
    ref: { type: "ref/resource", uri: "b+test://template/{id}/data" }, argument: { name: "id", value: "par" },
  });
  assert.deepEqual(u.completion.values, ["paris", "park", "party"]);
});

test("logging/setLevel reaches every target", async () => {
  assert.deepEqual(await ok("logging/setLevel", { level: "warning" }), {});
  for (const t of ["a", "b"]) {
    const stats = JSON.parse(textOf(await ok("tools/call", { name: `${t}_stats`, arguments: {} })));
    assert.equal(stats.logLevel, "warning", `${t}: ${J(stats)}`);
  }
});

test("a target's JSON-RPC error comes back as an error with HTTP 200", async () => {
  const r = await rpc(mx.url, session, "resources/read", { uri: "a+test://no-such-resource" });
  assert.equal(r.status, 200);
  assert.equal(r.json?.error?.code, -32602, r.text.slice(0, 300));
  assert.match(r.json.error.message, /not found/);
});

test("teardown", async () => {
  await deleteSession(mx.url, session);
});

await run({ timeout: 60000 });
