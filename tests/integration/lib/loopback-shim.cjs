// loopback-shim.cjs: preloaded with `node -r` into test peers that have no host option
// (server-everything's streamableHttp/sse modes call app.listen(PORT) and would bind every
// interface). Rewrites net.Server.prototype.listen so a bare port listens on 127.0.0.1 only.
// See docs/research/mcp-protocol.md section 7.3.
const net = require("net");
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...a) {
  if ((typeof a[0] === "number" || /^\d+$/.test(a[0])) && typeof a[1] !== "string") {
    a.splice(1, 0, "127.0.0.1");
  }
  return listen.apply(this, a);
};
