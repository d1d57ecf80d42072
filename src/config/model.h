/*
 * model.h - the internal config model: plain C structs built from protobuf-c messages by the
 * translators (translate.c), validated in full, then published as one immutable, refcounted
 * snapshot. Requests in flight hold a reference to the snapshot they started with.
 *
 * Every string and array in a snapshot is owned by the snapshot (freed by its last unref).
 * A snapshot is immutable once published: any thread may read it; only refcounts change.
 */
#ifndef MCPLEX_CONFIG_MODEL_H
#define MCPLEX_CONFIG_MODEL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* ---- TLS (issue 4): Envoy's envoy.extensions.transport_sockets.tls.v3 contexts ------------- */

/* config.core.v3.DataSource: filename, or inline_bytes/inline_string (environment_variable is
 * resolved by the translator into inline data). Both NULL = not set. */
typedef struct mcplex_data_source {
    char *filename;
    char *inline_data; /* NUL-terminated copy; inline_len bytes */
    size_t inline_len;
} mcplex_data_source_t;

/* TlsParameters.TlsProtocol values. */
typedef enum mcplex_tls_version {
    MCPLEX_TLS_AUTO = 0,
    MCPLEX_TLS_V1_0,
    MCPLEX_TLS_V1_1,
    MCPLEX_TLS_V1_2,
    MCPLEX_TLS_V1_3,
} mcplex_tls_version_t;

typedef struct mcplex_tls_certificate {
    mcplex_data_source_t certificate_chain; /* PEM */
    mcplex_data_source_t private_key;       /* PEM */
} mcplex_tls_certificate_t;

/*
 * A DownstreamTlsContext or UpstreamTlsContext, flattened (CommonTlsContext fields by their
 * proto names). Downstream: tls_certificates[0] is served (at least one); trusted_ca validates
 * client certificates (requested when set, required with require_client_certificate).
 * Upstream: tls_certificates[0] (optional) is the client certificate; trusted_ca validates the
 * server (not set: the system roots), sni is sent and checked against the certificate.
 */
typedef struct mcplex_tls_context {
    mcplex_tls_certificate_t *tls_certificates;
    size_t n_tls_certificates;
    mcplex_data_source_t trusted_ca;
    int require_client_certificate;
    char **alpn_protocols;
    size_t n_alpn_protocols;
    mcplex_tls_version_t tls_minimum_protocol_version; /* AUTO = TLS 1.2 (Envoy's default) */
    mcplex_tls_version_t tls_maximum_protocol_version; /* AUTO = TLS 1.3 */
    char *sni;    /* upstream */
    int insecure; /* upstream: no server certificate validation (agentgateway backendTLS.insecure) */
} mcplex_tls_context_t;

/* ---- clusters and MCP backends ------------------------------------------------------------ */

typedef enum mcplex_cluster_type {
    MCPLEX_CLUSTER_STATIC = 0,
    MCPLEX_CLUSTER_STRICT_DNS,
    MCPLEX_CLUSTER_LOGICAL_DNS,
    MCPLEX_CLUSTER_EDS,
    MCPLEX_CLUSTER_MCP, /* mcplex.clusters.mcp or envoy.clusters.mcp_multicluster */
    /* MCPLEX_CLUSTER_TYPE_COUNT */
} mcplex_cluster_type_t;

typedef struct mcplex_endpoint {
    char *host; /* IP literal or DNS name */
    uint16_t port;
    uint32_t weight; /* >= 1 */
} mcplex_endpoint_t;

typedef enum mcplex_target_kind {
    MCPLEX_TARGET_STDIO = 0,
    MCPLEX_TARGET_STREAMABLE_HTTP,
    MCPLEX_TARGET_SSE,
    /* MCPLEX_TARGET_KIND_COUNT */
} mcplex_target_kind_t;

typedef struct mcplex_env_var {
    char *name;
    char *value;
} mcplex_env_var_t;

typedef struct mcplex_stdio_target {
    char *cmd;          /* resolved through PATH at spawn */
    char **args;        /* argv[1..], n_args entries */
    size_t n_args;
    mcplex_env_var_t *env; /* added to (or, with clear_env, replacing) mcplex's environment */
    size_t n_env;
    int clear_env;
    char *working_dir;  /* NULL = mcplex's cwd */
    int shared;         /* one child for all sessions of a worker */
} mcplex_stdio_target_t;

typedef struct mcplex_header_value {
    char *name;
    char *value;
} mcplex_header_value_t;

typedef struct mcplex_http_target {
    char *cluster;        /* the cluster that carries the traffic (implicit one for url targets) */
    char *path;           /* request path, e.g. "/mcp" (may carry a query) */
    char *authority;      /* Host header to send: host_rewrite_literal, the url's host[:port], or NULL */
    int tls;              /* 1 for https:// (issue 4) */
    mcplex_header_value_t *headers; /* request_headers_to_add */
    size_t n_headers;
} mcplex_http_target_t;

/* A tool renamed and/or re-described (McpTarget.tools.overrides). */
typedef struct mcplex_tool_override {
    char *tool;        /* the target's own name */
    char *name;        /* exposed name, or NULL */
    char *description; /* exposed description, or NULL */
} mcplex_tool_override_t;

typedef struct mcplex_mcp_target {
    char *name;
    mcplex_target_kind_t kind;
    mcplex_stdio_target_t stdio; /* kind == STDIO */
    mcplex_http_target_t http;   /* kind == STREAMABLE_HTTP or SSE */
    uint32_t timeout_ms;         /* per-request deadline towards this target */
    int timeout_set;             /* timeout_ms came from config (not the 5 s default) */
    char **tool_allow;           /* names or fnmatch globs; none = all */
    size_t n_tool_allow;
    char **tool_deny;
    size_t n_tool_deny;
    mcplex_tool_override_t *tool_overrides;
    size_t n_tool_overrides;
} mcplex_mcp_target_t;

typedef enum mcplex_prefix_mode {
    MCPLEX_PREFIX_CONDITIONAL = 0, /* prefix only with more than one target */
    MCPLEX_PREFIX_ALWAYS,
    MCPLEX_PREFIX_NEVER,
} mcplex_prefix_mode_t;

typedef enum mcplex_failure_mode {
    MCPLEX_FAIL_OPEN = 0, /* mcplex's default */
    MCPLEX_FAIL_CLOSED,
} mcplex_failure_mode_t;

typedef struct mcplex_mcp_backend {
    mcplex_mcp_target_t *targets;
    size_t n_targets;
    mcplex_prefix_mode_t prefix_mode;
    mcplex_failure_mode_t failure_mode;
    char *separator;          /* "__" (mcp_router, default) or "_" (agentgateway-style file) */
    char *server_name;        /* serverInfo.name, default "mcplex" */
    char *server_version;     /* serverInfo.version, default MCPLEX_VERSION */
    char *server_title;       /* or NULL */
    int server_stream_disabled;   /* GET answered 405 */
    uint32_t replay_buffer_bytes; /* per session, for Last-Event-ID (default 1 MiB) */
    uint32_t heartbeat_ms;        /* idle server stream comments (default 15000; 0 = off) */
} mcplex_mcp_backend_t;

typedef struct mcplex_cluster {
    char *name;
    mcplex_cluster_type_t type;
    mcplex_endpoint_t *endpoints;
    size_t n_endpoints;
    uint32_t connect_timeout_ms; /* default 5000 */
    int http2;                   /* upstream HTTP/2 requested (issue 4) */
    int tls;                     /* UpstreamTlsContext present (issue 4) */
    mcplex_tls_context_t *tls_context; /* its settings when tls (NULL = defaults: system roots) */
    mcplex_mcp_backend_t *mcp;   /* type == MCP */
} mcplex_cluster_t;

/* ---- routes ----------------------------------------------------------------------------- */

typedef struct mcplex_cors_policy {
    char **allow_origins; /* exact origins, or "*" */
    size_t n_allow_origins;
    char *allow_methods;  /* comma-joined, or NULL for the default */
    char *allow_headers;  /* comma-joined, or NULL (echo the request's) */
    char *expose_headers; /* comma-joined, or NULL */
    char *max_age;        /* seconds as text, or NULL */
    int allow_credentials;
} mcplex_cors_policy_t;

/* --- origin (issue 3): DNS rebinding protection of a route (mcplex's McpRoute) --- */
typedef enum mcplex_dns_rebinding {
    MCPLEX_DNS_REBINDING_DEFAULT = 0, /* on for loopback listeners; elsewhere only the lists set */
    MCPLEX_DNS_REBINDING_ON,
    MCPLEX_DNS_REBINDING_OFF,
} mcplex_dns_rebinding_t;

typedef struct mcplex_origin_policy {
    mcplex_dns_rebinding_t dns_rebinding_protection;
    char **allowed_origins; /* "scheme://host[:port]" or "*", besides loopback origins */
    size_t n_allowed_origins;
    char **allowed_hosts;   /* "host", "host:port" or "*", besides loopback names */
    size_t n_allowed_hosts;
} mcplex_origin_policy_t;
/* --- end origin --- */

typedef struct mcplex_weighted_cluster {
    char *name;
    uint32_t weight; /* may be 0 */
} mcplex_weighted_cluster_t;

typedef enum mcplex_route_action_kind {
    MCPLEX_ROUTE_CLUSTER = 0,      /* one cluster */
    MCPLEX_ROUTE_WEIGHTED_CLUSTERS,
    MCPLEX_ROUTE_DIRECT_RESPONSE,
} mcplex_route_action_kind_t;

typedef struct mcplex_route {
    char *name;
    char *prefix;         /* match.prefix, or NULL */
    char *path;           /* match.path (exact), or NULL; neither = prefix "/" */
    int case_sensitive;   /* default 1 */
    mcplex_route_action_kind_t action;
    mcplex_weighted_cluster_t *clusters; /* CLUSTER: one entry with weight 1 */
    size_t n_clusters;
    uint64_t total_weight;
    int direct_status;    /* DIRECT_RESPONSE */
    char *direct_body;
    uint32_t timeout_ms;  /* route.timeout; 0 = none */
    mcplex_cors_policy_t *cors; /* effective CORS policy (route over virtual host), or NULL */
    mcplex_origin_policy_t *origin; /* effective McpRoute policy (issue 3), or NULL = defaults */
    /* Request body limit in bytes (issue 4): route.request_body_buffer_limit, else the deprecated
     * per_request_buffer_limit_bytes, else the virtual host's; 0 = the default (4 MiB). A larger
     * body is answered 413. */
    uint64_t max_request_body_bytes;
} mcplex_route_t;

typedef struct mcplex_virtual_host {
    char *name;
    char **domains;
    size_t n_domains;
    mcplex_route_t *routes;
    size_t n_routes;
} mcplex_virtual_host_t;

typedef struct mcplex_route_config {
    char *name;
    mcplex_virtual_host_t *virtual_hosts;
    size_t n_virtual_hosts;
    /* The largest route body limit in bytes (a route without one counts as the default; 0 when
     * there are no routes): what the codecs buffer at most before routing; each route then
     * checks its own limit. */
    uint64_t max_request_body_bytes;
} mcplex_route_config_t;

/* ---- listeners ---------------------------------------------------------------------------- */

typedef enum mcplex_codec_type {
    MCPLEX_CODEC_AUTO = 0,
    MCPLEX_CODEC_HTTP1,
    MCPLEX_CODEC_HTTP2,
} mcplex_codec_type_t;

/* An HCM access_log entry with the file sink (envoy.access_loggers.file, FileAccessLog; issue 7). */
typedef struct mcplex_access_log_cfg {
    char *path;          /* FileAccessLog.path */
    char *format;        /* text format (format, log_format.text_format), or NULL = the default */
    char **json_keys;    /* json_format / log_format.json_format: key -> format string */
    char **json_formats;
    size_t n_json;
} mcplex_access_log_cfg_t;

typedef struct mcplex_hcm {
    char *stat_prefix;
    mcplex_codec_type_t codec_type;
    mcplex_route_config_t route_config;
    int cors_filter;            /* envoy.filters.http.cors present */
    int mcp_filter;             /* envoy.filters.http.mcp present */
    /* envoy.filters.http.mcp_router present: routes are answered by an MCP backend built from
     * its servers[] (name = "<listener>/mcp_router"), unless the route's cluster is itself an MCP
     * cluster. */
    mcplex_mcp_backend_t *mcp_router;
    uint32_t max_request_headers_kb;
    uint32_t stream_idle_timeout_ms;
    /* HTTP/2 (issue 4): http2_protocol_options (0 = the codec's default) and drain_timeout. */
    uint32_t http2_max_concurrent_streams;
    uint32_t http2_initial_stream_window_size;
    uint32_t http2_initial_connection_window_size;
    uint32_t drain_timeout_ms; /* GOAWAY to close on shutdown; default 5000 (Envoy's) */
    mcplex_access_log_cfg_t *access_logs; /* access_log[] with the file sink (issue 7) */
    size_t n_access_logs;
} mcplex_hcm_t;

/*
 * A filter chain (listener.v3.FilterChain): its filter_chain_match (server_names with
 * "*.example.com" wildcards, transport_protocol), its transport socket (a DownstreamTlsContext,
 * or none for plaintext) and its HCM. Chain 0's HCM is stored in the listener's |hcm| (so code
 * written for one chain per listener still reads listener->hcm); use mcplex_listener_chain_hcm().
 */
typedef struct mcplex_filter_chain {
    char *name;
    char **server_names;
    size_t n_server_names;
    char *transport_protocol;  /* "tls", "raw_buffer", or NULL (any) */
    mcplex_tls_context_t *tls; /* NULL = plaintext */
    int is_default;            /* the listener's default_filter_chain (used when no chain matches) */
    mcplex_hcm_t hcm;          /* unused for chain 0 (see above) */
} mcplex_filter_chain_t;

typedef struct mcplex_listener_cfg {
    char *name;
    char *address; /* IP literal */
    uint16_t port;
    mcplex_hcm_t hcm; /* the HCM of filter_chains[0] */
    mcplex_filter_chain_t *filter_chains; /* filter_chains[], then default_filter_chain; may be empty */
    size_t n_filter_chains;
} mcplex_listener_cfg_t;

/* The HCM of filter chain |i| of |l| (chain 0 and a listener without chains: &l->hcm). */
static inline const mcplex_hcm_t *
mcplex_listener_chain_hcm(const mcplex_listener_cfg_t *l, size_t i)
{
    return i == 0 || i >= l->n_filter_chains ? &l->hcm : &l->filter_chains[i].hcm;
}

/* ---- snapshot ----------------------------------------------------------------------------- */

typedef struct mcplex_snapshot {
    _Atomic int refcount;
    uint64_t generation;
    mcplex_listener_cfg_t *listeners;
    size_t n_listeners;
    mcplex_cluster_t *clusters;
    size_t n_clusters;
    char *admin_address; /* from bootstrap admin (issue 7), or NULL */
    uint16_t admin_port;
    char *node_id;
    char *node_cluster;
    /* --- admin /config_dump (issue 7) --- */
    char *bootstrap_json;  /* the bootstrap tree the loader mapped (JSON text), or NULL (xDS-built) */
    int64_t loaded_at_ms;  /* wall-clock time of the load (ms since the epoch), for last_updated */
} mcplex_snapshot_t;

/* Takes a reference. Thread: any. Returns |s|. */
mcplex_snapshot_t *mcplex_snapshot_ref(mcplex_snapshot_t *s);
/* Drops a reference; the last one frees the snapshot (memory only). Thread: any. */
void mcplex_snapshot_unref(mcplex_snapshot_t *s);
/* Finds a cluster by name, or NULL. */
const mcplex_cluster_t *mcplex_snapshot_find_cluster(const mcplex_snapshot_t *s, const char *name);

#endif
