// 38-server-stream: the session's server stream (GET /mcp, MCP streamable HTTP): priming event
// with retry:, target notifications relayed with the logger prefixed by the target name,
// heartbeat comments (McpBackend.server_stream.heartbeat_interval), resumption of a dropped
// stream with Last-Event-ID (missed events replayed, no duplicates), and 405 where the backend
// turns the stream off.
import {
  assert, test, run, freePort, startMcplex, stdioPeer, rpc, openSession, deleteSession, sleep, J,
  PROTOCOL_VERSION, startEverythingHttp,
} from "./lib/harness.mjs";

const everything = stdioPeer("everything");
const tiny = stdioPeer("tiny");

const config = (port, serverStream) => `# server stream
binds:
- port: ${port}
  listeners:
  - routes:
    - backends:
      - mcp:
          serverStream: ${serverStream}
          targets:
          - name: everything
            stdio: {cmd: ${J(everything.cmd)}, args: ${J(everything.args)}}
          - name: tiny
            stdio: {cmd: ${J(tiny.cmd)}, args: ${J(tiny.args)}}
`;

// Opens GET <url> as an event stream; returns {status, events[], comments, close()} filled as
// bytes arrive.
async function openStream(url, session, lastEventId) {
  const ac = new AbortController();
  const headers = { accept: "text/event-stream", "mcp-session-id": session, "mcp-protocol-version": PROTOCOL_VERSION };
  if (lastEventId) headers["last-event-id"] = lastEventId;
  const res = await fetch(url, { headers, signal: ac.signal });
  const s = { status: res.status, events: [], comments: 0, close: () => ac.abort() };
  if (res.status !== 200) return s;
  (async () => {
    let buf = "";
    const dec = new TextDecoder();
    try {
      for await (const chunk of res.body) {
        buf += dec.decode(chunk, { stream: true });
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const ev = {};
          for (const line of block.split("\n")) {
            if (line.startsWith(":")) { s.comments++; continue; }
            const [k, ...rest] = line.split(":");
            const v = rest.join(":").replace(/^ /, "");
            if (k === "data") ev.data = (ev.data ?? "") + v;
            else if (k) ev[k] = v;
          }
          if (Object.keys(ev).length) s.events.push(ev);
        }
      }
    } catch { /* aborted */ }
  })();
  return s;
}

const messages = (s) => s.events.filter((e) => e.data).map((e) => ({ id: e.id, msg: JSON.parse(e.data) }));

test("priming, relayed logs, heartbeats, and Last-Event-ID replay", async () => {
  const port = await freePort();
  const mx = await startMcplex(config(port, "{heartbeatInterval: 0.2s}"), { port });
  const { session } = await openSession(mx.url);
  await rpc(mx.url, session, "logging/setLevel", { level: "debug" });
  const s1 = await openStream(mx.url, session);
  assert.equal(s1.status, 200);
  await sleep(300);
  assert.ok(s1.events[0]?.id && s1.events[0]?.retry, `priming event first: ${J(s1.events[0])}`);
  const on = await rpc(mx.url, session, "tools/call", { name: "everything_toggle-simulated-logging", arguments: {} });
  assert.ok(on.json?.result, on.text.slice(0, 200));
  // server-everything logs every 5 s; the first message rides on the toggle call's own stream.
  await sleep(11000);
  const got = messages(s1).filter((m) => m.msg.method === "notifications/message");
  assert.ok(got.length >= 2, `log notifications on the server stream: ${got.length}`);
  assert.ok(got.every((m) => m.msg.params.logger?.startsWith("everything")), J(got[0]));
  assert.ok(s1.comments >= 3, `heartbeat comments: ${s1.comments}`);
  // Drop the stream, then resume from an earlier event: the events after it come again, in order.
  s1.close();
  const from = got[0].id;
  const seen = got.slice(1).map((m) => m.id);
  await sleep(1000);
  const s2 = await openStream(mx.url, session, from);
  assert.equal(s2.status, 200);
  await sleep(600);
  const again = messages(s2).map((m) => m.id);
  for (const id of seen) assert.ok(again.includes(id), `replayed ${id}: ${again}`);
  assert.equal(new Set(again).size, again.length, "no duplicates");
  s2.close();
  await rpc(mx.url, session, "tools/call", { name: "everything_toggle-simulated-logging", arguments: {} });
  await deleteSession(mx.url, session);
}, { timeout: 60000 });

test("a streamable-HTTP target's own server stream is merged into the client's", async () => {
  const ev = await startEverythingHttp();
  const port = await freePort();
  const mx = await startMcplex(`# merged upstream stream
binds:
- port: ${port}
  listeners:
  - routes:
    - backends:
      - mcp:
          targets:
          - name: remote
            mcp: {host: ${J(ev.url)}}
          - name: tiny
            stdio: {cmd: ${J(tiny.cmd)}, args: ${J(tiny.args)}}
`, { port });
  const { session } = await openSession(mx.url);
  await rpc(mx.url, session, "logging/setLevel", { level: "debug" });
  const s = await openStream(mx.url, session);
  assert.equal(s.status, 200);
  await sleep(300);
  await rpc(mx.url, session, "tools/call", { name: "remote_toggle-simulated-logging", arguments: {} });
  await sleep(11000);
  const logs = messages(s).filter((m) => m.msg.method === "notifications/message");
  assert.ok(logs.length >= 1, `logs from the target's GET stream: ${logs.length}`);
  assert.ok(logs.every((m) => m.msg.params.logger?.startsWith("remote")), J(logs[0]));
  s.close();
  await rpc(mx.url, session, "tools/call", { name: "remote_toggle-simulated-logging", arguments: {} });
  await deleteSession(mx.url, session);
}, { timeout: 60000 });

test("a backend can turn the server stream off (405)", async () => {
  const port = await freePort();
  const mx = await startMcplex(config(port, "{disabled: true}"), { port });
  const { session } = await openSession(mx.url);
  const s = await openStream(mx.url, session);
  assert.equal(s.status, 405);
  await deleteSession(mx.url, session);
});

test("GET without a session is 400, with an unknown one 404", async () => {
  const port = await freePort();
  const mx = await startMcplex(config(port, "{}"), { port });
  const none = await fetch(mx.url, { headers: { accept: "text/event-stream" } });
  assert.equal(none.status, 400);
  const unknown = await openStream(mx.url, "nope");
  assert.equal(unknown.status, 404);
});

await run();
