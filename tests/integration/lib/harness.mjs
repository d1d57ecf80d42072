// harness.mjs: the integration-test harness. Each tests/integration/NN-name.mjs registers
// tests with test(), then awaits run(): tests run one after another, each line says ok/not ok,
// the file ends with "N passed, M failed" and exits non-zero on any failure. Everything the
// harness starts (mcplex, real MCP peers) runs in its own process group and is killed at the
// end, on a failure and on the per-file timeout, so a test never hangs and never leaks.
//
// Environment (set by ctest, see CMakeLists.txt):
//   MCPLEX_BIN           the mcplex binary (default: <source>/build/mcplex)
//   MCPLEX_SOURCE_DIR    the repository root (default: two levels above this file)
//   MCPLEX_TEST_LOG_LEVEL  --log-level passed to mcplex (default debug)
// Logs and configs of each run are kept in tests/artifacts/<test-file>/ (gitignored).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

export { assert };

// ---- paths -----------------------------------------------------------------------------------

const LIB_DIR = path.dirname(fileURLToPath(import.meta.url));
export const TESTS_DIR = path.resolve(LIB_DIR, "../..");
export const SOURCE_DIR = process.env.MCPLEX_SOURCE_DIR ?? path.resolve(TESTS_DIR, "..");
export const MCPLEX_BIN = process.env.MCPLEX_BIN
  ? path.resolve(process.env.MCPLEX_BIN)
  : path.join(SOURCE_DIR, "build", "mcplex");
export const EXAMPLES_DIR = path.join(SOURCE_DIR, "examples");
export const NODE = process.execPath;
const NODE_MODULES = path.join(TESTS_DIR, "node_modules");

// The bin entry of an installed npm package (from its package.json), as an absolute path.
function packageBin(pkg, bin) {
  const dir = path.join(NODE_MODULES, pkg);
  const json = JSON.parse(fs.readFileSync(path.join(dir, "package.json"), "utf8"));
  const rel = typeof json.bin === "string" ? json.bin : json.bin[bin ?? Object.keys(json.bin)[0]];
  return path.join(dir, rel);
}

// Entry points of the real MCP servers the tests run (never through npx, for speed).
export const PEERS = {
  everything: packageBin("@modelcontextprotocol/server-everything"),
  memory: packageBin("@modelcontextprotocol/server-memory"),
  time: packageBin("time-mcp"),
  tiny: path.join(TESTS_DIR, "fixtures", "tiny-server.mjs"),
  shim: path.join(LIB_DIR, "loopback-shim.cjs"),
};

export const TEST_NAME = path.basename(process.argv[1] ?? "adhoc", ".mjs");
export const ARTIFACTS = path.join(TESTS_DIR, "artifacts", TEST_NAME);
fs.rmSync(ARTIFACTS, { recursive: true, force: true });
fs.mkdirSync(ARTIFACTS, { recursive: true });
export const TMP = fs.mkdtempSync(path.join(os.tmpdir(), `mcplex-${TEST_NAME}-`));

// ---- small utilities -------------------------------------------------------------------------

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const J = JSON.stringify; // JSON is valid YAML flow style: safe quoting inside configs

export function log(...a) {
  process.stdout.write(`# ${a.join(" ")}\n`);
}

// Rejects with a clear message if |promise| does not settle within |ms|.
export async function withTimeout(promise, ms, what) {
  let timer;
  const t = new Promise((_, rej) => {
    timer = setTimeout(() => rej(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, t]);
  } finally {
    clearTimeout(timer);
  }
}

// Polls |fn| (sync or async) until it returns a truthy value, which is returned.
export async function waitFor(fn, { timeout = 5000, interval = 50, what = "condition" } = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) {
      const detail = last instanceof Error ? `: ${last.message}` : "";
      throw new Error(`timed out after ${timeout} ms waiting for ${what}${detail}`);
    }
    await sleep(interval);
  }
}

// A port that was free a moment ago on 127.0.0.1.
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// Resolves true if 127.0.0.1:|port| accepts a TCP connection.
export function portAccepts(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port });
    const done = (ok) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(500, () => done(false));
    s.once("connect", () => done(true));
    s.once("error", () => done(false));
  });
}

// Writes a config file into the temp dir (and a copy into the artifacts dir); returns its path.
export function writeConfig(name, text) {
  const file = path.join(TMP, name);
  fs.writeFileSync(file, text);
  fs.writeFileSync(path.join(ARTIFACTS, name), text);
  return file;
}

export function readExample(name) {
  return fs.readFileSync(path.join(EXAMPLES_DIR, name), "utf8");
}

export function tail(file, lines = 30) {
  try {
    return fs.readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

// ---- processes -------------------------------------------------------------------------------

const tracked = []; // every process the harness started, in start order
const counters = new Map();

// The process table from /proc: pid -> {pid, ppid, pgid, state, comm}.
export function processTable() {
  const table = new Map();
  for (const ent of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(ent)) continue;
    let stat;
    try {
      stat = fs.readFileSync(`/proc/${ent}/stat`, "utf8");
    } catch {
      continue; // exited meanwhile
    }
    // "pid (comm) state ppid pgrp ..." where comm may itself contain spaces and parens.
    const close = stat.lastIndexOf(")");
    const f = stat.slice(close + 2).split(" ");
    table.set(Number(ent), {
      pid: Number(ent),
      comm: stat.slice(stat.indexOf("(") + 1, close),
      state: f[0],
      ppid: Number(f[1]),
      pgid: Number(f[2]),
    });
  }
  return table;
}

function cmdline(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").trim();
  } catch {
    return "";
  }
}

// Live descendants of |pid| (children, grandchildren, ...), zombies included: a child that
// exited but was never reaped still counts, because mcplex must reap its children.
export function descendants(pid) {
  const table = processTable();
  const kids = new Map();
  for (const p of table.values()) {
    if (!kids.has(p.ppid)) kids.set(p.ppid, []);
    kids.get(p.ppid).push(p);
  }
  const out = [];
  const queue = [pid];
  while (queue.length) {
    for (const c of kids.get(queue.shift()) ?? []) {
      out.push({ ...c, cmd: cmdline(c.pid) || `[${c.comm}]` });
      queue.push(c.pid);
    }
  }
  return out;
}

export function describeProcs(list) {
  return list.map((p) => `${p.pid}(${p.state}) ${p.cmd.slice(0, 120)}`).join("; ") || "none";
}

function signalGroup(pid, sig) {
  try {
    process.kill(-pid, sig);
  } catch {
    /* group already gone */
  }
}

function signalPid(pid, sig) {
  try {
    process.kill(pid, sig);
  } catch {
    /* already gone */
  }
}

// Starts a process in its own process group with stdout+stderr going to
// artifacts/<name>-<n>.log. Returns a handle: {name, pid, proc, logFile, exited (promise of
// {code, signal}), exitInfo (once exited)}.
export function spawnTracked(name, cmd, args, { env = {}, cwd = TESTS_DIR, stdin = "ignore" } = {}) {
  const n = (counters.get(name) ?? 0) + 1;
  counters.set(name, n);
  const logFile = path.join(ARTIFACTS, `${name}-${n}.log`);
  const fd = fs.openSync(logFile, "a");
  fs.writeSync(fd, `# ${cmd} ${args.join(" ")}\n`);
  const proc = spawn(cmd, args, {
    cwd,
    env: { ...process.env, ...env },
    stdio: [stdin, fd, fd],
    detached: true,
  });
  fs.closeSync(fd);
  const h = { name, pid: proc.pid, proc, logFile, exitInfo: null, stopped: false };
  h.exited = new Promise((resolve) => {
    proc.once("exit", (code, signal) => {
      h.exitInfo = { code, signal };
      resolve(h.exitInfo);
    });
    proc.once("error", (err) => {
      h.exitInfo = { code: null, signal: null, error: err };
      resolve(h.exitInfo);
    });
  });
  tracked.push(h);
  return h;
}

// Stops a tracked process and everything under it: SIGTERM to its group, a grace period,
// then SIGKILL to the group and to every descendant seen before (they may have left the group).
export async function stopProcess(h, { graceMs = 3000 } = {}) {
  if (h.stopped) return h.exitInfo;
  h.stopped = true;
  const desc = h.pid ? descendants(h.pid).map((p) => p.pid) : [];
  if (h.pid && !h.exitInfo) signalGroup(h.pid, "SIGTERM");
  await Promise.race([h.exited, sleep(graceMs)]);
  if (h.pid) signalGroup(h.pid, "SIGKILL");
  for (const d of desc) signalPid(d, "SIGKILL");
  await Promise.race([h.exited, sleep(2000)]);
  return h.exitInfo;
}

// Last resort on exit: SIGKILL everything still tracked (synchronous).
function killAllNow() {
  for (const h of tracked) {
    if (!h.pid) continue;
    for (const d of descendants(h.pid)) signalPid(d.pid, "SIGKILL");
    signalGroup(h.pid, "SIGKILL");
  }
}

// Resolves once 127.0.0.1:|port| accepts; rejects if |h| exits first or on timeout.
export async function waitForPort(port, { h, timeout = 15000 } = {}) {
  const end = Date.now() + timeout;
  while (Date.now() < end) {
    if (h?.exitInfo) {
      throw new Error(
        `${h.name} exited (${J(h.exitInfo)}) before listening on ${port}; log ${h.logFile}:\n` +
          tail(h.logFile, 20),
      );
    }
    if (await portAccepts(port)) return;
    await sleep(50);
  }
  throw new Error(`${h?.name ?? "server"} not listening on ${port} after ${timeout} ms` +
    (h ? `; log ${h.logFile}:\n${tail(h.logFile, 20)}` : ""));
}

// ---- mcplex ----------------------------------------------------------------------------------

function logLevelArgs(wanted) {
  const level = process.env.MCPLEX_TEST_LOG_LEVEL ?? wanted ?? "debug";
  return level ? ["--log-level", level] : [];
}

// Writes |configText| and starts `mcplex <flag> FILE --log-level L`, waiting until |port|
// accepts. |logLevel| defaults to debug (env MCPLEX_TEST_LOG_LEVEL overrides).
// Returns the process handle plus {port, url, configFile}.
export async function startMcplex(configText, {
  port, flag = "-f", name = "mcplex", file, args = [], env = {}, path: mcpPath = "/mcp",
  timeout = 15000, logLevel,
} = {}) {
  assert.ok(port, "startMcplex needs the port the config listens on");
  const configFile = writeConfig(file ?? `${name}-${(counters.get(name) ?? 0) + 1}.yaml`, configText);
  const h = spawnTracked(name, MCPLEX_BIN, [flag, configFile, ...logLevelArgs(logLevel), ...args], { env });
  await waitForPort(port, { h, timeout });
  return Object.assign(h, { port, url: `http://127.0.0.1:${port}${mcpPath}`, configFile });
}

// Runs |cmd| |args| to completion (curl, nghttp, h2load, openssl, node); |input| goes to its stdin
// (closed at once when absent), |env| is added to the environment, and it is killed after
// |timeout| ms. Resolves {code, stdout, stderr}.
export function sh(cmd, args, { timeout = 20000, env = {}, input } = {}) {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, ...env } });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d) => (stdout += d));
    p.stderr.on("data", (d) => (stderr += d));
    p.stdin.on("error", () => {});
    p.stdin.end(input ?? "");
    const timer = setTimeout(() => p.kill("SIGKILL"), timeout);
    p.once("error", (e) => {
      clearTimeout(timer);
      resolve({ code: null, stdout, stderr: `${stderr}${e.message}` });
    });
    p.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

// Runs mcplex to completion (e.g. --validate) and collects its output.
// Resolves {code, signal, stdout, stderr}; kills it after |timeout|.
export function runMcplex(args, { timeout = 15000, env = {} } = {}) {
  return new Promise((resolve) => {
    const proc = spawn(MCPLEX_BIN, args, {
      cwd: TESTS_DIR,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    const h = { name: "mcplex-run", pid: proc.pid, proc, exitInfo: null, stopped: false };
    h.exited = new Promise((r) => proc.once("close", (code, signal) => r((h.exitInfo = { code, signal }))));
    tracked.push(h);
    let stdout = "";
    let stderr = "";
    proc.stdout.on("data", (d) => (stdout += d));
    proc.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => {
      stderr += `\n[harness] killed after ${timeout} ms`;
      signalGroup(proc.pid, "SIGKILL");
    }, timeout);
    proc.once("error", (err) => {
      clearTimeout(timer);
      h.exitInfo = { code: null, signal: null };
      resolve({ code: null, signal: null, stdout, stderr: `${stderr}${err.message}` });
    });
    h.exited.then(({ code, signal }) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

// `mcplex --validate <flag> FILE` on |configText|. Resolves {code, signal, stdout, stderr, file}.
export async function validateConfig(name, configText, { flag = "-c" } = {}) {
  const file = writeConfig(name, configText);
  const r = await runMcplex(["--validate", flag, file]);
  fs.writeFileSync(path.join(ARTIFACTS, `${name}.validate.txt`),
    `exit ${r.code} signal ${r.signal}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
  return { ...r, file };
}

// The agentgateway-style config most tests start from: one bind on |port| with one MCP backend of
// two "tiny" stdio targets, a (NAME=A) and b (NAME=B). |title| is the config's first comment.
export function tinyPairConfig(port, title = "two tiny targets") {
  const tiny = stdioPeer("tiny");
  return `# ${title}
binds:
- port: ${port}
  listeners:
  - routes:
    - backends:
      - mcp:
          targets:
          - name: a
            stdio: {cmd: ${J(tiny.cmd)}, args: ${J(tiny.args)}, env: {NAME: A}}
          - name: b
            stdio: {cmd: ${J(tiny.cmd)}, args: ${J(tiny.args)}, env: {NAME: B}}
`;
}

// ---- real peers ------------------------------------------------------------------------------

// server-everything in streamableHttp (or sse) mode on a free loopback port.
export async function startEverythingHttp({ name = "everything-http", mode = "streamableHttp" } = {}) {
  const port = await freePort();
  const h = spawnTracked(name, NODE, ["-r", PEERS.shim, PEERS.everything, mode], {
    env: { PORT: String(port) },
  });
  await waitForPort(port, { h, timeout: 20000 });
  const endpoint = mode === "sse" ? "/sse" : "/mcp";
  return Object.assign(h, { port, url: `http://127.0.0.1:${port}${endpoint}` });
}

// {cmd, args} of a stdio peer, for use in configs (node by absolute path, no npx).
export function stdioPeer(kind) {
  switch (kind) {
    case "everything":
      return { cmd: NODE, args: [PEERS.everything, "stdio"] };
    case "memory":
      return { cmd: NODE, args: [PEERS.memory] };
    case "time":
      return { cmd: NODE, args: [PEERS.time] };
    case "tiny":
      return { cmd: NODE, args: [PEERS.tiny] };
    default:
      throw new Error(`unknown peer ${kind}`);
  }
}

// ---- MCP over HTTP: the official SDK client ------------------------------------------------

const openClients = new Set();

// Connects the official SDK client (Client + StreamableHTTPClientTransport) to |url|.
// Returns {client, transport, sessionId, terminate(), close()}.
export async function connectClient(url, { name = "mcplex-test", timeout = 20000 } = {}) {
  const client = new Client({ name, version: "0.0.0" }, { capabilities: {} });
  const transport = new StreamableHTTPClientTransport(new URL(url));
  client.onerror = () => {}; // GET-stream hiccups after DELETE/kill are expected
  openClients.add(client);
  await withTimeout(client.connect(transport), timeout, `SDK client connect to ${url}`);
  const c = {
    client,
    transport,
    sessionId: transport.sessionId,
    // DELETE /mcp: ends the session on mcplex.
    terminate: () => withTimeout(transport.terminateSession(), 10000, "DELETE session"),
    close: async () => {
      openClients.delete(client);
      await withTimeout(client.close(), 5000, "client close").catch(() => {});
    },
  };
  return c;
}

export const names = (list, key = "name") => list.map((x) => x[key]);
export const textOf = (result) =>
  (result?.content ?? []).filter((c) => c.type === "text").map((c) => c.text).join("\n");

// ---- MCP over HTTP: raw requests (status codes, headers, exact bytes) ----------------------

export const PROTOCOL_VERSION = "2025-11-25";
const BOTH = "application/json, text/event-stream";

// Parses one SSE payload into events [{event, id, data}], skipping events without data
// (priming events).
export function parseSse(text) {
  const events = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    const ev = { event: "message", id: undefined, data: [] };
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith(":")) continue;
      const i = line.indexOf(":");
      const field = i < 0 ? line : line.slice(0, i);
      let value = i < 0 ? "" : line.slice(i + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "data") ev.data.push(value);
      else if (field === "event") ev.event = value;
      else if (field === "id") ev.id = value;
    }
    if (ev.data.length && ev.data.join("")) events.push({ ...ev, data: ev.data.join("\n") });
  }
  return events;
}

// Reads a response body. JSON: the whole body. SSE: events until one carries a JSON-RPC
// response (result or error) whose id is |id| (raw stream stays open otherwise), or the end.
async function readBody(res, id, timeout) {
  const ct = res.headers.get("content-type") ?? "";
  if (!ct.startsWith("text/event-stream") || !res.body) {
    return await withTimeout(res.text(), timeout, "response body");
  }
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let text = "";
  const done = () =>
    parseSse(text.slice(0, text.lastIndexOf("\n\n") + 2)).some((e) => {
      try {
        const m = JSON.parse(e.data);
        return ("result" in m || "error" in m) && (id === undefined || J(m.id) === J(id));
      } catch {
        return false;
      }
    });
  const read = (async () => {
    for (;;) {
      const { value, done: end } = await reader.read();
      if (end) break;
      text += dec.decode(value, { stream: true }).replace(/\r\n/g, "\n");
      if (done()) break;
    }
    reader.cancel().catch(() => {});
    return text;
  })();
  return await withTimeout(read, timeout, "SSE response");
}

// One HTTP request to mcplex. |body| is an object (sent as JSON) or a raw string.
// Resolves {status, headers, contentType, text, messages, json, session}; json is the first
// JSON-RPC response in the body (or the first message), messages every JSON message.
export async function http(url, {
  method = "POST", body, session, protocolVersion, accept = BOTH,
  contentType = "application/json", headers = {}, timeout = 15000,
} = {}) {
  const h = { ...headers };
  if (accept !== null) h.accept = accept;
  if (body !== undefined && contentType !== null) h["content-type"] = contentType;
  if (session) h["mcp-session-id"] = session;
  if (protocolVersion) h["mcp-protocol-version"] = protocolVersion;
  const payload = body === undefined ? undefined : typeof body === "string" ? body : J(body);
  const res = await withTimeout(
    fetch(url, { method, headers: h, body: payload, signal: AbortSignal.timeout(timeout) }),
    timeout, `${method} ${url}`);
  const id = body && typeof body === "object" ? body.id : undefined;
  const text = await readBody(res, id, timeout);
  const contentTypeOut = res.headers.get("content-type") ?? "";
  let raws = [];
  if (contentTypeOut.startsWith("text/event-stream")) raws = parseSse(text).map((e) => e.data);
  else if (text.trim()) raws = [text];
  const messages = [];
  for (const r of raws) {
    try {
      messages.push(JSON.parse(r));
    } catch {
      /* not JSON */
    }
  }
  const json = messages.find((m) => m && ("result" in m || "error" in m)) ?? messages[0];
  return {
    status: res.status, headers: res.headers, contentType: contentTypeOut, text, raws, messages,
    json, session: res.headers.get("mcp-session-id"),
  };
}

let nextId = 1;
export const request = (method, params, id = nextId++) =>
  ({ jsonrpc: "2.0", id, method, ...(params === undefined ? {} : { params }) });
export const notification = (method, params) =>
  ({ jsonrpc: "2.0", method, ...(params === undefined ? {} : { params }) });

// A JSON-RPC request over raw HTTP within a session.
export function rpc(url, session, method, params, opts = {}) {
  return http(url, { body: request(method, params), session, protocolVersion: PROTOCOL_VERSION, ...opts });
}

// initialize + notifications/initialized over raw HTTP. Resolves {session, result, init}.
export async function openSession(url, { protocolVersion = PROTOCOL_VERSION, timeout = 15000 } = {}) {
  const init = await http(url, {
    body: request("initialize", {
      protocolVersion, capabilities: {}, clientInfo: { name: "mcplex-raw-test", version: "0" },
    }),
    timeout,
  });
  assert.equal(init.status, 200, `initialize: HTTP ${init.status} ${init.text.slice(0, 300)}`);
  assert.ok(init.json?.result, `initialize: no result: ${init.text.slice(0, 300)}`);
  assert.ok(init.session, "initialize: no Mcp-Session-Id header");
  const note = await http(url, {
    body: notification("notifications/initialized"), session: init.session,
    protocolVersion: init.json.result.protocolVersion,
  });
  assert.equal(note.status, 202, `notifications/initialized: HTTP ${note.status}`);
  return { session: init.session, result: init.json.result, init };
}

// DELETE /mcp for |session|; resolves the HTTP status.
export async function deleteSession(url, session) {
  const r = await http(url, { method: "DELETE", session, protocolVersion: PROTOCOL_VERSION });
  return r.status;
}

// A DELETE that ended a session: 200 or 204.
export function assertDeleted(status) {
  assert.ok(status === 200 || status === 204, `DELETE /mcp: HTTP ${status} (want 200 or 204)`);
}

// ---- config-error helpers --------------------------------------------------------------------

// The `path.to.field: message` lines of a --validate run.
export function errorLines(stderr) {
  return stderr.split("\n").map((l) => l.trim()).filter((l) => /^\S+: \S/.test(l));
}

// ---- test registration and the runner ---------------------------------------------------------

const tests = [];

// Registers a test. Options: timeout (ms, default 60 s).
export function test(name, fn, { timeout = 60000 } = {}) {
  tests.push({ name, fn, timeout });
}

let cleaning = null;

async function cleanup() {
  if (cleaning) return cleaning;
  cleaning = (async () => {
    for (const c of openClients) await withTimeout(c.close(), 2000, "close").catch(() => {});
    openClients.clear();
    await Promise.all(tracked.map((h) => stopProcess(h, { graceMs: 2000 })));
    killAllNow();
    fs.rmSync(TMP, { recursive: true, force: true });
  })();
  return cleaning;
}

process.on("exit", () => {
  killAllNow();
  fs.rmSync(TMP, { recursive: true, force: true });
});
process.on("unhandledRejection", (e) => log(`unhandled rejection: ${e?.stack ?? e}`));
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.on(sig, () => {
    log(`${sig}: stopping`);
    cleanup().finally(() => process.exit(1));
  });
}

function printLogTails() {
  for (const h of tracked) {
    if (!h.logFile || !h.name.startsWith("mcplex")) continue;
    log(`--- ${path.relative(SOURCE_DIR, h.logFile)} (last 25 lines)`);
    for (const l of tail(h.logFile, 25).split("\n")) log(`  ${l}`);
  }
}

// Runs the registered tests in order. |timeout| bounds the whole file: when it fires,
// everything started is killed and the file fails.
export async function run({ timeout = 120000 } = {}) {
  let passed = 0;
  let failed = 0;
  let current = "(setup)";
  const started = Date.now();

  const globalTimer = setTimeout(async () => {
    log(`TIMEOUT: ${TEST_NAME} exceeded ${timeout / 1000} s (in "${current}"); killing everything`);
    printLogTails();
    await withTimeout(cleanup(), 10000, "cleanup").catch(() => killAllNow());
    const rest = tests.length - passed - failed;
    console.log(`${passed} passed, ${failed + rest} failed`);
    process.exit(1);
  }, timeout);

  if (!fs.existsSync(MCPLEX_BIN)) log(`warning: ${MCPLEX_BIN} does not exist (build first)`);

  for (const [i, t] of tests.entries()) {
    current = t.name;
    const t0 = Date.now();
    try {
      await withTimeout(Promise.resolve().then(t.fn), t.timeout, `test "${t.name}"`);
      passed++;
      console.log(`ok ${i + 1} - ${t.name} (${Date.now() - t0} ms)`);
    } catch (e) {
      failed++;
      console.log(`not ok ${i + 1} - ${t.name} (${Date.now() - t0} ms)`);
      for (const l of String(e?.stack ?? e).split("\n").slice(0, 12)) log(`  ${l}`);
    }
  }
  clearTimeout(globalTimer);
  if (failed) printLogTails();
  await withTimeout(cleanup(), 15000, "cleanup").catch(() => killAllNow());
  log(`${TEST_NAME}: ${((Date.now() - started) / 1000).toFixed(1)} s; logs in ${path.relative(SOURCE_DIR, ARTIFACTS)}`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}
