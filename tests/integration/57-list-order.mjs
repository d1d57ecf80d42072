// 57-list-order: tools/list over two targets, followed page by page, lists the tools in target
// order, then each target's own order (research/mcp-protocol.md 5.3: "Keep target order, then the
// upstream order"; MCP 2026-07-28 asks for a deterministic tools/list order), with two rich
// fixtures (stdio, 10 tools per page) behind mcplex.
import {
  assert, test, run, freePort, startMcplex, rpc, openSession, deleteSession,
} from "./lib/harness.mjs";
import { richConfig, richStdioTarget, startRichHttp } from "./lib/rich.mjs";

test("pages follow target order, then each target's order", async () => {
  const ref = await startRichHttp("ref", { args: ["--page-size", "0"] });
  const { session: rs } = await openSession(ref.url);
  const names = (await rpc(ref.url, rs, "tools/list", {})).json.result.tools.map((t) => t.name);
  const port = await freePort();
  const mx = await startMcplex(richConfig(port, [richStdioTarget("a"), richStdioTarget("b")]), { port });
  const { session } = await openSession(mx.url);
  const items = [];
  let cursor;
  do {
    const r = await rpc(mx.url, session, "tools/list", cursor === undefined ? {} : { cursor });
    items.push(...r.json.result.tools.map((t) => t.name));
    cursor = r.json.result.nextCursor;
  } while (cursor !== undefined && items.length < 500);
  const want = [...names.map((n) => `a_${n}`), ...names.map((n) => `b_${n}`)];
  assert.deepEqual(items, want, `got ${items.map((n, i) => `${i}:${n}`).join(" ")}`);
  await deleteSession(mx.url, session);
}, { timeout: 30000 });

await run({ timeout: 60000 });
