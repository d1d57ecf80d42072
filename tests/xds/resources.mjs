// resources.mjs: the xDS resources and bootstraps the mcplex xDS tests use, in protobufjs object
// form for tests/xds/control-plane.mjs (Envoy's genuine protos; nested Anys as {"@type", ...}).
import { toStruct } from "./control-plane.mjs";
import { stdioPeer } from "../integration/lib/harness.mjs";

export const HCM_TYPE =
  "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
export const MCP_BACKEND_TYPE = "type.googleapis.com/mcplex.extensions.clusters.mcp.v1.McpBackend";

const tiny = stdioPeer("tiny");

// An MCP backend cluster (mcplex.clusters.mcp) with stdio tiny-server targets, each
// {name, NAME}. |typedStruct|: send McpBackend as xds.type.v3.TypedStruct (what a control plane
// without our generated code does) instead of the typed message.
export function mcpCluster(name, targets, { typedStruct = false, prefix = "ALWAYS" } = {}) {
  const backend = {
    prefix_mode: prefix,
    targets: targets.map((t) => ({
      name: t.name,
      stdio: { cmd: tiny.cmd, args: tiny.args, env: { NAME: t.NAME } },
      timeout: { seconds: 10 },
    })),
  };
  const typed = typedStruct
    ? { "@type": "type.googleapis.com/xds.type.v3.TypedStruct", type_url: MCP_BACKEND_TYPE, value: toStruct({
        prefix_mode: prefix,
        targets: targets.map((t) => ({
          name: t.name, stdio: { cmd: tiny.cmd, args: tiny.args, env: { NAME: t.NAME } }, timeout: "10s",
        })),
      }) }
    : { "@type": MCP_BACKEND_TYPE, ...backend };
  return {
    name,
    connect_timeout: { seconds: 1 },
    lb_policy: "CLUSTER_PROVIDED",
    cluster_type: { name: "mcplex.clusters.mcp", typed_config: typed },
  };
}

// A Listener on 127.0.0.1:|port| whose HCM takes its routes from RDS |routeName| (or inline
// |inlineRoute|), with the router filter.
export function listener(name, port, { routeName, inlineRoute } = {}) {
  const hcm = {
    "@type": HCM_TYPE,
    stat_prefix: name,
    http_filters: [{
      name: "envoy.filters.http.router",
      typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" },
    }],
  };
  if (inlineRoute) hcm.route_config = inlineRoute;
  else hcm.rds = { route_config_name: routeName, config_source: { ads: {}, resource_api_version: "V3" } };
  return {
    name,
    address: { socket_address: { address: "127.0.0.1", port_value: port } },
    filter_chains: [{
      filters: [{ name: "envoy.filters.network.http_connection_manager", typed_config: hcm }],
    }],
  };
}

// A RouteConfiguration: /mcp -> weighted_clusters {name: weight}.
export function route(name, weights) {
  return {
    name,
    virtual_hosts: [{
      name: "mcp",
      domains: ["*"],
      routes: [{
        match: { path: "/mcp" },
        route: {
          timeout: { seconds: 0 },
          weighted_clusters: {
            clusters: Object.entries(weights).map(([n, w]) => ({ name: n, weight: { value: w } })),
          },
        },
      }],
    }],
  };
}

// The mcplex bootstrap: node |nodeId|, ADS (GRPC or DELTA_GRPC) to the control plane on
// 127.0.0.1:|cpPort| through the static cluster xds_cluster (envoy_grpc), LDS and CDS over ADS.
// |tls|: {ca (a file), sni} for TLS to the control plane: google_grpc channel_credentials
// ssl_credentials (target localhost, so the certificate's name matches), or an
// UpstreamTlsContext on the envoy_grpc cluster.
export function adsBootstrap(nodeId, cpPort, { delta = false, googleGrpc = false, staticListener = "", fetchTimeout,
  tls = null } = {}) {
  const ift = fetchTimeout ? `, initial_fetch_timeout: ${fetchTimeout}` : "";
  const creds = tls ? `, channel_credentials: {ssl_credentials: {root_certs: {filename: ${JSON.stringify(tls.ca)}}}}` : "";
  const grpcService = googleGrpc
    ? `{google_grpc: {target_uri: "${tls ? "localhost" : "127.0.0.1"}:${cpPort}", stat_prefix: xds${creds}}}`
    : "{envoy_grpc: {cluster_name: xds_cluster}}";
  const transportSocket = tls && !googleGrpc ? `
    transport_socket:
      name: envoy.transport_sockets.tls
      typed_config:
        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
        sni: ${tls.sni ?? "localhost"}
        common_tls_context:
          validation_context: {trusted_ca: {filename: ${JSON.stringify(tls.ca)}}}` : "";
  return `# ADS bootstrap written by the mcplex xDS tests
node:
  id: ${nodeId}
  cluster: mcplex-tests
  metadata: {purpose: test}
dynamic_resources:
  ads_config:
    api_type: ${delta ? "DELTA_GRPC" : "GRPC"}
    transport_api_version: V3
    grpc_services:
    - ${grpcService}
  cds_config: {resource_api_version: V3, ads: {}${ift}}
  lds_config: {resource_api_version: V3, ads: {}${ift}}
static_resources:
  clusters:
  - name: xds_cluster
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}${transportSocket}
    load_assignment:
      cluster_name: xds_cluster
      endpoints: [{lb_endpoints: [{endpoint: {address: {socket_address: {address: 127.0.0.1, port_value: ${cpPort}}}}}]}]
${staticListener}`;
}
