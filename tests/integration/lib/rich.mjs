// rich.mjs: helpers for tests that put tests/fixtures/rich-server.mjs behind mcplex. Runs in the
// test's node process; every process it starts is tracked by the harness (killed at the end).
//   RICH                     the fixture's path
//   richStdioTarget(...)     a target entry (agentgateway-style YAML) running the fixture on stdio
//   richHttpTarget(...)      a target entry for a fixture listening on streamable HTTP
//   startRichHttp(...)       starts the fixture with --http on a free (or given) loopback port
//   richConfig(port, ...)    an agentgateway-style file: one backend with the given targets
//   connectRich(url, ...)    the SDK client with sampling, elicitation and roots capabilities
//   openStream(url, ...)     GET /mcp as a raw SSE reader
import path from "node:path";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";
import {
  CreateMessageRequestSchema, ElicitRequestSchema, ListRootsRequestSchema,
  LoggingMessageNotificationSchema, ToolListChangedNotificationSchema, ResourceUpdatedNotificationSchema,
} from "@modelcontextprotocol/sdk/types.js";
import {
  TESTS_DIR, NODE, J, freePort, spawnTracked, waitForPort, withTimeout, PROTOCOL_VERSION,
} from "./harness.mjs";

export const RICH = path.join(TESTS_DIR, "fixtures", "rich-server.mjs");

// A `targets:` list entry (10-space indent) running the fixture over stdio as |name|.
export function richStdioTarget(name, { args = [], env = {}, timeout } = {}) {
  const e = { NAME: name, ...env };
  return `          - name: ${name}\n` +
    `            stdio: {cmd: ${J(NODE)}, args: ${J([RICH, ...args])}, env: ${J(e)}}` +
    (timeout ? `\n            timeout: ${timeout}` : "");
}

// A `targets:` list entry for a fixture listening at |url| (streamable HTTP).
export function richHttpTarget(name, url, { timeout } = {}) {
  return `          - name: ${name}\n            mcp: {host: ${J(url)}}` +
    (timeout ? `\n            timeout: ${timeout}` : "");
}

// Starts the fixture on streamable HTTP; resolves the tracked handle plus {port, url}.
export async function startRichHttp(name, { port, args = [] } = {}) {
  const p = port ?? (await freePort());
  const h = spawnTracked(`rich-${name}`, NODE, [RICH, "--http", String(p), "--name", name, ...args]);
  await waitForPort(p, { h, timeout: 20000 });
  return Object.assign(h, { port: p, url: `http://127.0.0.1:${p}/mcp` });
}

// agentgateway-style file: one listener on |port|, one backend with |targets| (entries from
// richStdioTarget/richHttpTarget) and the extra `mcp:` keys in |mcp| (YAML lines, 10 spaces).
export function richConfig(port, targets, { mcp = [] } = {}) {
  return `# rich fixture behind mcplex
binds:
- port: ${port}
  listeners:
  - routes:
    - backends:
      - mcp:
${mcp.map((l) => `          ${l}\n`).join("")}          targets:
${targets.join("\n")}
`;
}

// Connects the SDK client with sampling, elicitation and roots capabilities. Each handler
// records what it was asked in |seen| and answers with |tag| in the text, so a test can tell
// which session answered. Resolves {client, transport, seen, notes, close()}; |notes| collects
// logging, tools/list_changed and resources/updated notifications. |sse|: the legacy HTTP+SSE
// transport (SSEClientTransport; |url| is then the /sse URL) instead of streamable HTTP.
export async function connectRich(url, { tag = "client", timeout = 20000, sse = false } = {}) {
  const client = new Client({ name: `rich-test-${tag}`, version: "0" },
    { capabilities: { sampling: {}, elicitation: { form: {} }, roots: { listChanged: true } } });
  const seen = { sampling: [], elicitation: [], roots: 0 };
  const notes = { logs: [], listChanged: 0, updated: [] };
  client.onerror = () => {};
  client.setRequestHandler(CreateMessageRequestSchema, async (req) => {
    seen.sampling.push(req.params);
    return { model: "test-model", role: "assistant", content: { type: "text", text: `sampled by ${tag}` } };
  });
  client.setRequestHandler(ElicitRequestSchema, async (req) => {
    seen.elicitation.push(req.params);
    return { action: "accept", content: { response: `elicited by ${tag}` } };
  });
  client.setRequestHandler(ListRootsRequestSchema, async () => {
    seen.roots++;
    return { roots: [{ uri: `file:///roots/${tag}`, name: tag }] };
  });
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => notes.logs.push(n.params));
  client.setNotificationHandler(ToolListChangedNotificationSchema, () => notes.listChanged++);
  client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => notes.updated.push(n.params.uri));
  const transport = sse ? new SSEClientTransport(new URL(url))
    : new StreamableHTTPClientTransport(new URL(url));
  await withTimeout(client.connect(transport), timeout, `connect to ${url}`);
  return {
    client, transport, seen, notes,
    close: async () => {
      if (!sse) await withTimeout(transport.terminateSession(), 5000, "DELETE").catch(() => {});
      await withTimeout(client.close(), 5000, "close").catch(() => {});
    },
  };
}

// Opens GET |url| as an event stream for |session|. Resolves {status, events[], messages(),
// comments, ended, close()}; events ({id, event, retry, data}) fill in as bytes arrive.
export async function openStream(url, session, { lastEventId, protocolVersion = PROTOCOL_VERSION } = {}) {
  const ac = new AbortController();
  const headers = {
    accept: "text/event-stream", "mcp-session-id": session, "mcp-protocol-version": protocolVersion,
  };
  if (lastEventId) headers["last-event-id"] = lastEventId;
  const res = await fetch(url, { headers, signal: ac.signal });
  const s = {
    status: res.status, events: [], comments: 0, ended: false, close: () => ac.abort(),
    messages: () => s.events.filter((e) => e.data).map((e) => ({ id: e.id, msg: JSON.parse(e.data) })),
  };
  if (res.status !== 200) {
    await res.text().catch(() => {});
    return s;
  }
  (async () => {
    let buf = "";
    const dec = new TextDecoder();
    try {
      for await (const chunk of res.body) {
        buf += dec.decode(chunk, { stream: true }).replace(/\r\n/g, "\n");
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const ev = {};
          for (const line of block.split("\n")) {
            if (line.startsWith(":")) {
              s.comments++;
              continue;
            }
            const k = line.includes(":") ? line.slice(0, line.indexOf(":")) : line;
            const v = line.includes(":") ? line.slice(line.indexOf(":") + 1).replace(/^ /, "") : "";
            if (k === "data") ev.data = ev.data === undefined ? v : `${ev.data}\n${v}`;
            else if (k) ev[k] = v;
          }
          if (Object.keys(ev).length) s.events.push(ev);
        }
      }
    } catch {
      /* aborted */
    }
    s.ended = true;
  })();
  return s;
}
