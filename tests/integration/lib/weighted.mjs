// weighted.mjs: drives many short MCP sessions over raw HTTP to measure how mcplex spreads new
// sessions over weighted backends. Each session: initialize, notifications/initialized,
// tools/list (the tool prefix tells which backend the session landed on), tools/call of that
// backend's whoami (a later request must stay on the same backend), DELETE.
import { assert, openSession, rpc, deleteSession, assertDeleted, textOf } from "./harness.mjs";

// Runs |total| sessions, |concurrency| at a time. |backends| maps a tool-name prefix (e.g.
// "a_") to the NAME its whoami returns. Resolves {counts: {prefix: n}, ms}.
export async function spreadSessions(url, { total, concurrency = 4, backends }) {
  const counts = Object.fromEntries(Object.keys(backends).map((p) => [p, 0]));
  const started = Date.now();
  let next = 0;
  async function worker() {
    while (next < total) {
      const i = next++;
      const { session } = await openSession(url);
      const list = await rpc(url, session, "tools/list", {});
      assert.equal(list.status, 200, `session ${i} tools/list: HTTP ${list.status}`);
      const tools = (list.json?.result?.tools ?? []).map((t) => t.name);
      const prefix = Object.keys(backends).find((p) => tools.some((t) => t.startsWith(p)));
      assert.ok(prefix, `session ${i}: tools ${tools} match no backend`);
      for (const t of tools) assert.ok(t.startsWith(prefix), `session ${i} mixes backends: ${tools}`);
      const call = await rpc(url, session, "tools/call", { name: `${prefix}whoami`, arguments: {} });
      assert.equal(textOf(call.json?.result), backends[prefix],
        `session ${i}: ${prefix}whoami answered by another backend: ${call.text.slice(0, 200)}`);
      assertDeleted(await deleteSession(url, session));
      counts[prefix]++;
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { counts, ms: Date.now() - started };
}

// Asserts that |count| of |total| is within |tolerance| (absolute fraction) of |weight|%.
export function assertShare(count, total, weight, tolerance = 0.07) {
  const share = count / total;
  assert.ok(Math.abs(share - weight / 100) <= tolerance,
    `share ${(share * 100).toFixed(1)}% (${count}/${total}) is not within ` +
    `${tolerance * 100}% of the weight ${weight}%`);
}
