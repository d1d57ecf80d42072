// 33-shared-stdio: Stdio.shared (`shared: true`): one child serves every session of the target,
// instead of one per session. Sessions never see each other's traffic: ids are rewritten per
// call, and two sessions using the same progress token each get only their own progress. A
// child that dies fails the calls in flight and is started again on the next call; the last
// session out stops it.
import {
  assert, test, run, freePort, startMcplex, stdioPeer, descendants, waitFor, sleep, J,
} from "./lib/harness.mjs";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const everything = stdioPeer("everything");
const tiny = stdioPeer("tiny");
const isEverything = (p) => p.cmd.includes("server-everything");
const isTiny = (p) => p.cmd.includes("tiny-server");

async function connect(url) {
  const client = new Client({ name: "shared-test", version: "1" }, { capabilities: {} });
  const transport = new StreamableHTTPClientTransport(new URL(url));
  await client.connect(transport);
  return { client, transport };
}

test("one child for many sessions, isolated traffic, restart, stop with the last session", async () => {
  const port = await freePort();
  const mx = await startMcplex(`# shared stdio
binds:
- port: ${port}
  listeners:
  - routes:
    - backends:
      - mcp:
          targets:
          - name: ev
            stdio: {cmd: ${J(everything.cmd)}, args: ${J(everything.args)}, shared: true}
          - name: tiny
            stdio: {cmd: ${J(tiny.cmd)}, args: ${J(tiny.args)}}
`, { port, args: ["--concurrency", "1"] }); // shared children are per worker: one worker here
  const sessions = [];
  for (let i = 0; i < 3; i++) sessions.push(await connect(mx.url));
  const procs = descendants(mx.pid);
  assert.equal(procs.filter(isEverything).filter((p) => p.comm === "node").length, 1,
    `one shared child: ${procs.map((p) => p.cmd).join(" | ")}`);
  assert.equal(procs.filter(isTiny).length, 3, "one private child per session for the other target");

  // Concurrent calls with the same progress token: each session gets its own answer and progress.
  const progress = [0, 0, 0];
  const results = await Promise.all(sessions.map((s, i) => s.client.callTool(
    { name: "ev_trigger-long-running-operation", arguments: { duration: 1, steps: 2 + i } },
    undefined, { onprogress: () => progress[i]++ })));
  results.forEach((r, i) => assert.match(JSON.stringify(r.content), new RegExp(`Steps: ${2 + i}`)));
  assert.deepEqual(progress, [2, 3, 4], `each session saw exactly its own progress: ${progress}`);
  const echoes = await Promise.all(sessions.map((s, i) =>
    s.client.callTool({ name: "ev_echo", arguments: { message: `from ${i}` } })));
  echoes.forEach((r, i) => assert.equal(r.content[0].text, `Echo: from ${i}`));

  // Kill the shared child: calls fail, then the next one restarts it.
  const child = descendants(mx.pid).filter(isEverything).find((p) => p.comm === "node");
  process.kill(child.pid, "SIGKILL");
  await sleep(500);
  let restarted = null;
  for (let attempt = 0; attempt < 10 && restarted === null; attempt++) {
    try {
      restarted = await sessions[1].client.callTool({ name: "ev_echo", arguments: { message: "again" } });
    } catch { await sleep(500); }
  }
  assert.ok(restarted !== null, "the shared child came back");
  assert.equal(restarted.content[0].text, "Echo: again");
  const after = await sessions[2].client.callTool({ name: "ev_echo", arguments: { message: "too" } });
  assert.equal(after.content[0].text, "Echo: too");

  for (const s of sessions) {
    await s.transport.terminateSession();
    await s.client.close();
  }
  await waitFor(() => descendants(mx.pid).length === 0, { timeout: 8000, what: "the shared child stopped" });
}, { timeout: 90000 });

await run();
