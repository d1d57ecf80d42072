// 37-tool-curation: the configurable serverInfo, and per-target tool curation (McpTarget.tools / the local file's targets[].tools):
// allow and deny lists by name or glob, a rename and a description override. Hidden tools are
// neither listed nor callable; a renamed tool answers to its new name only.
import {
  assert, test, run, freePort, startMcplex, connectClient, names, textOf, stdioPeer, rpc, J,
} from "./lib/harness.mjs";

const tiny = stdioPeer("tiny");
const everything = stdioPeer("everything");

test("allow, deny, rename and describe tools per target", async () => {
  const port = await freePort();
  const mx = await startMcplex(`# tool curation
binds:
- port: ${port}
  listeners:
  - routes:
    - backends:
      - mcp:
          serverInfo: {name: acme-gateway, version: 2.0.0, title: Acme tools}
          targets:
          - name: tiny
            stdio: {cmd: ${J(tiny.cmd)}, args: ${J(tiny.args)}, env: {NAME: T}}
            tools:
              deny: [add]
              overrides:
                whoami: {name: identity, description: "Tells which server answers"}
          - name: everything
            stdio: {cmd: ${J(everything.cmd)}, args: ${J(everything.args)}}
            tools:
              allow: [echo, "get-*"]
              deny: [get-env]
`, { port });
  const c = await connectClient(mx.url);
  const info = c.client.getServerVersion();
  assert.equal(info.name, "acme-gateway");
  assert.equal(info.version, "2.0.0");
  assert.equal(info.title, "Acme tools");
  const tools = (await c.client.listTools()).tools;
  const n = names(tools);
  assert.ok(n.includes("tiny_identity"), `renamed tool listed: ${n}`);
  assert.ok(!n.includes("tiny_whoami") && !n.includes("tiny_add"), `hidden tools not listed: ${n}`);
  assert.equal(tools.find((t) => t.name === "tiny_identity").description, "Tells which server answers");
  assert.ok(n.includes("everything_echo") && n.includes("everything_get-sum"), `allowed: ${n}`);
  assert.ok(!n.includes("everything_get-env"), "denied after allow");
  assert.ok(!n.some((x) => x.startsWith("everything_trigger")), "not in the allow list");
  assert.equal(textOf(await c.client.callTool({ name: "tiny_identity", arguments: {} })), "T");
  for (const hidden of ["tiny_whoami", "tiny_add", "everything_get-env", "everything_trigger-long-running-operation"]) {
    const r = await rpc(mx.url, c.sessionId, "tools/call", { name: hidden, arguments: {} });
    assert.equal(r.status, 200);
    assert.equal(r.json?.error?.code, -32602, `${hidden}: ${r.text.slice(0, 160)}`);
  }
  await c.terminate();
  await c.close();
});

await run();
