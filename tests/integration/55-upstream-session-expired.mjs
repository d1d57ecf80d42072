// 55-upstream-session-expired: a streamable-HTTP target forgets mcplex's upstream session (the
// fixture process is restarted on the same port, so the old Mcp-Session-Id gets 404, MCP
// 2025-11-25 "Session Management"): mcplex re-initializes that one target and retries once,
// and the client never notices: the call succeeds, served by the new process; the session's
// other target (stdio) is untouched; and it works again after a second restart.
import {
  assert, test, run, freePort, startMcplex, rpc, openSession, deleteSession, textOf, stopProcess,
} from "./lib/harness.mjs";
import { richConfig, richHttpTarget, richStdioTarget, startRichHttp } from "./lib/rich.mjs";

let mx;
let web;
let session;

const whoami = async (t) => {
  const r = await rpc(mx.url, session, "tools/call", { name: `${t}_whoami`, arguments: {} },
    { timeout: 20000 });
  assert.equal(r.status, 200, `HTTP ${r.status}`);
  assert.ok(r.json?.result && !r.json.result.isError, `${t}_whoami: ${r.text.slice(0, 300)}`);
  return JSON.parse(textOf(r.json.result));
};

test("setup", async () => {
  web = await startRichHttp("web");
  const port = await freePort();
  const targets = [richHttpTarget("web", web.url), richStdioTarget("local")];
  mx = await startMcplex(richConfig(port, targets), { port });
  ({ session } = await openSession(mx.url));
}, { timeout: 30000 });

for (const round of [1, 2]) {
  test(`restart ${round}: the expired upstream session is re-initialized transparently`, async () => {
    const before = await whoami("web");
    const local = await whoami("local");
    await stopProcess(web, { graceMs: 500 });
    web = await startRichHttp("web", { port: web.port });
    const after = await whoami("web");
    assert.notEqual(after.pid, before.pid, "served by the restarted process");
    assert.notEqual(after.session, before.session, "under a new upstream session");
    assert.equal((await whoami("local")).pid, local.pid, "the stdio target was not touched");
    const list = await rpc(mx.url, session, "tools/list", {});
    assert.ok(list.json?.result?.tools?.some((t) => t.name.startsWith("web_")), "web's tools are listed");
  }, { timeout: 60000 });
}

test("teardown", async () => {
  await deleteSession(mx.url, session);
});

await run({ timeout: 180000 });
