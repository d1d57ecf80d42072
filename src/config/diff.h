/*
 * diff.h - comparisons between two config snapshots, for live swaps (hot reload and xDS both
 * publish through mcplex_worker_apply_snapshot): is an MCP backend of the old snapshot still
 * there, with an equal config, in the new one? Does a cluster still have the same endpoint set?
 *
 * Owns nothing: pure functions over snapshots (which are immutable), so any thread may call them.
 */
#ifndef MCPLEX_CONFIG_DIFF_H
#define MCPLEX_CONFIG_DIFF_H

#include <stddef.h>

#include "config/model.h"

/* The suffix of the backend name a session gets from envoy.filters.http.mcp_router:
 * "<listener name>/mcp_router" (see hcm.c). */
#define MCPLEX_MCP_ROUTER_SUFFIX "/mcp_router"

/*
 * Finds the MCP backend a session calls |name|: the MCP cluster of that name, or, for
 * "<listener>/mcp_router", the mcp_router backend of that listener's HCM. Returns a pointer into
 * |s|, or NULL when |s| has no such backend.
 */
const mcplex_mcp_backend_t *mcplex_config_find_backend(const mcplex_snapshot_t *s, const char *name);

/*
 * 1 if clusters |a| and |b| would build the same upstream connection pool: same type, the same
 * endpoints (host, port, weight, in order), connect timeout, HTTP/2, TLS and the TLS context by
 * value (certificates, CA, ALPN, versions, SNI, insecure). The name is not compared. NULL equals
 * only NULL.
 */
int mcplex_config_cluster_endpoints_equal(const mcplex_cluster_t *a, const mcplex_cluster_t *b);

/*
 * 1 if MCP backend |a| (of snapshot |sa|) and |b| (of |sb|) are equal by value for a running
 * session: prefix and failure modes, separator, and every target in order with its name, kind,
 * stdio command (cmd, args, env, clear_env, working_dir, shared), HTTP target (cluster, path,
 * authority, TLS, headers) and the endpoint set of that cluster in its own snapshot, timeout and
 * tool curation (allow, deny, overrides). serverInfo and server-stream settings are not compared
 * (they only matter when a session starts). NULL equals only NULL.
 */
int mcplex_config_backend_equal(const mcplex_snapshot_t *sa, const mcplex_mcp_backend_t *a,
                                const mcplex_snapshot_t *sb, const mcplex_mcp_backend_t *b);

/*
 * Writes the pool key of cluster |c| into a malloc'ed string (caller frees): its name, then its
 * endpoint set and connection settings, so that two clusters of the same name with different
 * endpoints (or TLS settings: a fingerprint of the TLS context is part of the key) get
 * different keys. Used to key a worker's HTTP pools.
 */
char *mcplex_config_pool_key(const mcplex_cluster_t *c);

#endif
