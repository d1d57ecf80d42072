// control-plane.mjs: a small ADS management server for the mcplex xDS tests, in Node, with
// @grpc/grpc-js. Every byte it sends is encoded by protobufjs from Envoy's GENUINE .proto files
// (shipped by @grpc/grpc-js-xds in deps/: envoy-api, xds, googleapis, protoc-gen-validate), so
// it checks that mcplex's own proto subset is wire-compatible. It serves state-of-the-world
// (StreamAggregatedResources) and delta (DeltaAggregatedResources) ADS and is scripted to behave
// like go-control-plane (research/xds-subset.md section 5):
//   - snapshots are per node id; the node of the first request on a stream is kept;
//   - SotW: a request whose nonce is not the latest one sent for its type is ignored ("stale");
//     a response goes out only when the type's snapshot version differs from what the client
//     acknowledged/was sent, or the requested names changed; a NACK (error_detail) is recorded
//     and answered only by a later snapshot; RDS and EDS are answered only when the request names
//     every resource of that type in the snapshot (go-control-plane's ADS rule);
//   - delta: per-resource versions (a hash of the encoded resource), initial_resource_versions
//     honoured, subscription changes honoured whatever their nonce, removals sent for names the
//     client holds that left the snapshot.
// Controlled in-process by the test: setSnapshot(), requests log, waitFor(), stop(), start().
// Listens on 127.0.0.1 only.
import path from "node:path";
import crypto from "node:crypto";
import { fileURLToPath } from "node:url";
import grpc from "@grpc/grpc-js";
import protoLoader from "@grpc/proto-loader";
import protobuf from "protobufjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const DEPS = path.resolve(HERE, "../node_modules/@grpc/grpc-js-xds/deps");
export const INCLUDE_DIRS = ["envoy-api", "xds", "googleapis", "protoc-gen-validate"].map((d) => path.join(DEPS, d));
// mcplex's own package (McpBackend) from the repository; only mcplex/* resolves there, so the
// envoy.* protos always come from the genuine set.
const MCPLEX_API = path.resolve(HERE, "../../api");

export const TYPE = {
  cluster: "type.googleapis.com/envoy.config.cluster.v3.Cluster",
  endpoint: "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
  listener: "type.googleapis.com/envoy.config.listener.v3.Listener",
  route: "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
};
const KIND_OF = Object.fromEntries(Object.entries(TYPE).map(([k, v]) => [v, k]));

const RESOURCE_PROTOS = [
  "envoy/config/cluster/v3/cluster.proto",
  "envoy/config/endpoint/v3/endpoint.proto",
  "envoy/config/listener/v3/listener.proto",
  "envoy/config/route/v3/route.proto",
  "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto",
  "envoy/extensions/filters/http/router/v3/router.proto",
  "envoy/extensions/upstreams/http/v3/http_protocol_options.proto",
  "envoy/service/discovery/v3/discovery.proto",
  "xds/type/v3/typed_struct.proto",
  "udpa/type/v1/typed_struct.proto",
  "mcplex/extensions/clusters/mcp/v1/mcp.proto",
];

let rootPromise = null;
// The protobufjs root with the genuine Envoy protos (loaded once).
export function envoyRoot() {
  if (rootPromise) return rootPromise;
  const root = new protobuf.Root();
  root.resolvePath = (origin, target) => {
    if (path.isAbsolute(target)) return target;
    if (target.startsWith("mcplex/")) return path.join(MCPLEX_API, target);
    for (const dir of INCLUDE_DIRS) {
      const p = path.join(dir, target);
      try {
        if (protobuf.util.fs.statSync(p).isFile()) return p;
      } catch {}
    }
    return target; // google/protobuf/*: protobufjs' built-in common protos
  };
  rootPromise = root.load(RESOURCE_PROTOS, { keepCase: true }).then((r) => {
    r.resolveAll();
    return r;
  });
  return rootPromise;
}

// A plain JS value -> google.protobuf.Struct / Value objects (for TypedStruct). protobufjs' built-in
// struct.proto names the Value fields in lowerCamel (nullValue, ...), whatever keepCase says.
export function toValue(v) {
  if (v === null || v === undefined) return { nullValue: 0 };
  if (typeof v === "number") return { numberValue: v };
  if (typeof v === "string") return { stringValue: v };
  if (typeof v === "boolean") return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(toValue) } };
  return { structValue: toStruct(v) };
}
export function toStruct(obj) {
  return { fields: Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, toValue(v)])) };
}

// Any{@type, ...} objects -> protobufjs-encodable Any {type_url, value} (recursively encoded by
// the caller's root). |obj| is a message in protobufjs object form with nested Anys written as
// {"@type": url, ...fields}.
export async function encode(typeName, obj) {
  const root = await envoyRoot();
  const T = root.lookupType(typeName);
  const m = T.fromObject(fixAnys(root, obj));
  const err = T.verify(m);
  if (err) throw new Error(`${typeName}: ${err}`);
  return Buffer.from(T.encode(m).finish());
}

function fixAnys(root, v) {
  if (Array.isArray(v)) return v.map((x) => fixAnys(root, x));
  if (v && typeof v === "object" && !Buffer.isBuffer(v)) {
    if (typeof v["@type"] === "string") {
      const url = v["@type"];
      const name = url.slice(url.lastIndexOf("/") + 1);
      const { "@type": _, ...rest } = v;
      const T = root.lookupType(name);
      const m = T.fromObject(fixAnys(root, rest));
      const e = T.verify(m);
      if (e) throw new Error(`${name}: ${e}`);
      return { type_url: url, value: Buffer.from(T.encode(m).finish()) };
    }
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fixAnys(root, x)]));
  }
  return v;
}

const TYPE_NAME = {
  cluster: "envoy.config.cluster.v3.Cluster",
  endpoint: "envoy.config.endpoint.v3.ClusterLoadAssignment",
  listener: "envoy.config.listener.v3.Listener",
  route: "envoy.config.route.v3.RouteConfiguration",
};

// Resource name of an object of |kind|.
const nameOf = (kind, obj) => (kind === "endpoint" ? obj.cluster_name : obj.name);

// Encodes a snapshot {version, cluster: [...], endpoint: [...], listener: [...], route: [...]}
// (raw Buffers are accepted as already-encoded resources, to send bad bytes on purpose).
async function encodeSnapshot(snap) {
  const out = { version: String(snap.version), types: {} };
  for (const kind of Object.keys(TYPE)) {
    const list = [];
    for (const item of snap[kind] ?? []) {
      if (item && item.raw) {
        list.push({ name: item.name, bytes: item.raw, typeUrl: item.typeUrl ?? TYPE[kind] });
      } else {
        const bytes = await encode(TYPE_NAME[kind], item);
        list.push({ name: nameOf(kind, item), bytes, typeUrl: TYPE[kind] });
      }
    }
    for (const r of list) r.version = crypto.createHash("sha256").update(r.bytes).digest("hex").slice(0, 16);
    out.types[TYPE[kind]] = { version: `${snap.version}`, resources: list };
  }
  return out;
}

// |tls|: {key, cert} (PEM) serves gRPC over TLS; plaintext otherwise.
export async function startControlPlane({ port = 0, log = () => {}, tls = null } = {}) {
  const pkgDef = protoLoader.loadSync("envoy/service/discovery/v3/ads.proto", {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
    includeDirs: INCLUDE_DIRS,
  });
  const desc = grpc.loadPackageDefinition(pkgDef);
  const ADS = desc.envoy.service.discovery.v3.AggregatedDiscoveryService;
  const snapshots = new Map(); // node id -> encoded snapshot
  const streams = new Set();
  const responses = []; // every response sent: {mode, type_url, version, nonce, n, removed}
  const requests = []; // every request: {mode, node, type_url, version_info, response_nonce, names, error_detail, ...}
  const waiters = new Set();
  let nonceSeq = 0;
  let server = null;
  let boundPort = port;

  const notify = () => {
    for (const w of [...waiters]) w();
  };

  function record(r) {
    requests.push(r);
    log(`req ${r.mode} ${KIND_OF[r.type_url] ?? r.type_url} v='${r.version_info ?? ""}' nonce='${r.response_nonce}'` +
      ` names=[${(r.names ?? []).join(",")}]${r.error_detail ? " NACK " + r.error_detail.message : ""}`);
    notify();
  }

  // ---- state of the world ----
  function sotwStream(call) {
    const st = { call, node: null, types: new Map(), closed: false, mode: "sotw" };
    streams.add(st);
    const typeState = (t) => {
      if (!st.types.has(t)) st.types.set(t, { lastNonce: "", sentVersion: null, names: null, open: false, acked: "" });
      return st.types.get(t);
    };
    st.push = () => {
      for (const [t, ts] of st.types) maybeRespond(t, ts);
    };
    function maybeRespond(t, ts) {
      if (st.closed || !ts.open || !st.node) return;
      const snap = snapshots.get(st.node.id);
      if (!snap) return;
      const entry = snap.types[t];
      if (!entry) return;
      const kind = KIND_OF[t];
      const wildcard = kind === "cluster" || kind === "listener";
      let resources = entry.resources;
      if (!wildcard) {
        const names = ts.names ?? [];
        // go-control-plane ADS: answer only when every snapshot resource is requested
        if (!resources.every((r) => names.includes(r.name))) return;
        resources = resources.filter((r) => names.includes(r.name));
      }
      if (ts.sentVersion === entry.version && ts.sentNamesKey === (ts.names ?? []).join("\0")) return;
      const nonce = String(++nonceSeq);
      ts.lastNonce = nonce;
      ts.sentVersion = entry.version;
      ts.sentNamesKey = (ts.names ?? []).join("\0");
      ts.open = false;
      log(`resp sotw ${kind} v='${entry.version}' nonce=${nonce} n=${resources.length}`);
      responses.push({ mode: "sotw", type_url: t, version: entry.version, nonce, n: resources.length });
      call.write({
        version_info: entry.version,
        type_url: t,
        nonce,
        resources: resources.map((r) => ({ type_url: r.typeUrl, value: r.bytes })),
        control_plane: { identifier: "mcplex-test-control-plane" },
      });
    }
    call.on("data", (req) => {
      if (!st.node && req.node) st.node = req.node;
      const t = req.type_url;
      record({
        mode: "sotw", node: st.node?.id, rawNode: req.node, type_url: t, version_info: req.version_info,
        response_nonce: req.response_nonce, names: req.resource_names, error_detail: req.error_detail,
      });
      if (!t) {
        call.destroy(Object.assign(new Error("type_url is required"), { code: grpc.status.INVALID_ARGUMENT }));
        return;
      }
      const ts = typeState(t);
      if (req.response_nonce && req.response_nonce !== ts.lastNonce) return; // stale: ignored
      ts.acked = req.error_detail ? ts.acked : req.version_info;
      ts.names = req.resource_names ?? [];
      ts.open = true;
      if (req.error_detail) {
        // a NACK: nothing new to send until the snapshot changes
        return;
      }
      if (req.version_info !== (snapshots.get(st.node?.id)?.types[t]?.version)) {
        // the client lacks this version (e.g. a reconnect): send even if sent before on an old stream
      }
      maybeRespond(t, ts);
    });
    const end = () => {
      st.closed = true;
      streams.delete(st);
    };
    call.on("end", () => {
      end();
      call.end();
    });
    call.on("error", end);
    call.on("cancelled", end);
    call.on("close", end);
  }

  // ---- delta ----
  function deltaStream(call) {
    const st = { call, node: null, types: new Map(), closed: false, mode: "delta" };
    streams.add(st);
    const typeState = (t) => {
      if (!st.types.has(t)) st.types.set(t, { wildcard: false, names: new Set(), have: new Map(), started: false });
      return st.types.get(t);
    };
    st.push = () => {
      for (const [t, ts] of st.types) respond(t, ts);
    };
    function respond(t, ts) {
      if (st.closed || !st.node) return;
      const snap = snapshots.get(st.node.id);
      if (!snap || !snap.types[t]) return;
      const entry = snap.types[t];
      const send = [];
      const removed = [];
      for (const r of entry.resources) {
        if (!ts.wildcard && !ts.names.has(r.name)) continue;
        if (ts.have.get(r.name) !== r.version) send.push(r);
      }
      for (const [name] of ts.have) {
        if (!entry.resources.some((r) => r.name === name) && (ts.wildcard || ts.names.has(name))) removed.push(name);
      }
      if (!ts.wildcard) {
        for (const name of ts.names) {
          if (!entry.resources.some((r) => r.name === name) && !ts.have.has(name) && !ts.toldMissing?.has(name)) {
            removed.push(name); // subscribed but absent
            (ts.toldMissing ??= new Set()).add(name);
          }
        }
      }
      if (send.length === 0 && removed.length === 0) return;
      for (const r of send) ts.have.set(r.name, r.version);
      for (const n of removed) ts.have.delete(n);
      const nonce = String(++nonceSeq);
      log(`resp delta ${KIND_OF[t]} nonce=${nonce} n=${send.length} removed=${removed.length}`);
      responses.push({ mode: "delta", type_url: t, version: entry.version, nonce, n: send.length, removed });
      call.write({
        system_version_info: entry.version,
        type_url: t,
        nonce,
        resources: send.map((r) => ({ name: r.name, version: r.version, resource: { type_url: r.typeUrl, value: r.bytes } })),
        removed_resources: removed,
      });
    }
    call.on("data", (req) => {
      if (!st.node && req.node) st.node = req.node;
      const t = req.type_url;
      const irv = req.initial_resource_versions ?? {};
      record({
        mode: "delta", node: st.node?.id, rawNode: req.node, type_url: t, response_nonce: req.response_nonce,
        names: req.resource_names_subscribe, unsubscribe: req.resource_names_unsubscribe,
        initial_resource_versions: irv, error_detail: req.error_detail,
      });
      const ts = typeState(t);
      if (!ts.started) {
        ts.started = true;
        for (const [k, v] of Object.entries(irv)) ts.have.set(k, v);
        if ((req.resource_names_subscribe ?? []).length === 0 && (req.resource_names_unsubscribe ?? []).length === 0)
          ts.wildcard = true; // legacy wildcard
      }
      for (const n of req.resource_names_subscribe ?? []) {
        if (n === "*") ts.wildcard = true;
        else ts.names.add(n);
      }
      for (const n of req.resource_names_unsubscribe ?? []) {
        if (n === "*") ts.wildcard = false;
        ts.names.delete(n);
        ts.have.delete(n);
      }
      if (req.error_detail) return; // NACK: wait for a new snapshot
      respond(t, ts);
    });
    const end = () => {
      st.closed = true;
      streams.delete(st);
    };
    call.on("end", () => {
      end();
      call.end();
    });
    call.on("error", end);
    call.on("cancelled", end);
    call.on("close", end);
  }

  async function start() {
    server = new grpc.Server();
    server.addService(ADS.service, {
      StreamAggregatedResources: sotwStream,
      DeltaAggregatedResources: deltaStream,
    });
    boundPort = await new Promise((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${boundPort}`, tls
        ? grpc.ServerCredentials.createSsl(null, [{ private_key: Buffer.from(tls.key), cert_chain: Buffer.from(tls.cert) }], false)
        : grpc.ServerCredentials.createInsecure(), (e, p) => e ? reject(e) : resolve(p)));
    log(`control plane listening on 127.0.0.1:${boundPort}${tls ? " (TLS)" : ""}`);
  }

  // Kills the server abruptly (every stream is torn down), as a crashed control plane.
  async function stop() {
    if (!server) return;
    for (const st of streams) st.closed = true;
    streams.clear();
    server.forceShutdown();
    server = null;
  }

  await start();
  return {
    get port() {
      return boundPort;
    },
    requests,
    responses,
    TYPE,
    // Whether the response of |type| for snapshot |version| was ACKed (SotW or delta).
    acked(type, version) {
      return requests.some((q) => q.type_url === type && !q.error_detail && q.response_nonce &&
        responses.some((r) => r.type_url === type && r.version === version && r.nonce === q.response_nonce));
    },
    // Sets the snapshot of |nodeId| and pushes it to the open streams of that node.
    async setSnapshot(nodeId, snap) {
      snapshots.set(nodeId, await encodeSnapshot(snap));
      for (const st of streams) if (st.node?.id === nodeId) st.push();
    },
    // Resolves when |pred(requests)| is truthy (checked on every request), rejects after |timeout|.
    waitFor(pred, { timeout = 10000, what = "control-plane condition" } = {}) {
      return new Promise((resolve, reject) => {
        const check = () => {
          let v;
          try {
            v = pred(requests);
          } catch (e) {
            v = false;
          }
          if (v) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(v);
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out after ${timeout} ms: ${what}`));
        }, timeout);
        waiters.add(check);
        check();
      });
    },
    openStreams: () => streams.size,
    stop,
    start,
    close: stop,
  };
}

// ---- command line: a control plane for manual runs (examples/ads.yaml) -------------------------
// node tests/xds/control-plane.mjs [--port 18000] [--node mcplex-1] --snapshot FILE.json
// FILE.json: {"version": "1", "cluster": [...], "listener": [...], "route": [...], "endpoint": [...]}
// in protobufjs object form (field names as in the protos, nested Anys as {"@type": ..., ...}).
// The file is watched: edit it (and bump "version") to push a new snapshot.
if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const { default: fs } = await import("node:fs");
  const arg = (name, dflt) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? process.argv[i + 1] : dflt;
  };
  const file = arg("snapshot");
  const node = arg("node", "mcplex-1");
  if (!file) {
    process.stderr.write("usage: control-plane.mjs [--port 18000] [--node mcplex-1] --snapshot FILE.json\n");
    process.exit(2);
  }
  const cp = await startControlPlane({ port: Number(arg("port", "18000")), log: (m) => process.stdout.write(`${m}\n`) });
  const load = async () => {
    try {
      await cp.setSnapshot(node, JSON.parse(fs.readFileSync(file, "utf8")));
      process.stdout.write(`snapshot for node '${node}' set from ${file}\n`);
    } catch (e) {
      process.stderr.write(`${file}: ${e.message}\n`);
    }
  };
  await load();
  fs.watchFile(file, { interval: 500 }, load);
  const quit = async () => {
    fs.unwatchFile(file);
    await cp.close();
    process.exit(0);
  };
  process.on("SIGINT", quit);
  process.on("SIGTERM", quit);
}
