// 51-target-killed: a target that dies mid-call, with rich fixtures behind mcplex:
//   - stdio: a_crash makes the child exit(1) while the call is in flight, and a concurrent a_sleep
//     is pending too: both get a JSON-RPC error with HTTP 200 (no HTTP 5xx, no hang); the session
//     keeps working with target b; the next call to a restarts the child (new pid) and works;
//     the dead child was reaped;
//   - streamable HTTP: the fixture process is killed during a call: JSON-RPC error, HTTP 200.
import {
  assert, test, run, freePort, startMcplex, rpc, openSession, deleteSession, descendants, textOf,
  stopProcess, sleep, J,
} from "./lib/harness.mjs";
import { richConfig, richStdioTarget, richHttpTarget, startRichHttp } from "./lib/rich.mjs";

let mx;
let session;

const whoami = async (url, sess, t) => {
  const r = await rpc(url, sess, "tools/call", { name: `${t}_whoami`, arguments: {} }, { timeout: 20000 });
  assert.equal(r.status, 200);
  assert.ok(r.json?.result && !r.json.result.isError, `${t}_whoami: ${r.text.slice(0, 300)}`);
  return JSON.parse(textOf(r.json.result));
};

test("setup", async () => {
  const port = await freePort();
  mx = await startMcplex(richConfig(port, [richStdioTarget("a"), richStdioTarget("b")]), { port });
  ({ session } = await openSession(mx.url));
});

test("stdio child exits mid-call: every pending call gets a JSON-RPC error, HTTP 200", async () => {
  const before = await whoami(mx.url, session, "a");
  const pending = rpc(mx.url, session, "tools/call", { name: "a_sleep", arguments: { ms: 20000 } },
    { timeout: 15000 });
  await sleep(300);
  const t0 = Date.now();
  const crash = await rpc(mx.url, session, "tools/call", { name: "a_crash", arguments: {} },
    { timeout: 15000 });
  assert.equal(crash.status, 200, `HTTP ${crash.status}`);
  assert.ok(crash.json?.error || crash.json?.result?.isError, `an error: ${crash.text.slice(0, 300)}`);
  const slept = await pending;
  assert.equal(slept.status, 200);
  assert.ok(slept.json?.error || slept.json?.result?.isError,
    `the pending call failed too: ${slept.text.slice(0, 300)}`);
  assert.ok(Date.now() - t0 < 10000, "errors come when the child exits, not at a timeout");
  await sleep(300);
  assert.ok(!descendants(mx.pid).some((p) => p.pid === before.pid),
    `the dead child ${before.pid} was reaped`);
}, { timeout: 40000 });

test("the session still works with the other target", async () => {
  assert.equal((await whoami(mx.url, session, "b")).name, "b");
}, { timeout: 30000 });

test("the killed stdio target is restarted on next use", async () => {
  const me = await whoami(mx.url, session, "a");
  assert.equal(me.name, "a");
  assert.ok(descendants(mx.pid).some((p) => p.pid === me.pid), "a new child of mcplex");
  const list = await rpc(mx.url, session, "tools/list", {});
  assert.ok(list.json?.result?.tools?.some((t) => t.name.startsWith("a_")), "a's tools are listed again");
}, { timeout: 30000 });

test("teardown stdio", async () => {
  await deleteSession(mx.url, session);
});

test("streamable-HTTP target killed mid-call: JSON-RPC error, HTTP 200, other target fine", async () => {
  const web = await startRichHttp("web");
  const port = await freePort();
  const mx2 = await startMcplex(richConfig(port, [richHttpTarget("web", web.url), richStdioTarget("b")]),
    { port, name: "mcplex-http" });
  const s = await openSession(mx2.url);
  const pending = rpc(mx2.url, s.session, "tools/call", { name: "web_sleep", arguments: { ms: 20000 } },
    { timeout: 15000 });
  await sleep(500);
  await stopProcess(web, { graceMs: 0 });
  const r = await pending;
  assert.equal(r.status, 200, `HTTP ${r.status}: ${r.text.slice(0, 200)}`);
  assert.ok(r.json?.error || r.json?.result?.isError, J(r.json));
  const down = await rpc(mx2.url, s.session, "tools/call", { name: "web_whoami", arguments: {} },
    { timeout: 15000 });
  assert.equal(down.status, 200, `a call to the dead HTTP target: HTTP ${down.status}`);
  assert.ok(down.json?.error || down.json?.result?.isError, J(down.json));
  assert.equal((await whoami(mx2.url, s.session, "b")).name, "b");
  await deleteSession(mx2.url, s.session);
}, { timeout: 60000 });

await run({ timeout: 180000 });
