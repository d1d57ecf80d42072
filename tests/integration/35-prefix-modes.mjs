// 35-prefix-modes: how names cross the proxy in each prefix mode (agentgateway-style file).
//   never, two targets:  names stay bare; each call goes to the target that listed the name;
//                        a name both targets serve is listed once (the first target's) and
//                        calls reach that target; an unknown name is -32602 with HTTP 200.
//   always, one target:  even a single target's names and URIs carry the prefix.
//   conditional, one target (the default): nothing is prefixed.
import {
  assert, test, run, freePort, startMcplex, connectClient, names, textOf, stdioPeer, rpc, openSession,
  deleteSession, J,
} from "./lib/harness.mjs";

const tiny = stdioPeer("tiny");
const memory = stdioPeer("memory");

const config = (port, mode, targets) => `# prefixMode ${mode}
binds:
- port: ${port}
  listeners:
  - routes:
    - backends:
      - mcp:
          prefixMode: ${mode}
          targets:
${targets.join("\n")}
`;
const tinyTarget = (name, value) =>
  `          - name: ${name}\n            stdio: {cmd: ${J(tiny.cmd)}, args: ${J(tiny.args)}, env: {NAME: ${value}}}`;
const memoryTarget = `          - name: memory\n            stdio: {cmd: ${J(memory.cmd)}, args: ${J(memory.args)}, env: {MEMORY_FILE_PATH: /dev/null}}`;

test("never: bare names routed to the target that listed them", async () => {
  const port = await freePort();
  const mx = await startMcplex(config(port, "never", [tinyTarget("first", "FIRST"), memoryTarget,
    tinyTarget("second", "SECOND")]), { port });
  const c = await connectClient(mx.url);
  const tools = names((await c.client.listTools()).tools);
  assert.ok(tools.includes("whoami") && tools.includes("read_graph"), `tools: ${tools}`);
  assert.equal(tools.filter((t) => t === "whoami").length, 1, "a shared name is listed once");
  assert.ok(!tools.some((t) => t.includes("_whoami")), `no prefixes: ${tools}`);
  // whoami is served by both tiny targets: the first one wins, consistently.
  assert.equal(textOf(await c.client.callTool({ name: "whoami", arguments: {} })), "FIRST");
  const graph = await c.client.callTool({ name: "read_graph", arguments: {} });
  assert.ok(!graph.isError, JSON.stringify(graph).slice(0, 200));
  const r = await rpc(mx.url, c.sessionId, "tools/call", { name: "no_such_tool", arguments: {} });
  assert.equal(r.status, 200);
  assert.equal(r.json?.error?.code, -32602, r.text.slice(0, 200));
  // A URI is routed to the target that listed it (clients list before they read).
  const uris = names((await c.client.listResources()).resources, "uri");
  assert.equal(uris.filter((u) => u === "tiny://whoami").length, 1, `uris: ${uris}`);
  const res = await c.client.readResource({ uri: "tiny://whoami" });
  assert.equal(res.contents[0].text, "FIRST");
  await c.terminate();
  await c.close();
});

test("always: a single target is still prefixed", async () => {
  const port = await freePort();
  const mx = await startMcplex(config(port, "always", [tinyTarget("solo", "SOLO")]), { port });
  const c = await connectClient(mx.url);
  assert.deepEqual(names((await c.client.listTools()).tools).sort(), ["solo_add", "solo_whoami"]);
  assert.deepEqual(names((await c.client.listResources()).resources, "uri"), ["solo+tiny://whoami"]);
  assert.equal(textOf(await c.client.callTool({ name: "solo_whoami", arguments: {} })), "SOLO");
  const res = await c.client.readResource({ uri: "solo+tiny://whoami" });
  assert.equal(res.contents[0].uri, "solo+tiny://whoami");
  await c.terminate();
  await c.close();
});

test("conditional: a single target is not prefixed", async () => {
  const port = await freePort();
  const mx = await startMcplex(config(port, "conditional", [tinyTarget("solo", "SOLO")]), { port });
  const s = await openSession(mx.url);
  const r = await rpc(mx.url, s.session, "tools/list", {});
  assert.deepEqual(r.json.result.tools.map((t) => t.name).sort(), ["add", "whoami"]);
  const add = await rpc(mx.url, s.session, "tools/call", { name: "add", arguments: { a: 2, b: 40 } });
  assert.equal(add.json.result.content[0].text, "42");
  await deleteSession(mx.url, s.session);
});

await run();
