// 39-relay: what crosses mcplex besides plain answers, with the official SDK client against
// server-everything (stdio) and a second target so names are prefixed:
//   progress notifications of a tools/call reach the caller (on the POST's stream, with its own
//   progress token); sampling, elicitation and roots requests from the target reach the client
//   and its answers return to the target; lists page with opaque cursors and a forged cursor
//   is -32602; logging/setLevel reaches the targets.
import {
  assert, test, run, freePort, startMcplex, stdioPeer, J,
} from "./lib/harness.mjs";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import {
  CreateMessageRequestSchema, ElicitRequestSchema, ListRootsRequestSchema,
} from "@modelcontextprotocol/sdk/types.js";

const everything = stdioPeer("everything");
const tiny = stdioPeer("tiny");

test("progress, sampling, elicitation, roots and cursors through mcplex", async () => {
  const port = await freePort();
  const mx = await startMcplex(`# relay
binds:
- port: ${port}
  listeners:
  - routes:
    - backends:
      - mcp:
          targets:
          - name: everything
            stdio: {cmd: ${J(everything.cmd)}, args: ${J(everything.args)}}
          - name: tiny
            stdio: {cmd: ${J(tiny.cmd)}, args: ${J(tiny.args)}}
`, { port });
  const client = new Client({ name: "relay-test", version: "1" },
    { capabilities: { sampling: {}, elicitation: {}, roots: { listChanged: true } } });
  const asked = { sampling: 0, elicitation: 0, roots: 0 };
  client.setRequestHandler(CreateMessageRequestSchema, async () => {
    asked.sampling++;
    return { model: "test-model", role: "assistant", content: { type: "text", text: "sampled by the client" } };
  });
  client.setRequestHandler(ElicitRequestSchema, async () => {
    asked.elicitation++;
    return { action: "accept", content: { color: "blue" } };
  });
  client.setRequestHandler(ListRootsRequestSchema, async () => {
    asked.roots++;
    return { roots: [{ uri: "file:///relay-test-root", name: "relay-root" }] };
  });
  const transport = new StreamableHTTPClientTransport(new URL(mx.url));
  await client.connect(transport);
  try {
    let progress = 0;
    const op = await client.callTool({ name: "everything_trigger-long-running-operation",
      arguments: { duration: 1, steps: 3 } }, undefined, { onprogress: () => progress++ });
    assert.match(JSON.stringify(op.content), /completed/i);
    assert.equal(progress, 3, "every progress notification reached the caller");

    const sampled = await client.callTool({ name: "everything_trigger-sampling-request",
      arguments: { prompt: "hello", maxTokens: 5 } });
    assert.match(JSON.stringify(sampled.content), /sampled by the client/);
    const elicited = await client.callTool({ name: "everything_trigger-elicitation-request", arguments: {} });
    assert.match(JSON.stringify(elicited.content), /blue/);
    const roots = await client.callTool({ name: "everything_get-roots-list", arguments: {} });
    assert.match(JSON.stringify(roots.content), /relay-test-root/);
    assert.ok(asked.sampling >= 1 && asked.elicitation >= 1 && asked.roots >= 1, J(asked));

    // Cursors: follow every nextCursor; each resource appears once; a forged cursor is -32602.
    const uris = [];
    let page = await client.listResources();
    uris.push(...page.resources.map((r) => r.uri));
    while (page.nextCursor) {
      page = await client.listResources({ cursor: page.nextCursor });
      uris.push(...page.resources.map((r) => r.uri));
    }
    assert.ok(uris.length > 0 && new Set(uris).size === uris.length, `resources: ${uris.length}`);
    await assert.rejects(client.listResources({ cursor: "AXNvbWV0aGluZy1mb3JnZWQ" }), /-32602|Invalid cursor/);
    await client.setLoggingLevel("warning");
  } finally {
    await transport.terminateSession().catch(() => {});
    await client.close();
  }
}, { timeout: 60000 });

await run();
