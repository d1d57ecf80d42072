// app.js - the mcplex web UI (served at /ui/app.js by the admin listener; runs in the browser).
// Overview: the admin listener's JSON endpoints (/listeners, /config_dump, /clusters,
// /mcp/targets, /mcp/sessions), each optional: a missing one is shown as unavailable.
// Playground: a small MCP client over streamable HTTP (MCP 2025-11-25 "Streamable HTTP"):
// POST initialize, keep Mcp-Session-Id, notifications/initialized, then tools, resources and
// prompts of every target through the one endpoint; responses may be JSON or an SSE stream.
// Plain JS, no framework, no CDN: works offline.
"use strict";

const $ = (sel) => document.querySelector(sel);
const PROTOCOL_VERSION = "2025-11-25";

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

// Envoy JSON may come in snake_case (Envoy) or camelCase (proto3 JSON): read either.
function g(obj, name) {
  if (obj == null || typeof obj !== "object") return undefined;
  if (name in obj) return obj[name];
  const camel = name.replace(/_([a-z])/g, (_, c) => c.toUpperCase());
  return obj[camel];
}

async function adminJson(path) {
  const res = await fetch(path, { headers: { accept: "application/json" } });
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
  return await res.json();
}

function stateBadge(state) {
  const s = String(state ?? "unknown");
  return el("span", { class: `badge state-${s.toLowerCase()}`, text: s });
}

function table(columns, rows) {
  if (!rows.length) return el("div", { class: "muted", text: "none" });
  return el("table", {},
    el("thead", {}, el("tr", {}, columns.map((c) => el("th", { text: c.title })))),
    el("tbody", {}, rows.map((r) => el("tr", {}, columns.map((c) => {
      const v = c.get(r);
      return el("td", {}, v instanceof Node ? v : v === undefined || v === null ? "" : String(v));
    })))));
}

function unavailable(box, what, err) {
  box.replaceChildren(el("span", { class: "muted", text: `${what} unavailable (${err.message})` }));
}

// ---- overview ------------------------------------------------------------------------------

const state = { listeners: [], routesByListener: new Map(), mcpUrl: null };

function listenersFromDump(dump) {
  const out = [];
  for (const cfg of g(dump, "configs") ?? []) {
    if (!String(cfg["@type"] ?? "").endsWith("ListenersConfigDump")) continue;
    const all = [...(g(cfg, "static_listeners") ?? []), ...(g(cfg, "dynamic_listeners") ?? [])];
    for (const entry of all) {
      const l = g(entry, "listener") ?? g(g(entry, "active_state") ?? {}, "listener");
      if (l) out.push(l);
    }
  }
  return out;
}

function routesOfListener(l) {
  const routes = [];
  for (const chain of g(l, "filter_chains") ?? []) {
    for (const f of g(chain, "filters") ?? []) {
      const tc = g(f, "typed_config") ?? {};
      const rc = g(tc, "route_config");
      const rds = g(tc, "rds");
      if (rds) routes.push({ vhost: "(RDS)", match: g(rds, "route_config_name") ?? "", action: "rds" });
      for (const vh of g(rc, "virtual_hosts") ?? []) {
        for (const r of g(vh, "routes") ?? []) {
          const m = g(r, "match") ?? {};
          const match = g(m, "path") !== undefined ? `path ${g(m, "path")}`
            : g(m, "prefix") !== undefined ? `prefix ${g(m, "prefix")}`
            : g(m, "path_separated_prefix") !== undefined ? `prefix ${g(m, "path_separated_prefix")}` : "prefix /";
          const ra = g(r, "route");
          const dr = g(r, "direct_response");
          let action = "";
          if (ra && g(ra, "cluster")) action = `cluster ${g(ra, "cluster")}`;
          else if (ra && g(ra, "weighted_clusters")) {
            action = "weighted " + (g(g(ra, "weighted_clusters"), "clusters") ?? [])
              .map((c) => `${g(c, "name")}=${g(c, "weight") ?? 0}`).join(", ");
          } else if (dr) action = `direct_response ${g(dr, "status")}`;
          else if (ra) action = "route";
          routes.push({
            vhost: `${g(vh, "name") ?? ""} [${(g(vh, "domains") ?? []).join(", ")}]`,
            match, action,
            path: g(m, "path") ?? g(m, "prefix") ?? g(m, "path_separated_prefix") ?? "/",
            mcp: !dr,
          });
        }
      }
    }
  }
  return routes;
}

function hostForUrl(address) {
  if (!address || address === "0.0.0.0" || address === "::" || address === "[::]") return location.hostname;
  return address.includes(":") && !address.startsWith("[") ? `[${address}]` : address;
}

async function loadOverview() {
  $("#overview-status").textContent = "loading…";
  const [lst, dump, clusters, targets] = await Promise.allSettled([
    adminJson("/listeners?format=json"), adminJson("/config_dump"),
    adminJson("/clusters?format=json"), adminJson("/mcp/targets"),
  ]);
  // Listeners: bound ports from /listeners, routes from /config_dump.
  const bound = new Map();
  if (lst.status === "fulfilled") {
    for (const ls of g(lst.value, "listener_statuses") ?? []) {
      const sa = g(g(ls, "local_address") ?? {}, "socket_address") ?? {};
      bound.set(g(ls, "name"), { address: g(sa, "address"), port: g(sa, "port_value") });
    }
  }
  const dumped = dump.status === "fulfilled" ? listenersFromDump(dump.value) : [];
  const names = new Set([...bound.keys(), ...dumped.map((l) => g(l, "name"))]);
  state.listeners = [...names].map((name) => {
    const l = dumped.find((x) => g(x, "name") === name);
    const sa = l ? g(g(l, "address") ?? {}, "socket_address") ?? {} : {};
    const b = bound.get(name) ?? {};
    const address = b.address ?? g(sa, "address");
    const port = b.port ?? g(sa, "port_value");
    const routes = l ? routesOfListener(l) : [];
    const mcpRoute = routes.find((r) => r.mcp && /mcp/i.test(r.path)) ?? routes.find((r) => r.mcp);
    let path = mcpRoute ? mcpRoute.path : "/mcp";
    if (path === "/" || path === "") path = "/mcp";
    return { name, address, port, routes, url: port ? `http://${hostForUrl(address)}:${port}${path}` : "" };
  });
  const lbox = $("#ov-listeners");
  if (!state.listeners.length) {
    if (lst.status === "rejected") unavailable(lbox, "/listeners", lst.reason);
    else lbox.replaceChildren(el("span", { class: "muted", text: "no listeners" }));
  } else {
    lbox.replaceChildren(table([
      { title: "name", get: (l) => l.name },
      { title: "address", get: (l) => `${l.address ?? "?"}:${l.port ?? "?"}` },
      { title: "MCP URL", get: (l) => l.url ? el("a", { href: "#", class: "mono", text: l.url,
          onclick: (e) => { e.preventDefault(); $("#url").value = l.url; showTab("playground"); } }) : "" },
    ], state.listeners));
  }
  const rbox = $("#ov-routes");
  if (dump.status === "rejected") unavailable(rbox, "/config_dump", dump.reason);
  else {
    const rows = state.listeners.flatMap((l) => l.routes.map((r) => ({ listener: l.name, ...r })));
    rbox.replaceChildren(table([
      { title: "listener", get: (r) => r.listener },
      { title: "virtual host", get: (r) => r.vhost },
      { title: "match", get: (r) => el("code", { text: r.match }) },
      { title: "action", get: (r) => r.action },
    ], rows));
  }
  const cbox = $("#ov-clusters");
  if (clusters.status === "rejected") unavailable(cbox, "/clusters", clusters.reason);
  else {
    const rows = (g(clusters.value, "cluster_statuses") ?? []).map((c) => {
      const hosts = g(c, "host_statuses") ?? [];
      const mcp = hosts.some((h) => g(h, "mcp_target_kind"));
      return {
        name: g(c, "name"),
        kind: mcp ? "MCP backend" : "cluster",
        hosts: hosts.map((h) => {
          const sa = g(g(h, "address") ?? {}, "socket_address");
          const where = sa ? `${g(sa, "address")}:${g(sa, "port_value")}` : g(h, "hostname") ?? "";
          const kind = g(h, "mcp_target_kind");
          return kind ? `${g(h, "hostname")} (${kind})` : where;
        }).join(", "),
      };
    });
    cbox.replaceChildren(table([
      { title: "name", get: (r) => r.name },
      { title: "kind", get: (r) => r.kind },
      { title: "hosts / targets", get: (r) => r.hosts },
    ], rows));
  }
  const tbox = $("#ov-targets");
  if (targets.status === "rejected") unavailable(tbox, "/mcp/targets", targets.reason);
  else {
    const list = Array.isArray(targets.value) ? targets.value : g(targets.value, "targets") ?? [];
    tbox.replaceChildren(table([
      { title: "backend", get: (t) => t.backend },
      { title: "target", get: (t) => t.name },
      { title: "kind", get: (t) => t.kind },
      { title: "state", get: (t) => stateBadge(t.state) },
      { title: "sessions", get: (t) => t.sessions },
      { title: "restarts", get: (t) => t.restarts },
      { title: "last error", get: (t) => t.last_error ? el("span", { class: "error", text: t.last_error }) : "" },
    ], list));
  }
  const first = state.listeners.find((l) => l.url);
  if (first && !$("#url").value) $("#url").value = first.url;
  $("#overview-status").textContent = `updated ${new Date().toLocaleTimeString()}`;
}

async function loadServerInfo() {
  try {
    const info = await adminJson("/server_info");
    $("#server-info").textContent = `${g(info, "version") ?? ""} · ${g(info, "state") ?? ""}`;
  } catch {
    $("#server-info").textContent = "";
  }
}

// ---- sessions ------------------------------------------------------------------------------

async function loadSessions() {
  const box = $("#sessions");
  try {
    const data = await adminJson("/mcp/sessions");
    const list = Array.isArray(data) ? data : g(data, "sessions") ?? [];
    box.replaceChildren(table([
      { title: "session", get: (s) => el("code", { text: s.id_prefix ?? s.id ?? "" }) },
      { title: "backend", get: (s) => s.backend },
      { title: "client", get: (s) => s.client_info ? `${s.client_info.name ?? ""} ${s.client_info.version ?? ""}` : "" },
      { title: "protocol", get: (s) => s.protocol_version },
      { title: "age (s)", get: (s) => s.age_seconds },
      { title: "idle (s)", get: (s) => s.idle_seconds },
      { title: "targets", get: (s) => el("span", {}, (s.targets ?? []).map((t) =>
          el("span", {}, `${t.name} `, stateBadge(t.state), " "))) },
      { title: "config", get: (s) => s.config_generation },
    ], list));
  } catch (e) {
    unavailable(box, "/mcp/sessions", e);
  }
}

// ---- MCP client (streamable HTTP) ----------------------------------------------------------

function logLine(dir, obj) {
  const pre = $("#log");
  const text = typeof obj === "string" ? obj : JSON.stringify(obj);
  pre.textContent += `${new Date().toISOString().slice(11, 23)} ${dir} ${text.slice(0, 2000)}\n`;
  pre.scrollTop = pre.scrollHeight;
}

class RpcError extends Error {
  constructor(error) {
    super(`${error.message ?? "error"} (JSON-RPC ${error.code})`);
    this.rpc = error;
  }
}

// Parses SSE text into events ({event, id, data}); keeps the unfinished tail in |rest|.
function parseSseChunk(buffer) {
  const events = [];
  const blocks = buffer.split(/\r?\n\r?\n/);
  const rest = blocks.pop();
  for (const block of blocks) {
    const ev = { event: "message", data: [] };
    for (const line of block.split(/\r?\n/)) {
      if (!line || line.startsWith(":")) continue;
      const i = line.indexOf(":");
      const field = i < 0 ? line : line.slice(0, i);
      let value = i < 0 ? "" : line.slice(i + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "data") ev.data.push(value);
      else if (field === "event") ev.event = value;
      else if (field === "id") ev.id = value;
    }
    if (ev.data.length) events.push({ ...ev, data: ev.data.join("\n") });
  }
  return { events, rest };
}

class McpClient {
  constructor(url) {
    this.url = url;
    this.sessionId = null;
    this.protocolVersion = null;
    this.nextId = 1;
    this.onNotification = () => {};
  }

  headers() {
    const h = { "content-type": "application/json", accept: "application/json, text/event-stream" };
    if (this.sessionId) h["mcp-session-id"] = this.sessionId;
    if (this.protocolVersion) h["mcp-protocol-version"] = this.protocolVersion;
    return h;
  }

  // Handles one message that is not the awaited response (notifications, server requests).
  async other(msg) {
    if (msg.method && msg.id !== undefined) {
      // A server request (sampling, elicitation, roots): the Playground declares no client
      // capabilities, so it declines.
      logLine("<-", msg);
      await this.send({ jsonrpc: "2.0", id: msg.id, error: { code: -32601, message: "not supported by the mcplex UI" } });
    } else if (msg.method) {
      logLine("<-", msg);
      this.onNotification(msg);
    }
  }

  // POSTs |msg|; resolves the JSON-RPC response with the same id (requests) or null.
  async send(msg) {
    logLine("->", msg);
    let res;
    try {
      res = await fetch(this.url, { method: "POST", headers: this.headers(), body: JSON.stringify(msg) });
    } catch (e) {
      // fetch rejects without detail on network and CORS failures.
      const cross = new URL(this.url, location.href).origin !== location.origin;
      throw new Error(`${e.message}: ${this.url} unreachable` + (cross
        ? "; it is on another origin than this page, so its route's CORS policy must allow the request"
          + " headers content-type, mcp-protocol-version and mcp-session-id and expose Mcp-Session-Id"
        : ""));
    }
    const sid = res.headers.get("mcp-session-id");
    if (sid) this.sessionId = sid;
    if (res.status === 202 || res.status === 204) return null;
    const ct = res.headers.get("content-type") ?? "";
    if (ct.startsWith("text/event-stream") && res.body) {
      const reader = res.body.getReader();
      const dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        const parsed = parseSseChunk(buf);
        buf = parsed.rest;
        for (const ev of parsed.events) {
          let m;
          try { m = JSON.parse(ev.data); } catch { continue; }
          if (("result" in m || "error" in m) && m.id === msg.id) {
            reader.cancel().catch(() => {});
            logLine("<-", m);
            return m;
          }
          await this.other(m);
        }
      }
      throw new Error(`HTTP ${res.status}: the event stream ended without a response`);
    }
    const text = await res.text();
    let m;
    try { m = JSON.parse(text); } catch {
      throw new Error(`HTTP ${res.status}: ${text.slice(0, 300) || res.statusText}`);
    }
    const list = Array.isArray(m) ? m : [m];
    let answer = null;
    for (const x of list) {
      if (("result" in x || "error" in x) && x.id === msg.id) answer = x;
      else await this.other(x);
    }
    if (answer) logLine("<-", answer);
    if (!answer && msg.id !== undefined) throw new Error(`HTTP ${res.status}: no response in the body`);
    return answer;
  }

  async request(method, params) {
    const msg = { jsonrpc: "2.0", id: this.nextId++, method };
    if (params !== undefined) msg.params = params;
    const r = await this.send(msg);
    if (r.error) throw new RpcError(r.error);
    return r.result;
  }

  async notify(method, params) {
    const msg = { jsonrpc: "2.0", method };
    if (params !== undefined) msg.params = params;
    await this.send(msg);
  }

  async connect() {
    const init = await this.request("initialize", {
      protocolVersion: PROTOCOL_VERSION,
      capabilities: {},
      clientInfo: { name: "mcplex-ui", version: "1.0.0" },
    });
    this.protocolVersion = init.protocolVersion;
    this.init = init;
    await this.notify("notifications/initialized");
    return init;
  }

  // Every page of a paginated list.
  async listAll(method, key) {
    const out = [];
    let cursor;
    for (let page = 0; page < 100; page++) {
      const r = await this.request(method, cursor ? { cursor } : {});
      out.push(...(r[key] ?? []));
      cursor = r.nextCursor;
      if (!cursor) break;
    }
    return out;
  }

  async close() {
    if (!this.sessionId) return;
    try {
      await fetch(this.url, { method: "DELETE", headers: this.headers() });
    } catch { /* best effort */ }
    this.sessionId = null;
  }
}

// ---- playground ----------------------------------------------------------------------------

const pg = { client: null, tools: [], resources: [], templates: [], prompts: [], sub: "tools", selected: null };

function setStatus(text, cls = "muted") {
  const s = $("#conn-status");
  s.textContent = text;
  s.className = cls;
}

async function connect() {
  const url = $("#url").value.trim();
  if (!url) { setStatus("enter the MCP URL", "error"); return; }
  if (pg.client) await pg.client.close();
  pg.client = new McpClient(url);
  pg.client.onNotification = (m) => {
    if (/list_changed$/.test(m.method ?? "")) refreshLists().catch(() => {});
  };
  $("#connect").disabled = true;
  setStatus("connecting…");
  try {
    const init = await pg.client.connect();
    if (!pg.client.sessionId) {
      logLine("!!", "no Mcp-Session-Id visible: a cross-origin MCP route must expose it (CORS exposeHeaders)");
    }
    const si = init.serverInfo ?? {};
    const card = $("#server-card");
    card.classList.remove("hidden");
    card.replaceChildren(
      el("div", {}, el("strong", { text: si.title ?? si.name ?? "server" }), ` ${si.version ?? ""} · protocol `,
        el("code", { text: init.protocolVersion }), pg.client.sessionId ? " · session " : "",
        pg.client.sessionId ? el("code", { text: pg.client.sessionId.slice(0, 16) + "…" }) : ""),
      init.instructions ? el("details", {}, el("summary", { text: "instructions" }),
        el("pre", { text: init.instructions })) : "");
    setStatus("connected", "state-ready");
    $("#disconnect").disabled = false;
    await refreshLists();
  } catch (e) {
    setStatus(`connect failed: ${e.message}`, "error");
    logLine("!!", e.message);
    pg.client = null;
  } finally {
    $("#connect").disabled = false;
  }
}

async function disconnect() {
  if (pg.client) await pg.client.close();
  pg.client = null;
  pg.tools = pg.resources = pg.templates = pg.prompts = [];
  renderLists();
  showDetail(null);
  $("#server-card").classList.add("hidden");
  $("#disconnect").disabled = true;
  setStatus("not connected");
}

async function refreshLists() {
  const c = pg.client;
  const caps = c.init?.capabilities ?? {};
  const [tools, resources, templates, prompts] = await Promise.allSettled([
    caps.tools ? c.listAll("tools/list", "tools") : [],
    caps.resources ? c.listAll("resources/list", "resources") : [],
    caps.resources ? c.listAll("resources/templates/list", "resourceTemplates") : [],
    caps.prompts ? c.listAll("prompts/list", "prompts") : [],
  ]);
  const val = (r) => (r.status === "fulfilled" ? r.value : (logLine("!!", r.reason.message), []));
  pg.tools = val(tools);
  pg.resources = val(resources);
  pg.templates = val(templates);
  pg.prompts = val(prompts);
  renderLists();
}

function renderLists() {
  const filter = $("#filter").value.trim().toLowerCase();
  const match = (...s) => !filter || s.some((x) => String(x ?? "").toLowerCase().includes(filter));
  const item = (kind, key, title, sub, obj) => el("li", {
    "data-kind": kind, "data-name": key, class: pg.selected?.key === key && pg.selected?.kind === kind ? "selected" : "",
    onclick: () => select(kind, key, obj),
  }, el("span", { class: "mono", text: title }), sub ? el("span", { class: "sub", text: sub }) : "");
  $("#list-tools").replaceChildren(...pg.tools.filter((t) => match(t.name, t.description))
    .map((t) => item("tool", t.name, t.name, t.title ?? t.description, t)));
  $("#list-resources").replaceChildren(
    ...pg.resources.filter((r) => match(r.uri, r.name))
      .map((r) => item("resource", r.uri, r.name ?? r.uri, r.uri, r)),
    ...pg.templates.filter((t) => match(t.uriTemplate, t.name))
      .map((t) => item("template", t.uriTemplate, t.name ?? t.uriTemplate, t.uriTemplate, t)));
  $("#list-prompts").replaceChildren(...pg.prompts.filter((p) => match(p.name, p.description))
    .map((p) => item("prompt", p.name, p.name, p.description, p)));
  $("#n-tools").textContent = pg.tools.length ? `(${pg.tools.length})` : "";
  $("#n-resources").textContent = pg.resources.length + pg.templates.length
    ? `(${pg.resources.length + pg.templates.length})` : "";
  $("#n-prompts").textContent = pg.prompts.length ? `(${pg.prompts.length})` : "";
}

function showSub(sub) {
  pg.sub = sub;
  for (const b of document.querySelectorAll(".subtab")) b.classList.toggle("active", b.dataset.sub === sub);
  for (const s of ["tools", "resources", "prompts"]) $(`#list-${s}`).classList.toggle("hidden", s !== sub);
}

function showDetail(on) {
  $("#detail").classList.toggle("hidden", !on);
  $("#detail-empty").classList.toggle("hidden", !!on);
}

// One form field from a JSON Schema property.
function schemaField(name, schema, required) {
  const s = schema ?? {};
  const type = Array.isArray(s.type) ? s.type.find((t) => t !== "null") : s.type;
  const id = `f-${name}`;
  let input;
  let kind = type ?? (s.enum ? "string" : "json");
  if (s.enum) {
    input = el("select", { id, name },
      required ? "" : el("option", { value: "", text: "" }),
      s.enum.map((v) => el("option", { value: JSON.stringify(v), text: String(v),
        selected: s.default !== undefined && v === s.default })));
    kind = "enum";
  } else if (type === "boolean") {
    input = el("input", { id, name, type: "checkbox", checked: s.default === true });
  } else if (type === "number" || type === "integer") {
    input = el("input", { id, name, type: "number", step: type === "integer" ? "1" : "any",
      min: s.minimum, max: s.maximum, value: s.default });
  } else if (type === "string") {
    input = s.format === "textarea" || (s.maxLength ?? 0) > 200
      ? el("textarea", { id, name }, s.default ?? "")
      : el("input", { id, name, type: "text", value: s.default, placeholder: s.format ?? "" });
  } else {
    kind = "json";
    input = el("textarea", { id, name, placeholder: type === "array" ? "[ ]" : "{ }" },
      s.default !== undefined ? JSON.stringify(s.default, null, 2) : "");
  }
  input.dataset.kind = kind;
  input.dataset.type = type ?? "";
  input.dataset.required = required ? "1" : "";
  const label = el("label", { for: id }, name, required ? el("span", { class: "req", text: " *" }) : "");
  const hint = s.description || type ? el("div", { class: "hint",
    text: [type ?? (s.enum ? "enum" : "JSON"), s.description].filter(Boolean).join(" · ") }) : "";
  return el("div", { class: "field" }, label, input, hint);
}

// Reads the form back into arguments; throws on a value that does not parse.
function formValues() {
  const out = {};
  for (const input of $("#form").querySelectorAll("input, select, textarea")) {
    const { kind, required } = input.dataset;
    const name = input.name;
    if (kind === "boolean" || input.type === "checkbox") {
      out[name] = input.checked;
      continue;
    }
    const raw = input.value;
    if (raw === "" && !required) continue;
    if (kind === "enum") out[name] = raw === "" ? undefined : JSON.parse(raw);
    else if (kind === "number" || kind === "integer") {
      const n = Number(raw);
      if (raw === "" || Number.isNaN(n) || (kind === "integer" && !Number.isInteger(n))) {
        throw new Error(`${name}: not ${kind === "integer" ? "an integer" : "a number"}`);
      }
      out[name] = n;
    } else if (kind === "json") {
      try { out[name] = JSON.parse(raw); } catch (e) { throw new Error(`${name}: invalid JSON (${e.message})`); }
    } else out[name] = raw;
  }
  return out;
}

function select(kind, key, obj) {
  pg.selected = { kind, key, obj };
  renderLists();
  showDetail(true);
  $("#result").replaceChildren();
  $("#run-status").textContent = "";
  $("#detail-title").textContent = kind === "resource" ? obj.name ?? obj.uri : obj.name ?? key;
  $("#detail-desc").textContent = [obj.title, obj.description, kind === "resource" ? obj.uri : ""]
    .filter(Boolean).join("\n");
  const form = $("#form");
  form.replaceChildren();
  if (kind === "tool") {
    const schema = obj.inputSchema ?? {};
    const req = new Set(schema.required ?? []);
    for (const [name, prop] of Object.entries(schema.properties ?? {})) form.append(schemaField(name, prop, req.has(name)));
    $("#run").textContent = "Run tool";
  } else if (kind === "prompt") {
    for (const a of obj.arguments ?? []) form.append(schemaField(a.name, { type: "string", description: a.description }, a.required));
    $("#run").textContent = "Get prompt";
  } else if (kind === "template") {
    const vars = [...(obj.uriTemplate ?? "").matchAll(/\{[+#./;?&]?([^}]+)\}/g)].flatMap((m) => m[1].split(","));
    for (const v of vars) form.append(schemaField(v.replace(/\*$/, ""), { type: "string" }, true));
    $("#run").textContent = "Read resource";
  } else {
    $("#run").textContent = "Read resource";
  }
}

function contentItem(c) {
  const box = el("div", { class: "item" });
  const kind = el("div", { class: "kind", text: c.type ?? "content" });
  box.append(kind);
  switch (c.type) {
    case "text":
      box.append(el("pre", { class: "text", text: c.text }));
      break;
    case "image":
      box.append(el("img", { src: `data:${c.mimeType};base64,${c.data}`, alt: "image result" }));
      break;
    case "audio":
      box.append(el("audio", { controls: true, src: `data:${c.mimeType};base64,${c.data}` }));
      break;
    case "resource":
      box.append(resourceContents(c.resource));
      break;
    case "resource_link":
      box.append(el("code", { text: c.uri }), c.name ? ` ${c.name}` : "");
      break;
    default:
      box.append(el("pre", { text: JSON.stringify(c, null, 2) }));
  }
  return box;
}

function resourceContents(r) {
  const wrap = el("div", {}, el("div", { class: "kind", text: `${r.uri ?? ""} ${r.mimeType ?? ""}` }));
  if (r.text !== undefined) {
    let text = r.text;
    if ((r.mimeType ?? "").includes("json")) {
      try { text = JSON.stringify(JSON.parse(r.text), null, 2); } catch { /* as is */ }
    }
    wrap.append(el("pre", { class: "text", text }));
  } else if (r.blob !== undefined) {
    if ((r.mimeType ?? "").startsWith("image/")) wrap.append(el("img", { src: `data:${r.mimeType};base64,${r.blob}` }));
    else wrap.append(el("pre", { text: `(${Math.floor((r.blob.length * 3) / 4)} bytes, base64)` }));
  }
  return wrap;
}

function rawJson(obj) {
  return el("details", {}, el("summary", { text: "raw JSON" }), el("pre", { text: JSON.stringify(obj, null, 2) }));
}

async function run() {
  const sel = pg.selected;
  const out = $("#result");
  const status = $("#run-status");
  if (!sel || !pg.client) return;
  let args;
  try {
    args = formValues();
  } catch (e) {
    status.textContent = e.message;
    status.className = "error";
    return;
  }
  $("#run").disabled = true;
  status.className = "muted";
  status.textContent = "running…";
  const started = performance.now();
  try {
    let items = [];
    let raw;
    if (sel.kind === "tool") {
      raw = await pg.client.request("tools/call", { name: sel.key, arguments: args });
      items = (raw.content ?? []).map(contentItem);
      if (raw.structuredContent !== undefined) {
        items.push(el("div", { class: "item" }, el("div", { class: "kind", text: "structured content" }),
          el("pre", { text: JSON.stringify(raw.structuredContent, null, 2) })));
      }
      if (raw.isError) for (const i of items) i.classList.add("is-error");
    } else if (sel.kind === "prompt") {
      raw = await pg.client.request("prompts/get", { name: sel.key, arguments: args });
      items = (raw.messages ?? []).map((m) => {
        const i = contentItem(m.content ?? {});
        i.querySelector(".kind").textContent = `${m.role} · ${m.content?.type ?? ""}`;
        return i;
      });
    } else {
      let uri = sel.key;
      if (sel.kind === "template") {
        uri = uri.replace(/\{[+#./;?&]?([^}]+)\}/g, (_, v) => encodeURIComponent(args[v.replace(/\*$/, "")] ?? ""));
      }
      raw = await pg.client.request("resources/read", { uri });
      items = (raw.contents ?? []).map((r) => el("div", { class: "item" }, resourceContents(r)));
    }
    out.replaceChildren(...items, rawJson(raw));
    status.textContent = `${raw.isError ? "tool error" : "ok"} in ${Math.round(performance.now() - started)} ms`;
    status.className = raw.isError ? "error" : "state-ready";
  } catch (e) {
    out.replaceChildren(el("div", { class: "item is-error" }, el("div", { class: "kind", text: "error" }),
      el("pre", { text: e.message }), e.rpc ? rawJson(e.rpc) : ""));
    status.textContent = "failed";
    status.className = "error";
  } finally {
    $("#run").disabled = false;
  }
}

// ---- tabs and start ------------------------------------------------------------------------

let sessionsTimer = null;

function showTab(tab) {
  for (const b of document.querySelectorAll(".tab")) b.classList.toggle("active", b.dataset.tab === tab);
  for (const p of ["overview", "sessions", "playground"]) $(`#page-${p}`).classList.toggle("hidden", p !== tab);
  clearInterval(sessionsTimer);
  sessionsTimer = null;
  if (tab === "overview") loadOverview().catch((e) => ($("#overview-status").textContent = e.message));
  if (tab === "sessions") {
    loadSessions();
    sessionsTimer = setInterval(() => { if ($("#sessions-auto").checked) loadSessions(); }, 2000);
  }
  if (location.hash !== `#${tab}`) history.replaceState(null, "", `#${tab}`);
}

function start() {
  for (const b of document.querySelectorAll(".tab")) b.addEventListener("click", () => showTab(b.dataset.tab));
  for (const b of document.querySelectorAll(".subtab")) b.addEventListener("click", () => showSub(b.dataset.sub));
  $("#refresh-overview").addEventListener("click", () => loadOverview());
  $("#refresh-sessions").addEventListener("click", () => loadSessions());
  $("#connect").addEventListener("click", () => connect());
  $("#disconnect").addEventListener("click", () => disconnect());
  $("#run").addEventListener("click", () => run());
  $("#form").addEventListener("submit", (e) => { e.preventDefault(); run(); });
  $("#filter").addEventListener("input", () => renderLists());
  $("#url").addEventListener("keydown", (e) => { if (e.key === "Enter") connect(); });
  const params = new URLSearchParams(location.search);
  if (params.get("url")) $("#url").value = params.get("url");
  loadServerInfo();
  const tab = location.hash.slice(1);
  const first = ["overview", "sessions", "playground"].includes(tab) ? tab : "overview";
  // The overview also finds the first MCP listener's URL for the Playground.
  if (first !== "overview") loadOverview().catch((e) => ($("#overview-status").textContent = e.message));
  showTab(first);
}

start();
