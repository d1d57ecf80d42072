// 34-sse-downstream: the legacy HTTP+SSE transport (MCP 2024-11-05) served at .../sse on the
// same listener as /mcp: the official SDK's SSEClientTransport opens the stream (event:
// endpoint), POSTs to the message URL (202) and gets its answers on the stream; closing the
// stream ends the session and its children.
import {
  assert, test, run, freePort, startMcplex, descendants, waitFor, sleep, J, tinyPairConfig,
} from "./lib/harness.mjs";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";

test("SDK SSEClientTransport against /sse", async () => {
  const port = await freePort();
  const mx = await startMcplex(tinyPairConfig(port, "legacy sse"), { port });
  const client = new Client({ name: "legacy", version: "1" }, { capabilities: {} });
  const transport = new SSEClientTransport(new URL(`http://127.0.0.1:${port}/sse`));
  await client.connect(transport);
  const tools = (await client.listTools()).tools.map((t) => t.name);
  assert.ok(tools.includes("a_whoami") && tools.includes("b_whoami"), `tools: ${tools}`);
  const r = await client.callTool({ name: "b_whoami", arguments: {} });
  assert.equal(r.content[0].text, "B");
  // An unknown session id on the message URL is 404.
  const bad = await fetch(`http://127.0.0.1:${port}/sse?sessionId=nope`, {
    method: "POST", headers: { "content-type": "application/json" },
    body: J({ jsonrpc: "2.0", id: 1, method: "ping" }) });
  assert.equal(bad.status, 404);
  assert.ok(descendants(mx.pid).length > 0, "targets running");
  await client.close(); // closes the stream: the session ends
  await waitFor(() => descendants(mx.pid).length === 0, { timeout: 8000, what: "children gone after the stream closed" });
});

await run();
