// 62-restart-list-changed: when a target goes away and comes back, the client is told its lists
// changed (research/mcp-protocol.md 5.5: "Also emit them when a target connects, disconnects or
// restarts"), with two rich fixtures (stdio) behind mcplex and the client's server stream open:
//   - the child of target a exits (a_crash): tools/list_changed arrives on the server stream
//     (its tools are gone) or, at the latest, once a is restarted on next use (they are back);
//   - after the restart, tools/list shows a's tools again, and the stdio child's stderr lines
//     are in mcplex's log under the target's name.
import {
  assert, test, run, freePort, startMcplex, rpc, openSession, deleteSession, sleep, waitFor, textOf,
} from "./lib/harness.mjs";
import fs from "node:fs";
import { richConfig, richStdioTarget, openStream } from "./lib/rich.mjs";

test("a target that crashes and is restarted triggers tools/list_changed", async () => {
  const port = await freePort();
  const mx = await startMcplex(richConfig(port, [richStdioTarget("a"), richStdioTarget("b")]), { port });
  const { session } = await openSession(mx.url);
  const s = await openStream(mx.url, session);
  assert.equal(s.status, 200);
  await sleep(300);
  const changed = () =>
    s.messages().filter((m) => m.msg.method === "notifications/tools/list_changed").length;
  const crash = await rpc(mx.url, session, "tools/call", { name: "a_crash", arguments: {} },
    { timeout: 15000 });
  assert.ok(crash.json?.error || crash.json?.result?.isError, crash.text.slice(0, 300));
  await sleep(1000);
  const afterCrash = changed();
  const who = await rpc(mx.url, session, "tools/call", { name: "a_whoami", arguments: {} },
    { timeout: 20000 });
  assert.equal(JSON.parse(textOf(who.json?.result) || "{}").name, "a", who.text.slice(0, 300));
  await waitFor(() => changed() >= 1,
    { timeout: 4000, what: `list_changed (after the crash: ${afterCrash})` });
  const list = await rpc(mx.url, session, "tools/list", {});
  assert.ok(list.json?.result?.tools?.some((t) => t.name.startsWith("a_")), "a's tools are back");
  s.close();
  await deleteSession(mx.url, session);
  // The fixture's stack trace (or any stderr line) of the crash is logged under [target:a].
  const logText = fs.readFileSync(mx.logFile, "utf8");
  assert.match(logText, /\[target:a\]/, "stderr or lifecycle lines carry the target name");
}, { timeout: 60000 });

await run({ timeout: 90000 });
