// 10-seed-stdio: the seed example of issue 2 (agentgateway-style file, two stdio targets:
// time-mcp and server-everything) driven by the official SDK client: prefixed tools,
// resources and prompts of both targets, calls routed to the right child, DELETE stopping the
// children. Part 1 runs the targets with `node <entry>` (fast); part 2 runs the literal seed
// file (examples/seed.yaml, `npx -y ...`) to prove it works as written.
import {
  assert, test, run, freePort, startMcplex, connectClient, descendants, describeProcs,
  waitFor, stdioPeer, names, textOf, http, rpc, openSession, deleteSession, readExample, J,
  PROTOCOL_VERSION, stopProcess, sleep, processTable, assertDeleted,
} from "./lib/harness.mjs";

const time = stdioPeer("time");
const everything = stdioPeer("everything");

const seedStyle = (port) => `# seed-style config with node instead of npx
binds:
- port: ${port}
  listeners:
  - routes:
    - policies:
        cors:
          allowOrigins: ["*"]
          allowHeaders: [mcp-protocol-version, content-type, cache-control]
          exposeHeaders: ["Mcp-Session-Id"]
      backends:
      - mcp:
          targets:
          - name: time
            stdio: {cmd: ${J(time.cmd)}, args: ${J(time.args)}}
            timeout: 10s
          - name: everything
            stdio: {cmd: ${J(everything.cmd)}, args: ${J(everything.args)}}
            timeout: 10s
`;

let mx; // mcplex
let c; // SDK client session

test("mcplex starts on the seed-style file", async () => {
  const port = await freePort();
  mx = await startMcplex(seedStyle(port), { port, flag: "-f" });
});

test("no stdio children before any session", async () => {
  assert.deepEqual(descendants(mx.pid), [], "children before the first initialize");
});

test("SDK client connects; serverInfo.name is mcplex", async () => {
  c = await connectClient(mx.url);
  assert.ok(c.transport.sessionId, "no Mcp-Session-Id from initialize");
  assert.equal(c.client.getServerVersion()?.name, "mcplex");
  const caps = c.client.getServerCapabilities();
  assert.ok(caps?.tools, "merged capabilities lack tools");
  assert.ok(caps?.resources, "merged capabilities lack resources (server-everything has them)");
  assert.ok(caps?.prompts, "merged capabilities lack prompts (server-everything has them)");
});

test("the session has one child per stdio target", async () => {
  const kids = descendants(mx.pid);
  const cmds = kids.map((p) => p.cmd).join("\n");
  assert.ok(cmds.includes(time.args[0]), `time-mcp child missing: ${describeProcs(kids)}`);
  assert.ok(cmds.includes(everything.args[0]), `server-everything child missing: ${describeProcs(kids)}`);
});

test("tools/list: prefixed tools of both targets", async () => {
  const { tools } = await c.client.listTools();
  const n = names(tools);
  assert.ok(n.includes("everything_echo"), `no everything_echo in ${n}`);
  assert.ok(n.includes("time_current_time"), `no time_current_time in ${n}`);
  for (const name of n) assert.match(name, /^(time|everything)_/, `unprefixed tool ${name}`);
  const echo = tools.find((t) => t.name === "everything_echo");
  assert.ok(echo.inputSchema?.properties?.message, "echo lost its inputSchema");
});

test("tools/call everything_echo", async () => {
  const r = await c.client.callTool({ name: "everything_echo", arguments: { message: "hello world" } });
  assert.equal(textOf(r), "Echo: hello world");
});

test("tools/call time_current_time", async () => {
  const r = await c.client.callTool({
    name: "time_current_time", arguments: { format: "YYYY-MM-DD", timezone: "UTC" },
  });
  assert.ok(!r.isError, `isError: ${textOf(r)}`);
  const year = new Date().getUTCFullYear();
  assert.match(textOf(r), new RegExp(`Current UTC time is (${year}|${year + 1})-\\d\\d-\\d\\d`));
});

test("tools/call everything_get-sum (numbers through the proxy)", async () => {
  const r = await c.client.callTool({ name: "everything_get-sum", arguments: { a: 2, b: 40 } });
  assert.match(textOf(r), /42/);
});

test("resources/list: URIs prefixed everything+", async () => {
  const { resources } = await c.client.listResources();
  assert.ok(resources.length > 0, "no resources");
  for (const r of resources) assert.ok(r.uri.startsWith("everything+"), `unprefixed URI ${r.uri}`);
  assert.ok(
    resources.some((r) => r.uri === "everything+demo://resource/static/document/architecture.md"),
    `architecture.md missing: ${names(resources, "uri")}`,
  );
});

test("resources/read of a prefixed URI", async () => {
  const uri = "everything+demo://resource/static/document/architecture.md";
  const r = await c.client.readResource({ uri });
  assert.ok(r.contents?.length, "no contents");
  assert.ok((r.contents[0].text ?? "").length > 0, "empty text");
  assert.equal(r.contents[0].uri, uri, "contents[].uri must carry the prefix back");
});

test("resources/templates/list: prefixed URI templates", async () => {
  const { resourceTemplates } = await c.client.listResourceTemplates();
  const t = names(resourceTemplates, "uriTemplate");
  assert.ok(t.includes("everything+demo://resource/dynamic/text/{resourceId}"), `templates: ${t}`);
});

test("prompts/list and prompts/get (prefixed)", async () => {
  const { prompts } = await c.client.listPrompts();
  const n = names(prompts);
  assert.ok(n.includes("everything_simple-prompt"), `prompts: ${n}`);
  for (const name of n) assert.match(name, /^everything_/);
  const p = await c.client.getPrompt({ name: "everything_simple-prompt" });
  assert.ok(p.messages?.length > 0, "no messages");
  const a = await c.client.getPrompt({ name: "everything_args-prompt", arguments: { city: "Paris" } });
  assert.match(J(a.messages), /Paris/);
});

test("ping is answered", async () => {
  const r = await c.client.ping();
  assert.deepEqual(r, {});
});

test("DELETE ends the session and its children are gone within 5 s", async () => {
  const session = c.transport.sessionId;
  assert.ok(descendants(mx.pid).length >= 2, "children vanished before DELETE");
  await c.terminate();
  await c.close();
  await waitFor(() => descendants(mx.pid).length === 0, {
    timeout: 5000, what: "stdio children to exit after DELETE",
  }).catch((e) => {
    throw new Error(`${e.message}; still running: ${describeProcs(descendants(mx.pid))}`);
  });
  const after = await rpc(mx.url, session, "tools/list", {});
  assert.equal(after.status, 404, "the deleted session must be unknown (404)");
});

test("two sessions have separate children; deleting one keeps the other", async () => {
  const s1 = await openSession(mx.url);
  const s2 = await openSession(mx.url);
  await waitFor(() => descendants(mx.pid).filter((p) => p.ppid === mx.pid).length >= 4, {
    timeout: 5000, what: "4 direct children (2 sessions x 2 targets)",
  });
  assertDeleted(await deleteSession(mx.url, s1.session));
  await waitFor(() => descendants(mx.pid).filter((p) => p.ppid === mx.pid).length === 2, {
    timeout: 5000, what: "2 children left after deleting one session",
  });
  const r = await rpc(mx.url, s2.session, "tools/call",
    { name: "everything_echo", arguments: { message: "still here" } });
  assert.equal(r.status, 200);
  assert.equal(textOf(r.json?.result), "Echo: still here");
  assertDeleted(await deleteSession(mx.url, s2.session));
  await waitFor(() => descendants(mx.pid).length === 0, { timeout: 5000, what: "no children" });
});

test("SIGTERM stops mcplex and the children of open sessions", async () => {
  await openSession(mx.url);
  const kids = await waitFor(() => {
    const k = descendants(mx.pid);
    return k.length >= 2 && k;
  }, { timeout: 5000, what: "children of the open session" });
  process.kill(mx.pid, "SIGTERM");
  const exit = await Promise.race([mx.exited, sleep(8000).then(() => null)]);
  assert.ok(exit, "mcplex did not exit within 8 s of SIGTERM");
  // Gone, or a zombie waiting for init: mcplex itself has exited, so reaping is not its job.
  await waitFor(() => {
    const table = processTable();
    return kids.every((k) => (table.get(k.pid)?.state ?? "Z") === "Z");
  }, { timeout: 5000, what: `children of the stopped mcplex to exit (${describeProcs(kids)})` });
  assert.equal(exit.code, 0, `exit status after SIGTERM: ${J(exit)}`);
  await stopProcess(mx);
});

// ---- part 2: the literal seed file (npx -y ..., resolved from tests/node_modules) ----------

let seed;

test("examples/seed.yaml runs as written (npx)", async () => {
  const port = await freePort();
  const text = readExample("seed.yaml").replace(/- port: 3000\b/, `- port: ${port}`);
  assert.ok(text.includes(`port: ${port}`), "seed.yaml has no `- port: 3000`");
  seed = await startMcplex(text, { port, flag: "-f", name: "mcplex-seed", file: "seed.yaml" });
  const s = await connectClient(seed.url);
  try {
    assert.equal(s.client.getServerVersion()?.name, "mcplex");
    const n = names((await s.client.listTools()).tools);
    assert.ok(n.includes("time_current_time") && n.includes("everything_echo"), `tools: ${n}`);
    const r = await s.client.callTool({ name: "everything_echo", arguments: { message: "via npx" } });
    assert.equal(textOf(r), "Echo: via npx");
    await s.terminate();
  } finally {
    await s.close();
  }
  await waitFor(() => descendants(seed.pid).length === 0, {
    timeout: 5000, what: "npx children (and their node grandchildren) to exit after DELETE",
  }).catch((e) => {
    throw new Error(`${e.message}; still running: ${describeProcs(descendants(seed.pid))}`);
  });
}, { timeout: 90000 });

test("CORS preflight on the seed file exposes Mcp-Session-Id", async () => {
  assert.ok(seed, "seed mcplex not running");
  const r = await http(seed.url, {
    method: "OPTIONS", accept: null,
    headers: {
      origin: "http://localhost:6274",
      "access-control-request-method": "POST",
      "access-control-request-headers": "content-type, mcp-protocol-version",
    },
  });
  assert.ok(r.status === 200 || r.status === 204, `preflight status ${r.status}`);
  const allow = r.headers.get("access-control-allow-origin");
  assert.ok(allow === "*" || allow === "http://localhost:6274", `allow-origin: ${allow}`);
  assert.match(r.headers.get("access-control-allow-methods") ?? "", /POST/i);
  // A real request carries the expose header, so browser JS can read the session id.
  const init = await http(seed.url, {
    headers: { origin: "http://localhost:6274" },
    body: { jsonrpc: "2.0", id: 1, method: "initialize", params: {
      protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: "cors", version: "0" } } },
  });
  assert.equal(init.status, 200);
  assert.match(init.headers.get("access-control-expose-headers") ?? "", /mcp-session-id/i);
  assert.ok(init.session);
  assertDeleted(await deleteSession(seed.url, init.session));
}, { timeout: 30000 });

await run({ timeout: 180000 });
