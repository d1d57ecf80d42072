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
} mcplex_route_config_t;

/* ---- listeners ---------------------------------------------------------------------------- */

typedef enum mcplex_codec_type {
    MCPLEX_CODEC_AUTO = 0,
    MCPLEX_CODEC_HTTP1,
    MCPLEX_CODEC_HTTP2,
} mcplex_codec_type_t;

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
} mcplex_hcm_t;

typedef struct mcplex_listener_cfg {
    char *name;
    char *address; /* IP literal */
    uint16_t port;
    mcplex_hcm_t hcm;
} mcplex_listener_cfg_t;

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
} mcplex_snapshot_t;

/* Takes a reference. Thread: any. Returns |s|. */
mcplex_snapshot_t *mcplex_snapshot_ref(mcplex_snapshot_t *s);
/* Drops a reference; the last one frees the snapshot (memory only). Thread: any. */
void mcplex_snapshot_unref(mcplex_snapshot_t *s);
/* Finds a cluster by name, or NULL. */
const mcplex_cluster_t *mcplex_snapshot_find_cluster(const mcplex_snapshot_t *s, const char *name);

#endif
