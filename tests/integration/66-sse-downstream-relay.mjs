// 66-sse-downstream-relay: a legacy HTTP+SSE client (MCP 2024-11-05, the SDK's SSEClientTransport
// at /sse) gets everything a streamable-HTTP client gets, on its one stream, with two rich
// fixtures (stdio) behind mcplex: progress with its own token, logging messages of a call,
// sampling / elicitation / roots requests answered by POSTs to the message URL, and
// tools/list_changed from a target.
import { assert, test, run, freePort, startMcplex, textOf, waitFor } from "./lib/harness.mjs";
import { richConfig, richStdioTarget, connectRich } from "./lib/rich.mjs";

test("progress, logging, server requests and list_changed over /sse", async () => {
  const port = await freePort();
  await startMcplex(richConfig(port, [richStdioTarget("a"), richStdioTarget("b")]), { port });
  const c = await connectRich(`http://127.0.0.1:${port}/sse`, { tag: "legacy", sse: true });
  try {
    const seen = [];
    const p = await c.client.callTool({ name: "a_progress_steps", arguments: { steps: 3 } }, undefined,
      { onprogress: (x) => seen.push(x.progress) });
    assert.equal(textOf(p), "done 3");
    assert.deepEqual(seen, [1, 2, 3]);
    await c.client.setLoggingLevel("debug");
    await c.client.callTool({ name: "b_test_tool_with_logging", arguments: {} });
    await waitFor(() => c.notes.logs.length >= 3, { timeout: 3000, what: "three log messages" });
    const s = await c.client.callTool({ name: "b_test_sampling", arguments: { prompt: "old transport" } });
    assert.equal(textOf(s), "LLM response: sampled by legacy");
    const e = await c.client.callTool({ name: "a_test_elicitation", arguments: { message: "m" } });
    assert.match(textOf(e), /elicited by legacy/);
    const r = await c.client.callTool({ name: "a_test_roots", arguments: {} });
    assert.match(textOf(r), /file:\/\/\/roots\/legacy/);
    await c.client.callTool({ name: "a_change_tools", arguments: {} });
    await waitFor(() => c.notes.listChanged >= 1, { timeout: 3000, what: "tools/list_changed" });
  } finally {
    await c.close();
  }
}, { timeout: 45000 });

await run({ timeout: 90000 });
